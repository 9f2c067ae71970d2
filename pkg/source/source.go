// Package source watches the manifest directory and produces the desired set of pods: complete
// snapshots, never deltas. It reacts to fsnotify events and re-lists the directory periodically
// so that a missed event never leaves a pod wrong for long. A file that cannot be used is
// reported as a Problem and never affects the pods of other files; a file that was good and
// turns bad keeps its last good version running.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/manifest"
)

// Reasons of problems other than manifest.ReasonInvalid.
const (
	ReasonConflict   = "NameConflict"
	ReasonUnreadable = "UnreadableManifest"
	ReasonInsecure   = "InsecureManifestPermissions"
)

// Problem is a manifest file that contributes no pod, or only its last good version.
type Problem struct {
	Path      string
	Namespace string // "" when the file did not say
	Name      string // pod name, or the file name when the pod name could not be read
	Reason    string
	Message   string
	// Running is true when the pod still runs from the file's last good version.
	Running bool
}

// Snapshot is the complete desired state at one moment.
type Snapshot struct {
	Pods     []*corev1.Pod // valid and unique by namespace/name, in file order
	Problems []Problem
}

// Config of a Source.
type Config struct {
	Dir      string
	Resync   time.Duration // full re-list period; 0 means 20 s (the kubelet's file check period)
	Debounce time.Duration // quiet time after an event before reading; 0 means 30 ms
	Log      *slog.Logger
	// InsecurePerms accepts manifests (and a directory) that users other than root can write.
	// Off by default: whoever can write a manifest can run root containers.
	InsecurePerms bool
	// Admit, when set, may refuse a valid pod (the node's policy). A refused file is reported
	// like an invalid one, with the reason of the error when it is a *manifest.Error: a new
	// file gives no pod, a changed one keeps its last good version running.
	Admit func(*corev1.Pod) error
}

// Source produces snapshots of a manifest directory.
type Source struct {
	cfg    Config
	files  map[string]*fileState
	owners map[string]string // pod key -> path of the file that owns it
}

type fileState struct {
	size    int64
	modTime time.Time
	ino     uint64
	mode    os.FileMode
	uid     uint32      // owner: checkPerms depends on it, and chown changes neither size nor mtime
	good    *corev1.Pod // last good version
	err     error       // current problem, if any
}

// New returns a Source for cfg.
func New(cfg Config) *Source {
	if cfg.Resync == 0 {
		cfg.Resync = 20 * time.Second
	}
	if cfg.Debounce == 0 {
		cfg.Debounce = 30 * time.Millisecond
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Source{cfg: cfg, files: map[string]*fileState{}, owners: map[string]string{}}
}

// Run sends a snapshot at once, and again whenever the directory's content changes. It blocks
// until ctx is cancelled. out must not block for long.
func (s *Source) Run(ctx context.Context, out func(Snapshot)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch manifests: %w", err)
	}
	defer w.Close()
	// fsnotify names events after the cleaned path it was given.
	dir := filepath.Clean(s.cfg.Dir)
	watching := false
	watch := func() {
		if watching {
			return
		}
		if err := w.Add(s.cfg.Dir); err != nil {
			s.cfg.Log.Warn("cannot watch manifest dir, relying on re-lists", "dir", s.cfg.Dir, "err", err)
			return
		}
		watching = true
	}
	watch()
	out(s.Load())

	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("manifest watcher closed")
			}
			if ev.Name == dir {
				// The directory itself was removed or moved away: its pods are no longer
				// desired, and a directory put back in its place needs a new watch.
				if ev.Has(fsnotify.Remove | fsnotify.Rename) {
					watching = false
					debounce.Reset(s.cfg.Debounce)
				}
				continue
			}
			if ignored(filepath.Base(ev.Name)) {
				continue
			}
			debounce.Reset(s.cfg.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("manifest watcher closed")
			}
			// An overflow loses events: read everything again.
			s.cfg.Log.Warn("manifest watch error", "err", err)
			debounce.Reset(s.cfg.Debounce)
		case <-debounce.C:
			watch()
			out(s.Load())
		case <-resync.C:
			watch()
			out(s.Load())
		}
	}
}

// ignored says whether a file name is not a manifest: dotfiles (editor swap files among them),
// and anything not ending in .yaml, .yml or .json, which covers backups (web.yaml~, web.yaml.bak,
// web.yaml.orig, web.yaml.dpkg-old, web.yaml.rpmnew, #web.yaml#). On a kubelet a backup copy
// can silently override the real pod (kubernetes#136962).
func ignored(name string) bool {
	if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") {
		return true
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
		return false
	}
	return true
}

// Load reads the directory and returns the desired set. It re-parses only files whose size,
// mtime or inode changed since the last Load.
func (s *Source) Load() Snapshot {
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Log.Error("read manifest dir", "dir", s.cfg.Dir, "err", err)
		// Keep what we had: a transient error must not delete every pod.
		return s.snapshot()
	}
	dirErr := s.checkDir()
	seen := map[string]bool{}
	for _, e := range entries {
		if ignored(e.Name()) {
			continue
		}
		path := filepath.Join(s.cfg.Dir, e.Name())
		info, err := os.Stat(path) // follows symlinks
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && e.Type()&os.ModeSymlink == 0 {
				continue // vanished between list and stat
			}
			seen[path] = true
			s.setErr(path, &manifest.Error{Reason: ReasonUnreadable, Message: err.Error()})
			continue
		}
		if info.IsDir() {
			continue
		}
		seen[path] = true
		if dirErr != nil {
			s.setErr(path, dirErr)
			continue
		}
		s.loadFile(path, info)
	}
	for path := range s.files {
		if !seen[path] {
			delete(s.files, path)
		}
	}
	return s.snapshot()
}

func (s *Source) setErr(path string, err error) {
	f := s.files[path]
	if f == nil {
		f = &fileState{}
		s.files[path] = f
	}
	f.err = err
	f.size, f.modTime, f.ino = -1, time.Time{}, 0
}

func (s *Source) loadFile(path string, info os.FileInfo) {
	f := s.files[path]
	ino, uid := inode(info)
	if f != nil && f.size == info.Size() && f.modTime.Equal(info.ModTime()) && f.ino == ino && f.mode == info.Mode() && f.uid == uid {
		return
	}
	if f == nil {
		f = &fileState{}
		s.files[path] = f
	}
	f.size, f.modTime, f.ino, f.mode, f.uid = info.Size(), info.ModTime(), ino, info.Mode(), uid
	if err := s.checkPerms(info, "file"); err != nil {
		f.err = err
		return
	}
	if err := manifest.CheckSize(info.Size()); err != nil {
		f.err = err
		return
	}
	data, err := readLimited(path, manifest.MaxFileSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			delete(s.files, path)
			return
		}
		f.err = &manifest.Error{Reason: ReasonUnreadable, Message: err.Error()}
		return
	}
	pod, err := manifest.Load(path, data)
	if err == nil && s.cfg.Admit != nil {
		err = s.cfg.Admit(pod)
	}
	if err != nil {
		f.err = err
		if f.good == nil && pod != nil {
			f.err = &peekedError{err: err, namespace: pod.Namespace, name: pod.Name}
		} else if f.good == nil {
			ns, name := manifest.PeekName(data)
			f.good = nil
			f.err = &peekedError{err: err, namespace: ns, name: name}
		}
		return
	}
	f.good, f.err = pod, nil
}

// peekedError remembers the pod name read from a file that is otherwise unusable.
type peekedError struct {
	err             error
	namespace, name string
}

func (e *peekedError) Error() string { return e.err.Error() }
func (e *peekedError) Unwrap() error { return e.err }

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, manifest.CheckSize(int64(len(data)))
	}
	return data, nil
}

// snapshot turns the per-file state into the desired set. When two files name the same pod,
// the file that already owns it keeps it; otherwise the first in lexical order wins.
func (s *Source) snapshot() Snapshot {
	paths := make([]string, 0, len(s.files))
	for p := range s.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	claims := map[string][]string{}
	for _, p := range paths {
		if g := s.files[p].good; g != nil {
			k := g.Namespace + "/" + g.Name
			claims[k] = append(claims[k], p)
		}
	}
	owners := map[string]string{}
	for k, ps := range claims {
		owner := ps[0]
		for _, p := range ps {
			if p == s.owners[k] {
				owner = p
			}
		}
		owners[k] = owner
	}
	s.owners = owners

	var snap Snapshot
	for _, p := range paths {
		f := s.files[p]
		if f.good != nil {
			k := f.good.Namespace + "/" + f.good.Name
			if owners[k] != p {
				snap.Problems = append(snap.Problems, Problem{
					Path: p, Namespace: f.good.Namespace, Name: f.good.Name, Reason: ReasonConflict,
					Message: fmt.Sprintf("pod %s is already defined by %s; this file is ignored", k, owners[k]),
				})
				continue
			}
			snap.Pods = append(snap.Pods, f.good)
		}
		if f.err != nil {
			snap.Problems = append(snap.Problems, problemOf(p, f))
		}
	}
	return snap
}

func problemOf(path string, f *fileState) Problem {
	pr := Problem{Path: path, Name: filepath.Base(path), Reason: manifest.ReasonInvalid, Message: f.err.Error()}
	var me *manifest.Error
	if errors.As(f.err, &me) {
		pr.Reason, pr.Message = me.Reason, me.Message
	}
	var pe *peekedError
	if errors.As(f.err, &pe) && pe.name != "" {
		pr.Namespace, pr.Name = pe.namespace, pe.name
	}
	if f.good != nil {
		pr.Namespace, pr.Name, pr.Running = f.good.Namespace, f.good.Name, true
		pr.Message += "; the last good version keeps running"
	}
	return pr
}

// checkPerms refuses a file or directory that someone other than root can write.
func (s *Source) checkPerms(info os.FileInfo, what string) error {
	if s.cfg.InsecurePerms {
		return nil
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if st.Uid != 0 || info.Mode().Perm()&0o022 != 0 {
		return &manifest.Error{Reason: ReasonInsecure, Message: fmt.Sprintf(
			"manifest %s is owned by uid %d with mode %#o: it must be root's and not writable by group or others (chmod go-w; or run minipod with --insecure-manifest-perms)",
			what, st.Uid, info.Mode().Perm())}
	}
	return nil
}

func (s *Source) checkDir() error {
	info, err := os.Stat(s.cfg.Dir)
	if err != nil {
		return nil
	}
	return s.checkPerms(info, "directory "+s.cfg.Dir)
}

// inode returns the inode number and owner of a file.
func inode(info os.FileInfo) (ino uint64, uid uint32) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino, st.Uid
	}
	return 0, 0
}
