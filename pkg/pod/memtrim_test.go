package pod

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestMemTrimDebounce checks that touches in a burst give one trim, no earlier than the quiet
// time after the last touch, and that a later burst gives another.
func TestMemTrimDebounce(t *testing.T) {
	var n atomic.Int32
	fired := make(chan time.Time, 4)
	tr := &memTrim{quiet: 200 * time.Millisecond, free: func() { n.Add(1); fired <- time.Now() }}
	for round := 1; round <= 2; round++ {
		var last time.Time
		for i := 0; i < 5; i++ { // far quicker than quiet: one burst
			last = time.Now()
			tr.touch()
		}
		select {
		case at := <-fired:
			if d := at.Sub(last); d < tr.quiet {
				t.Errorf("round %d: trimmed %v after the last touch, want at least %v", round, d, tr.quiet)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("round %d: no trim", round)
		}
		if got := n.Load(); got != int32(round) {
			t.Errorf("after round %d: %d trims, want %d", round, got, round)
		}
	}
}
