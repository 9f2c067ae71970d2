package pod

import (
	"context"
	goruntime "runtime"
	"sync"
	"testing"
	"testing/synctest"
)

func TestSlotHoldBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slots := make(chan struct{}, 2)
		a, b, c := &slotHold{slots: slots}, &slotHold{slots: slots}, &slotHold{slots: slots}
		for _, h := range []*slotHold{a, b} {
			if !h.take(context.Background()) {
				t.Fatal("take with a slot free failed")
			}
		}
		got := make(chan bool, 1)
		go func() { got <- c.take(context.Background()) }()
		synctest.Wait() // the third take blocks, or has returned
		select {
		case <-got:
			t.Fatal("the third take returned while both slots were held")
		default:
		}
		a.release()
		a.release() // a second release must not free b's or c's slot
		if !<-got {
			t.Fatal("the third take failed after a release")
		}
		if n := len(slots); n != 2 {
			t.Fatalf("%d slots taken, want 2 (b and c)", n)
		}
		b.release()
		c.release()
		if n := len(slots); n != 0 {
			t.Fatalf("%d slots taken after all released", n)
		}
	})
}

func TestSlotHoldGivesWay(t *testing.T) {
	slots := make(chan struct{}, 1)
	holder := &slotHold{slots: slots}
	holder.take(context.Background())
	defer holder.release()

	// The version's end (its file removed or changed, or the daemon's end) ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	w := &slotHold{slots: slots}
	done := make(chan bool)
	go func() { done <- w.take(ctx) }()
	cancel()
	if ok := <-done; ok {
		t.Fatal("take after cancel = true")
	}
	w.release() // holds nothing: must not free the holder's slot
	if n := len(slots); n != 1 {
		t.Fatalf("%d slots taken, want the holder's 1", n)
	}
}

// The containers of a pod start in goroutines of their own, and each may give the slot back
// before a pull or a hook: only the first release frees it.
func TestSlotHoldConcurrentRelease(t *testing.T) {
	slots := make(chan struct{}, 3)
	other := &slotHold{slots: slots}
	other.take(context.Background())
	h := &slotHold{slots: slots}
	h.take(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(h.release)
	}
	wg.Wait()
	if n := len(slots); n != 1 {
		t.Fatalf("%d slots taken, want 1 (the other holder's)", n)
	}
}

func TestStartSlots(t *testing.T) {
	for _, c := range []struct{ cpus, want int }{{0, 8}, {1, 8}, {2, 16}, {4, 32}} {
		if got := StartSlots(c.cpus); got != c.want {
			t.Errorf("StartSlots(%d) = %d, want %d", c.cpus, got, c.want)
		}
	}
	if m := NewManager(Config{}); cap(m.startSlots) != StartSlots(goruntime.NumCPU()) {
		t.Errorf("the daemon's slots: %d, want StartSlots(NumCPU) = %d", cap(m.startSlots), StartSlots(goruntime.NumCPU()))
	}
}
