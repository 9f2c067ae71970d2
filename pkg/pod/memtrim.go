package pod

import (
	"runtime/debug"
	"sync"
	"time"
)

// trimQuiet is how long the daemon must have started and stopped no container before it gives
// free heap back to the OS.
const trimQuiet = 5 * time.Second

// memTrim returns the memory a burst of pod starts or stops leaves free to the OS once the
// burst is over. Go's background scavenger returns free pages only slowly and keeps those that
// lie among pages in use (it avoids breaking up what could be huge pages), so after 50 pods
// started at once about 2 MB of heap stayed resident with nothing in it. A quiet daemon has no
// use for them: it allocates little between bursts. Event-driven, no timer runs while idle.
type memTrim struct {
	quiet time.Duration
	free  func() // debug.FreeOSMemory; a test's counter in unit tests

	mu    sync.Mutex
	timer *time.Timer
}

func newMemTrim() *memTrim { return &memTrim{quiet: trimQuiet, free: debug.FreeOSMemory} }

// touch notes a container started or a pod stopped: the trim runs once, quiet after the last.
func (t *memTrim) touch() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.timer == nil {
		t.timer = time.AfterFunc(t.quiet, t.free)
		return
	}
	t.timer.Reset(t.quiet)
}
