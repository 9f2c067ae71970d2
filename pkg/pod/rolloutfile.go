package pod

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/minipod/minipod/pkg/sandbox"
)

// recordWriter writes the workers' rollout records on a goroutine of its own: a durable write
// syncs the file and its directory, which on an SD card can take a good part of a second, and
// a worker's loop must not wait for it (nor a pod's start, which writes one). Only the latest
// content of each file is written; a removal is content nil. A record lost to a crash before it
// was written costs a version judged again, nothing more.
type recordWriter struct {
	mu      sync.Mutex
	pending map[string][]byte // by path; nil: remove the file
	order   []string          // paths in the order they were first made pending
	wake    chan struct{}
	done    chan struct{}
	log     *slog.Logger
}

func newRecordWriter(log *slog.Logger) *recordWriter {
	return &recordWriter{pending: map[string][]byte{}, wake: make(chan struct{}, 1), log: log}
}

// put makes data the next content of path (nil: remove it). It never blocks on the disk.
func (rw *recordWriter) put(path string, data []byte) {
	rw.mu.Lock()
	if _, ok := rw.pending[path]; !ok {
		rw.order = append(rw.order, path)
	}
	rw.pending[path] = data
	rw.mu.Unlock()
	select {
	case rw.wake <- struct{}{}:
	default:
	}
}

// get returns the content pending for path, if any (nil: it is being removed), so that a
// reader sees what was last put rather than what the disk holds yet.
func (rw *recordWriter) get(path string) (data []byte, ok bool) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	data, ok = rw.pending[path]
	return data, ok
}

// run writes what is pending until stop is closed, then what is left, and closes done.
func (rw *recordWriter) run(stop <-chan struct{}) {
	defer close(rw.done)
	for {
		select {
		case <-rw.wake:
			rw.flush()
		case <-stop:
			rw.flush()
			return
		}
	}
}

// start runs the writer; the returned function stops it once everything pending is written.
func (rw *recordWriter) start() (stop func()) {
	ch := make(chan struct{})
	rw.done = make(chan struct{})
	go rw.run(ch)
	return func() { close(ch); <-rw.done }
}

func (rw *recordWriter) flush() {
	for {
		rw.mu.Lock()
		if len(rw.order) == 0 {
			rw.mu.Unlock()
			return
		}
		path := rw.order[0]
		data := rw.pending[path]
		rw.mu.Unlock()
		var err error
		if data == nil {
			if err = os.Remove(path); os.IsNotExist(err) {
				err = nil
			}
		} else if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			err = sandbox.WriteFileAtomic(path, data, 0o600)
		}
		if err != nil {
			rw.log.Error("rollout record not written", "path", path, "err", err)
		}
		rw.mu.Lock()
		// Done with path unless it was put again while being written: then it stays pending,
		// at the front, and is written again with its newer content.
		if cur, ok := rw.pending[path]; ok && sameContent(cur, data) {
			delete(rw.pending, path)
			rw.order = rw.order[1:]
		}
		rw.mu.Unlock()
	}
}

// sameContent compares two pending contents, nil (a removal) being unlike any file.
func sameContent(a, b []byte) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	return string(a) == string(b)
}
