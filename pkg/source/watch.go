package source

import (
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// changes turns the directory's inotify events into when to read it, and which files a read
// must leave as they were.
//
// A file is complete when it is renamed into the directory (IN_MOVED_TO) or its writer closes
// it (IN_CLOSE_WRITE): the directory is read at once, and so it is when a file is unlinked
// (IN_DELETE): its pod is stopped at once. A file created or changed and not closed yet,
// renamed away, or whose mode changed is "in flux": a read keeps its previous
// state (its last pod, or no pod for a new file) until it is complete or the quiet time has
// passed without any such event. So a file written in place (cat >, cp) is never read half
// written because another file was renamed in, and vim's save, which renames a.yaml away and
// writes it anew, does not stop a.yaml's pod: a rename away takes effect only after the quiet
// time.
// The quiet time is also the fallback for a writer that keeps its file open.
type changes struct {
	in       *inotify
	dir      string // cleaned: file paths are filepath.Join(dir, name), as in Load
	wd       int32  // the directory's watch; -1 when there is none
	debounce time.Duration
	log      *slog.Logger

	pending    map[string]bool // paths in flux
	overflowed bool            // events were lost: every path is in flux until the quiet time
	loadNow    bool            // a file is complete: read the directory
	quiet      *time.Timer     // fires once the quiet time has passed since the last change in flux
}

func newChanges(in *inotify, dir string, debounce time.Duration, log *slog.Logger) *changes {
	c := &changes{in: in, dir: filepath.Clean(dir), wd: -1, debounce: debounce, log: log,
		pending: map[string]bool{}, quiet: time.NewTimer(time.Hour)}
	c.quiet.Stop()
	return c
}

// watch adds the directory's watch if there is none (at start, or after the directory was
// removed and maybe put back).
func (c *changes) watch() {
	if c.wd >= 0 {
		return
	}
	wd, err := unix.InotifyAddWatch(c.in.fd, c.dir, watchMask)
	if err != nil {
		c.log.Warn("cannot watch manifest dir, relying on re-lists", "dir", c.dir, "err", err)
		return
	}
	c.wd = int32(wd)
}

// drain handles every event queued up to now. A nil c (Load outside Run) has none.
func (c *changes) drain() {
	if c == nil {
		return
	}
	for _, ev := range c.in.take() {
		c.handle(ev)
	}
}

// inFlux says whether a read must leave path as it was.
func (c *changes) inFlux(path string) bool {
	return c != nil && (c.overflowed || c.pending[path])
}

// settle ends the quiet time: everything is read as it is now.
func (c *changes) settle() {
	clear(c.pending)
	c.overflowed = false
}

func (c *changes) waitQuiet() { c.quiet.Reset(c.debounce) }

func (c *changes) handle(ev event) {
	if ev.mask&unix.IN_Q_OVERFLOW != 0 {
		// Events were lost, so any file may be half written or gone: read everything again
		// once the directory has been quiet.
		c.log.Warn("manifest dir events overflowed; reading every manifest again after the quiet time", "dir", c.dir)
		c.overflowed = true
		c.waitQuiet()
		return
	}
	if c.wd < 0 || ev.wd != c.wd {
		return // a watch given up (the directory moved away); its IN_IGNORED comes later
	}
	if ev.mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0 {
		// The directory itself was removed or moved away: its pods are no longer desired
		// (after the quiet time, like any removal), and a directory put back in its place
		// needs a new watch.
		if ev.mask&unix.IN_MOVE_SELF != 0 {
			// The watch follows the moved directory; its events are not about ours.
			_, _ = unix.InotifyRmWatch(c.in.fd, uint32(c.wd))
		}
		c.wd = -1
		c.waitQuiet()
		return
	}
	if ev.name == "" {
		// The directory's own mode or owner changed (it decides whether any file is used):
		// a complete change.
		c.loadNow = true
		return
	}
	if ignored(ev.name) {
		return
	}
	path := filepath.Join(c.dir, ev.name)
	// A file unlinked (rm) is gone for good, as on a kubelet: no editor or tool deletes a
	// manifest before writing it back. Editors that save by moving the file away first
	// (IN_MOVED_FROM: vim, emacs) still get the quiet time.
	complete := ev.mask&(unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_DELETE) != 0
	if ev.mask&(unix.IN_CREATE|unix.IN_ISDIR) == unix.IN_CREATE {
		// A symlink is made whole by one call and never opened for writing: no close comes.
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			complete = true
		}
	}
	if complete {
		delete(c.pending, path)
		// After an overflow the quiet time's full read comes anyway.
		if !c.overflowed {
			c.loadNow = true
		}
		return
	}
	c.pending[path] = true
	c.waitQuiet()
}
