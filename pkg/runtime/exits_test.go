package runtime

import (
	"sync"
	"testing"
)

// TestExitWatchNotify checks that a notification comes exactly once, whether it was asked for
// before or after the exit arrived, and that the exit is on C when it comes.
func TestExitWatchNotify(t *testing.T) {
	for _, before := range []bool{true, false} {
		w := &exitWaiter{out: make(chan Exit, 1)}
		ew := w.watch()
		var (
			mu    sync.Mutex
			got   []Exit
			calls int
		)
		notify := func() {
			var e Exit
			select {
			case e = <-ew.C:
			default: // C is empty: the exit was not there, or this is a second call
				e = Exit{Unknown: true}
			}
			mu.Lock()
			got = append(got, e)
			calls++
			mu.Unlock()
		}
		if before {
			ew.Notify(notify)
		}
		w.send(Exit{Code: 7})
		if !before {
			ew.Notify(notify)
		}
		mu.Lock()
		if calls != 1 || len(got) != 1 || got[0].Unknown || got[0].Code != 7 {
			t.Errorf("notify before the exit=%v: %d calls, exits %+v; want one call with code 7", before, calls, got)
		}
		mu.Unlock()
	}
}

// TestExitWatchZero checks that the zero ExitWatch, which Task returns for a task that is not
// running, ignores Notify instead of panicking or calling back.
func TestExitWatchZero(t *testing.T) {
	called := false
	ExitWatch{}.Notify(func() { called = true })
	if called {
		t.Error("the zero ExitWatch called its notification")
	}
}

// TestExitWatchConcurrent races Notify against the exit's arrival: the notification must come
// exactly once either way.
func TestExitWatchConcurrent(t *testing.T) {
	for i := 0; i < 1000; i++ {
		w := &exitWaiter{out: make(chan Exit, 1)}
		ew := w.watch()
		done := make(chan Exit, 2)
		var wg sync.WaitGroup
		wg.Go(func() { w.send(Exit{Code: uint32(i)}) })
		ew.Notify(func() {
			select {
			case e := <-ew.C:
				done <- e
			default: // a second call: C is empty by now
				done <- Exit{Unknown: true}
			}
		})
		wg.Wait()
		if e := <-done; e.Unknown || e.Code != uint32(i) {
			t.Fatalf("round %d: got %+v", i, e)
		}
		select {
		case <-done:
			t.Fatalf("round %d: notified twice", i)
		default:
		}
	}
}
