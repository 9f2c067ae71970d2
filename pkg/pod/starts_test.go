package pod

import (
	"context"
	goruntime "runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestSlotHoldBounds(t *testing.T) {
	slots := make(chan struct{}, 2)
	a, b, c := &slotHold{slots: slots}, &slotHold{slots: slots}, &slotHold{slots: slots}
	for _, h := range []*slotHold{a, b} {
		if _, ok := h.take(context.Background(), nil, func() { t.Error("waited with a slot free") }); !ok {
			t.Fatal("take with a slot free failed")
		}
	}
	waiting := make(chan struct{})
	got := make(chan bool)
	go func() {
		_, ok := c.take(context.Background(), nil, func() { close(waiting) })
		got <- ok
	}()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("the third take did not wait")
	}
	select {
	case <-got:
		t.Fatal("the third take returned while both slots were held")
	default:
	}
	a.release()
	a.release() // a second release must not free b's or c's slot
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("the third take failed after a release")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the third take did not get the released slot")
	}
	if n := len(slots); n != 2 {
		t.Fatalf("%d slots taken, want 2 (b and c)", n)
	}
	b.release()
	c.release()
	if n := len(slots); n != 0 {
		t.Fatalf("%d slots taken after all released", n)
	}
}

func TestSlotHoldGivesWay(t *testing.T) {
	slots := make(chan struct{}, 1)
	holder := &slotHold{slots: slots}
	holder.take(context.Background(), nil, nil)
	defer holder.release()

	// A newer version of the pod ends the wait: the worker syncs it at once.
	updates := make(chan *corev1.Pod, 1)
	w := &slotHold{slots: slots}
	want := &corev1.Pod{}
	want.Name = "newer"
	updates <- want
	p, ok := w.take(context.Background(), updates, nil)
	if ok || p != want {
		t.Fatalf("take = %v, %v; want the newer pod and false", p, ok)
	}
	w.release() // holds nothing: must not free the holder's slot
	if n := len(slots); n != 1 {
		t.Fatalf("%d slots taken, want the holder's 1", n)
	}

	// So does the daemon's end.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p, ok := w.take(ctx, nil, nil); ok || p != nil {
		t.Fatalf("take after cancel = %v, %v", p, ok)
	}
}

// The containers of a pod start in goroutines of their own, and each may give the slot back
// before a pull or a hook: only the first release frees it.
func TestSlotHoldConcurrentRelease(t *testing.T) {
	slots := make(chan struct{}, 3)
	other := &slotHold{slots: slots}
	other.take(context.Background(), nil, nil)
	h := &slotHold{slots: slots}
	h.take(context.Background(), nil, nil)
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
	if cap(startSlots) != StartSlots(goruntime.NumCPU()) {
		t.Errorf("the daemon's slots: %d, want StartSlots(NumCPU) = %d", cap(startSlots), StartSlots(goruntime.NumCPU()))
	}
}
