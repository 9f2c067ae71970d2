package logs

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/minipod/minipod/pkg/metrics"
)

// DefaultCapInterval is how often the node-wide cap is checked: the kubelet's container log
// manager checks rotation every 10 seconds.
const DefaultCapInterval = 10 * time.Second

// LogFile is one container log file under the log directory, as the cap sees it.
type LogFile struct {
	Path    string
	Size    int64
	ModTime time.Time
	// Current is the file a container attempt writes now, or wrote last: the newest attempt's
	// <attempt>.log of its container. It is never removed.
	Current bool
}

// OverCap picks the files to remove so that the sizes of all files sum to at most max: the
// files that are not current (rotated files, and the logs of earlier attempts), oldest
// modified first. It returns them and the total left, which stays above max when the current
// files alone exceed it. max <= 0 means no cap.
func OverCap(files []LogFile, max int64) (remove []LogFile, total int64) {
	for _, f := range files {
		total += f.Size
	}
	if max <= 0 || total <= max {
		return nil, total
	}
	old := make([]LogFile, 0, len(files))
	for _, f := range files {
		if !f.Current {
			old = append(old, f)
		}
	}
	slices.SortFunc(old, func(a, b LogFile) int {
		return cmp.Or(a.ModTime.Compare(b.ModTime), cmp.Compare(a.Path, b.Path))
	})
	for _, f := range old {
		if total <= max {
			break
		}
		remove = append(remove, f)
		total -= f.Size
	}
	return remove, total
}

// ScanDir lists the container log files under dir, laid out as the pod manager writes them:
// <pod dir>/<container>/<attempt>.log and its rotated files <attempt>.log.<time>. Anything
// else (and anything that is not a regular file: links are not followed) is left out.
func ScanDir(dir string) ([]LogFile, error) {
	pods, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []LogFile
	for _, p := range pods {
		if !p.IsDir() {
			continue
		}
		ctrs, _ := os.ReadDir(filepath.Join(dir, p.Name()))
		for _, c := range ctrs {
			if !c.IsDir() {
				continue
			}
			out = append(out, scanContainer(filepath.Join(dir, p.Name(), c.Name()))...)
		}
	}
	return out, nil
}

// scanContainer lists one container's log files; the newest attempt's log is current.
func scanContainer(dir string) []LogFile {
	entries, _ := os.ReadDir(dir)
	newest := -1
	var files []LogFile
	var current []int // attempt of each file that is an <attempt>.log, -1 for rotated ones
	for _, e := range entries {
		if !e.Type().IsRegular() { // DirEntry.Type does not follow links
			continue
		}
		num, rest, _ := strings.Cut(e.Name(), ".")
		attempt, err := strconv.Atoi(num)
		if err != nil || attempt < 0 || (rest != "log" && !strings.HasPrefix(rest, "log.")) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, LogFile{Path: filepath.Join(dir, e.Name()), Size: info.Size(), ModTime: info.ModTime()})
		if rest != "log" {
			current = append(current, -1)
			continue
		}
		current = append(current, attempt)
		newest = max(newest, attempt)
	}
	for i := range files {
		files[i].Current = current[i] >= 0 && current[i] == newest
	}
	return files
}

// Cap keeps the sum of all container log files under Dir at most Max, by removing the oldest
// files that no container writes now. Run it in a goroutine of its own.
type Cap struct {
	Dir      string
	Max      int64         // bytes; <= 0: no cap, Run returns at once
	Interval time.Duration // 0: DefaultCapInterval
	Log      *slog.Logger
	Metrics  *metrics.Metrics
}

// Run enforces the cap every Interval until ctx ends; it returns nil then.
func (c *Cap) Run(ctx context.Context) error {
	if c.Max <= 0 {
		return nil
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	interval := c.Interval
	if interval <= 0 {
		interval = DefaultCapInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	warned := false
	for {
		total := c.Enforce()
		switch {
		case total > c.Max && !warned:
			c.Log.Warn("container logs exceed the node-wide cap with current files alone", "bytes", total, "cap", c.Max)
			warned = true
		case total <= c.Max:
			warned = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// removeBeneath removes the file at path, which is below dir, following no symbolic link on
// the way: a directory swapped for a link between the scan and the removal is refused.
func removeBeneath(dir, path string) error {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return err
	}
	root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(root)
	parent, err := unix.Openat2(root, filepath.Dir(rel), &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		return os.Remove(path) // before Linux 5.6; the log dir is the daemon's alone
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	defer unix.Close(parent)
	if err := unix.Unlinkat(parent, filepath.Base(rel), 0); err != nil {
		return &fs.PathError{Op: "unlink", Path: path, Err: err}
	}
	return nil
}

// Enforce removes files once, as OverCap picks them, and returns the total left.
func (c *Cap) Enforce() int64 {
	files, err := ScanDir(c.Dir)
	if err != nil {
		if !os.IsNotExist(err) && c.Log != nil {
			c.Log.Warn("container log cap: scan log dir", "dir", c.Dir, "err", err)
		}
		return 0
	}
	remove, total := OverCap(files, c.Max)
	n := 0
	for _, f := range remove {
		if err := removeBeneath(c.Dir, f.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if c.Log != nil {
				c.Log.Warn("container log cap: remove file", "path", f.Path, "err", err)
			}
			total += f.Size
			continue
		}
		if c.Log != nil {
			c.Log.Info("removed container log file over the node-wide cap", "path", f.Path, "size", f.Size)
		}
		n++
	}
	c.Metrics.LogFilesRemoved(n)
	return total
}
