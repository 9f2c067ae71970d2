// Package source watches the manifest directory and produces the desired set of pods, with the
// ConfigMaps and Secrets the files define beside them: complete snapshots, never deltas. It
// reacts to inotify events and re-lists the directory periodically so that a missed event never
// leaves a pod wrong for long. A file that cannot be used is reported as a Problem and never
// affects the pods of other files; a file that was good and turns bad keeps its last good
// version running. Only regular files are read, and never in a way that waits: a FIFO or a
// device in the directory is a Problem, not a hang.
package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/manifest"
)

// Reasons of problems other than manifest.ReasonInvalid.
const (
	ReasonConflict   = "NameConflict"
	ReasonUnreadable = "UnreadableManifest"
	ReasonInsecure   = "InsecureManifestPermissions"
	// ReasonOverride is on a pod that uses a ConfigMap or Secret that a manifest file defines
	// and the ConfigMap or Secret directory holds too: the manifest file's is used.
	ReasonOverride = "ManifestOverride"
)

// Problem is a manifest file that contributes no pod, or only its last good version, or a note
// about a pod that runs (Note).
type Problem struct {
	Path      string
	Namespace string // "" when the file did not say
	Name      string // pod name, or the file name when the pod name could not be read
	Reason    string
	Message   string
	// Running is true when the pod still runs from the file's last good version.
	Running bool
	// Note is true (with Running) when the problem is only about the pod, which runs from its
	// file as it is: it belongs on the pod's status and events, never on an item of its own.
	Note bool
}

// Snapshot is the complete desired state at one moment.
type Snapshot struct {
	Pods []*corev1.Pod // valid and unique by namespace/name, in file order
	// ConfigMaps and Secrets are those the files define, valid and unique by namespace/name,
	// prepared as the API server stores them (a Secret's stringData is in its data). They
	// must not be changed.
	ConfigMaps []*corev1.ConfigMap
	Secrets    []*corev1.Secret
	Problems   []Problem
}

// Config of a Source.
type Config struct {
	Dir    string
	Resync time.Duration // full re-list period; 0 means 20 s (the kubelet's file check period)
	// Debounce is the quiet time before a removed file's pod goes, and before a file still
	// open for writing is read anyway; 0 means 30 ms. A file renamed into the directory or
	// closed by its writer is read at once.
	Debounce time.Duration
	Log      *slog.Logger
	// InsecurePerms accepts manifests (and a directory) that users other than root can write.
	// Off by default: whoever can write a manifest can run root containers.
	InsecurePerms bool
	// Admit, when set, may refuse a valid pod (the node's policy). A refused file is reported
	// like an invalid one, with the reason of the error when it is a *manifest.Error: a new
	// file gives no pod, a changed one keeps its last good version running.
	Admit func(*corev1.Pod) error
	// ConfigMapDir and SecretDir are the daemon's --configmap-dir and --secret-dir: a pod that
	// uses a ConfigMap or Secret that both a file and one of them define is told that the
	// file's is used (ReasonOverride).
	ConfigMapDir, SecretDir string
}

// Source produces snapshots of a manifest directory.
type Source struct {
	cfg    Config
	files  map[string]*fileState
	owners map[string]string // pod key, or kind and key of an object -> path of the file that owns it

	// heartbeat is the unix time in ns of the Run loop's last turn, for the systemd watchdog.
	heartbeat atomic.Int64

	// Tests only: called by load before it lists the directory and before it reads the files,
	// to change the directory at exactly those moments.
	beforeList, beforeRead func()
}

// heartbeatPeriod is how often the Run loop turns, and so proves it is alive, when nothing
// happens in the directory.
const heartbeatPeriod = time.Second

// Alive reports whether Run's loop turned within d. It turns at least every heartbeatPeriod
// unless a read of the directory or the out function of Run is stuck: the daemon feeds the
// systemd watchdog only while it is alive. Safe to call from any goroutine.
func (s *Source) Alive(d time.Duration) bool {
	return time.Since(time.Unix(0, s.heartbeat.Load())) < d
}

type fileState struct {
	size    int64
	modTime time.Time
	ino     uint64
	mode    os.FileMode
	uid     uint32         // owner: checkPerms depends on it, and chown changes neither size nor mtime
	good    *manifest.File // last good version, or nil
	err     error          // current problem, if any
}

// pods is the last good version's pods.
func (f *fileState) pods() []*corev1.Pod {
	if f.good == nil {
		return nil
	}
	return f.good.Pods
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
//
// It reads inotify itself rather than through fsnotify: a file renamed into the directory or
// closed by its writer is complete and read at once, where a create or a write may be followed
// by more writes, and a removal may be an editor's save (see changes).
func (s *Source) Run(ctx context.Context, out func(Snapshot)) error {
	s.heartbeat.Store(time.Now().UnixNano())
	in, err := newInotify()
	if err != nil {
		return fmt.Errorf("watch manifests: %w", err)
	}
	defer in.close()
	c := newChanges(in, s.cfg.Dir, s.cfg.Debounce, s.cfg.Log)
	defer c.quiet.Stop()
	c.watch()

	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	beat := time.NewTicker(heartbeatPeriod)
	defer beat.Stop()
	c.loadNow = true
	for {
		// A read can see events that make another read necessary (a file closed while the
		// directory was being read).
		for c.loadNow {
			c.loadNow = false
			out(s.load(c))
		}
		s.heartbeat.Store(time.Now().UnixNano())
		select {
		case <-beat.C:
		case <-ctx.Done():
			return nil
		case err := <-in.failed:
			return fmt.Errorf("manifest watcher: %w", err)
		case <-in.ready:
			c.drain()
		case <-c.quiet.C:
			c.settle()
			c.watch()
			c.loadNow = true
		case <-resync.C:
			c.watch()
			c.loadNow = true
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
func (s *Source) Load() Snapshot { return s.load(nil) }

// load is Load, leaving the files that c says are in flux as they were: their last state when
// they had one, else absent. c's events are drained after the listing and again after the files
// were read, so a change that happened before either moment is known in time: a file removed
// before the listing, or written to while it was read, keeps its previous state.
func (s *Source) load(c *changes) Snapshot {
	if s.beforeList != nil {
		s.beforeList()
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.cfg.Log.Error("read manifest dir", "dir", s.cfg.Dir, "err", err)
		// Keep what we had: a transient error must not delete every pod.
		return s.snapshot()
	}
	c.drain()
	held := map[string]bool{} // in flux during this read: left as they were
	for path := range s.files {
		if c.inFlux(path) {
			held[path] = true
		}
	}
	if s.beforeRead != nil {
		s.beforeRead()
	}
	dirErr := s.checkDir()
	next := make(map[string]*fileState, len(s.files))
	for _, e := range entries {
		if ignored(e.Name()) {
			continue
		}
		path := filepath.Join(s.cfg.Dir, e.Name())
		if c.inFlux(path) {
			held[path] = true
			continue
		}
		info, err := os.Stat(path) // follows symlinks
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && e.Type()&os.ModeSymlink == 0 {
				continue // vanished between list and stat
			}
			next[path] = errState(s.files[path], &manifest.Error{Reason: ReasonUnreadable, Message: err.Error()})
			continue
		}
		if info.IsDir() {
			continue
		}
		if dirErr != nil {
			next[path] = errState(s.files[path], dirErr)
			continue
		}
		if f := s.loadFile(path, info, s.files[path]); f != nil {
			next[path] = f
		}
	}
	c.drain()
	keep := func(path string) {
		if f := s.files[path]; f != nil {
			next[path] = f
		} else {
			delete(next, path)
		}
	}
	switch {
	case c != nil && c.overflowed:
		// Events were lost: nothing read now can be trusted before the quiet time.
		next = maps.Clone(s.files)
	case c != nil:
		for path := range held {
			keep(path)
		}
		for path := range c.pending {
			keep(path)
		}
	}
	s.files = next
	return s.snapshot()
}

// errState is the state of a file that cannot be used now: it keeps the last good version.
func errState(old *fileState, err error) *fileState {
	f := &fileState{size: -1, err: err}
	if old != nil {
		f.good = old.good
	}
	return f
}

// loadFile returns the new state of a file, old itself when the file did not change, or nil
// when it vanished. old is never modified: load may still need it.
func (s *Source) loadFile(path string, info os.FileInfo, old *fileState) *fileState {
	ino, uid := inode(info)
	if old != nil && old.size == info.Size() && old.modTime.Equal(info.ModTime()) && old.ino == ino && old.mode == info.Mode() && old.uid == uid {
		return old
	}
	f := &fileState{}
	if old != nil {
		f.good = old.good
	}
	f.size, f.modTime, f.ino, f.mode, f.uid = info.Size(), info.ModTime(), ino, info.Mode(), uid
	if err := notRegular(path, info.Mode()); err != nil {
		f.err = err
		return f
	}
	if err := s.checkPerms(info, "file"); err != nil {
		f.err = err
		return f
	}
	if err := manifest.CheckSize(info.Size()); err != nil {
		f.err = err
		return f
	}
	data, mode, err := s.read(path, manifest.MaxFileSize)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		var me *manifest.Error
		if !errors.As(err, &me) {
			err = &manifest.Error{Reason: ReasonUnreadable, Message: err.Error()}
		}
		f.err = err
		return f
	}
	file, err := manifest.LoadFile(path, data)
	if err == nil {
		err = s.checkSecretPerms(path, mode, file)
	}
	if err == nil {
		err = manifest.CheckUpdate(f.good, file)
	}
	if err == nil && s.cfg.Admit != nil {
		// A file is used whole or not at all, as for a pod that is invalid.
		for _, pod := range file.Pods {
			if err = s.cfg.Admit(pod); err != nil {
				if f.good == nil {
					err = &peekedError{err: err, namespace: pod.Namespace, name: pod.Name}
				}
				break
			}
		}
	}
	if err != nil {
		var pe *peekedError
		if f.good == nil && !errors.As(err, &pe) {
			ns, name := problemName(err, data, file)
			err = &peekedError{err: err, namespace: ns, name: name}
		}
		f.err = err
		return f
	}
	f.good, f.err = file, nil
	return f
}

// problemName is the pod name a file that cannot be used is listed under: the object at
// fault when it is a pod (or of a kind minipod does not run), else the file's first pod.
func problemName(err error, data []byte, file *manifest.File) (namespace, name string) {
	var me *manifest.Error
	if errors.As(err, &me) && me.Name != "" && me.Kind != manifest.KindConfigMap && me.Kind != manifest.KindSecret {
		return me.Namespace, me.Name
	}
	if file != nil {
		if len(file.Pods) == 0 {
			return "", ""
		}
		return file.Pods[0].Namespace, file.Pods[0].Name
	}
	return manifest.PeekName(data)
}

// checkSecretPerms refuses a file that holds a Secret and that group or others may read, as a
// Secret of --secret-dir is refused: whoever can read the file learns the secret.
func (s *Source) checkSecretPerms(path string, mode os.FileMode, file *manifest.File) error {
	if s.cfg.InsecurePerms || len(file.Secrets) == 0 || mode.Perm()&0o077 == 0 {
		return nil
	}
	return &manifest.Error{Reason: ReasonInsecure, Message: fmt.Sprintf(
		"manifest file %s holds Secret %s and has mode %#o: a file with a Secret must be readable by its owner only (chmod 600 %s; or run minipod with --insecure-manifest-perms)",
		path, file.Secrets[0].Name, mode.Perm(), path)}
}

// peekedError remembers the pod name read from a file that is otherwise unusable.
type peekedError struct {
	err             error
	namespace, name string
}

func (e *peekedError) Error() string { return e.err.Error() }
func (e *peekedError) Unwrap() error { return e.err }

// read reads a manifest of at most limit bytes, and returns the mode of what it read. It opens
// the file non-blocking and checks what it opened (a regular file, owned and moded as
// checkPerms wants), so that a FIFO or a device put in the file's place after the directory was
// listed is refused, never waited on: a read that hangs would stop the source for good. The
// mode is that of the open file, so a Secret's file is judged by what was really read.
func (s *Source) read(path string, limit int64) ([]byte, os.FileMode, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	if err := notRegular(path, info.Mode()); err != nil {
		return nil, 0, err
	}
	if err := s.checkPerms(info, "file"); err != nil {
		return nil, 0, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, 0, err
	}
	if int64(len(data)) > limit {
		return nil, 0, manifest.CheckSize(int64(len(data)))
	}
	return data, info.Mode(), nil
}

// notRegular is the problem of a manifest path whose mode m is not a regular file's (a FIFO,
// a device, a socket), or nil.
func notRegular(path string, m os.FileMode) error {
	if m.IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch {
	case m&os.ModeNamedPipe != 0:
		what = "a named pipe (FIFO), not a regular file"
	case m&os.ModeCharDevice != 0:
		what = "a character device, not a regular file"
	case m&os.ModeDevice != 0:
		what = "a block device, not a regular file"
	case m&os.ModeSocket != 0:
		what = "a socket, not a regular file"
	}
	return &manifest.Error{Reason: ReasonUnreadable, Message: fmt.Sprintf("%s is %s: only regular files are read as manifests", path, what)}
}

// snapshot turns the per-file state into the desired set. When two files name the same pod,
// ConfigMap or Secret, the file that already owns it keeps it; otherwise the first in lexical
// order wins. A file of several objects loses only those another file owns.
func (s *Source) snapshot() Snapshot {
	paths := make([]string, 0, len(s.files))
	for p := range s.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	claims := map[string][]string{}
	claim := func(k, p string) { claims[k] = append(claims[k], p) }
	for _, p := range paths {
		g := s.files[p].good
		if g == nil {
			continue
		}
		for _, pod := range g.Pods {
			claim(pod.Namespace+"/"+pod.Name, p)
		}
		for _, cm := range g.ConfigMaps {
			claim(objectKey(manifest.KindConfigMap, cm.Namespace, cm.Name), p)
		}
		for _, sec := range g.Secrets {
			claim(objectKey(manifest.KindSecret, sec.Namespace, sec.Name), p)
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
		var running []*corev1.Pod
		for _, g := range f.pods() {
			k := g.Namespace + "/" + g.Name
			if owners[k] != p {
				msg := fmt.Sprintf("pod %s is already defined by %s; this file is ignored", k, owners[k])
				if len(f.pods()) > 1 || f.good.Objects() {
					msg = fmt.Sprintf("pod %s is already defined by %s; this pod of the file is ignored", k, owners[k])
				}
				snap.Problems = append(snap.Problems, Problem{
					Path: p, Namespace: g.Namespace, Name: g.Name, Reason: ReasonConflict, Message: msg,
				})
				continue
			}
			snap.Pods = append(snap.Pods, g)
			running = append(running, g)
		}
		var conflicts []string
		if f.good != nil {
			for _, cm := range f.good.ConfigMaps {
				if o := owners[objectKey(manifest.KindConfigMap, cm.Namespace, cm.Name)]; o != p {
					conflicts = append(conflicts, fmt.Sprintf("ConfigMap %s/%s is already defined by %s", cm.Namespace, cm.Name, o))
					continue
				}
				snap.ConfigMaps = append(snap.ConfigMaps, cm)
			}
			for _, sec := range f.good.Secrets {
				if o := owners[objectKey(manifest.KindSecret, sec.Namespace, sec.Name)]; o != p {
					conflicts = append(conflicts, fmt.Sprintf("Secret %s/%s is already defined by %s", sec.Namespace, sec.Name, o))
					continue
				}
				snap.Secrets = append(snap.Secrets, sec)
			}
		}
		if len(conflicts) > 0 {
			// The file's pods run, with the other file's object: told on each of them.
			err := &manifest.Error{Reason: ReasonConflict, Message: strings.Join(conflicts, "; ") + "; this file's definition is ignored"}
			probs := problemsOf(p, err, running)
			for i := range probs {
				probs[i].Note = probs[i].Running
			}
			snap.Problems = append(snap.Problems, probs...)
		}
		if f.err != nil {
			probs := problemsOf(p, f.err, running)
			if len(running) == 0 && f.good != nil && f.good.Objects() {
				// No pod tells it, but the file's ConfigMaps and Secrets are still used.
				probs[0].Message += "; the last good version's ConfigMaps and Secrets are kept"
			}
			snap.Problems = append(snap.Problems, probs...)
		}
	}
	snap.Problems = append(snap.Problems, s.overrides(snap)...)
	return snap
}

// objectKey is the key of a ConfigMap or Secret in Source.owners: kind/namespace/name, which no
// pod key (namespace/name) can be.
func objectKey(kind, namespace, name string) string {
	return kind + "/" + namespace + "/" + name
}

// problemsOf is the problem err of the file at path: one on each of its pods that still runs
// (from its last good version), else one of its own.
func problemsOf(path string, err error, running []*corev1.Pod) []Problem {
	pr := Problem{Path: path, Name: filepath.Base(path), Reason: manifest.ReasonInvalid, Message: err.Error()}
	var me *manifest.Error
	if errors.As(err, &me) {
		pr.Reason, pr.Message = me.Reason, me.Message
	}
	var pe *peekedError
	if errors.As(err, &pe) && pe.name != "" {
		pr.Namespace, pr.Name = pe.namespace, pe.name
	}
	if len(running) == 0 {
		return []Problem{pr}
	}
	out := make([]Problem, len(running))
	for i, g := range running {
		out[i] = pr
		out[i].Namespace, out[i].Name, out[i].Running = g.Namespace, g.Name, true
		if pr.Reason != ReasonConflict {
			out[i].Message += "; the last good version keeps running"
		}
	}
	return out
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
