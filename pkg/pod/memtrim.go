package pod

import (
	"sync"
	"time"

	"github.com/minipod/minipod/pkg/reclaim"
)

// trimQuiet is how long the daemon must have started and stopped no container before it gives
// memory it no longer uses back to the OS.
const trimQuiet = 5 * time.Second

// memTrim returns the memory a burst of pod starts or stops leaves unused to the OS once the
// burst is over (reclaim.Release). Go's background scavenger returns free pages only slowly and
// keeps those that lie among pages in use (it avoids breaking up what could be huge pages), so
// after 50 pods started at once about 2 MB of heap stayed resident with nothing in it; and the
// code of the start and stop paths stays mapped. A quiet daemon has no use for either: it
// allocates little between bursts and runs little code. Event-driven, no timer runs while idle.
type memTrim struct {
	quiet time.Duration
	free  func() // reclaim.Release; a test's counter in unit tests

	mu    sync.Mutex
	timer *time.Timer
}

func newMemTrim() *memTrim { return &memTrim{quiet: trimQuiet, free: reclaim.Release} }

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
