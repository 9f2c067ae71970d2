package pod

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/minipod/minipod/pkg/runtime"
)

func TestPullMessage(t *testing.T) {
	const img = "registry.local/app:1"
	for _, tc := range []struct {
		done, total int64
		want        string
	}{
		{0, 0, `Pulling image "registry.local/app:1"`},
		{0, 1536, `Pulling image "registry.local/app:1": 0 B of 1.5 KiB`},
		{1023, 1023, `Pulling image "registry.local/app:1": 1023 B of 1023 B`},
		{3_250_586, 12 << 20, `Pulling image "registry.local/app:1": 3.1 MiB of 12.0 MiB`},
		{12 << 20, 12 << 20, `Pulling image "registry.local/app:1": 12.0 MiB of 12.0 MiB`},
		{5 << 30, 3 << 40, `Pulling image "registry.local/app:1": 5.0 GiB of 3.0 TiB`},
		{2000, 1000, `Pulling image "registry.local/app:1": 1000 B of 1000 B`}, // never more than the total
	} {
		if got := pullMessage(img, tc.done, tc.total); got != tc.want {
			t.Errorf("pullMessage(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
	if got := runtime.FormatBytes(5 << 50); got != "5120.0 TiB" {
		t.Errorf("FormatBytes(5 PiB) = %q", got)
	}
}

// Concurrent pulls of one image share one registry round trip and its progress; the next
// pull after it ended is a new one.
func TestPullsShared(t *testing.T) {
	var ps pulls
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(ctx context.Context, p *runtime.PullProgress) (runtime.Image, error) {
		calls.Add(1)
		<-release
		return runtime.Image{Ref: "x", ID: "sha256:1"}, nil
	}
	a, leaveA := ps.join("x", fn)
	defer leaveA()
	b, leaveB := ps.join("x", fn)
	defer leaveB()
	if a != b {
		t.Fatal("a second pull of the same image started a new one")
	}
	other, leaveOther := ps.join("y", func(context.Context, *runtime.PullProgress) (runtime.Image, error) {
		return runtime.Image{}, errors.New("nope")
	})
	<-other.done
	leaveOther()
	if other.err == nil {
		t.Error("the other image's error was lost")
	}
	close(release)
	<-a.done
	if a.img.ID != "sha256:1" || a.err != nil || calls.Load() != 1 {
		t.Errorf("shared pull: %+v %v after %d calls", a.img, a.err, calls.Load())
	}
	c, leaveC := ps.join("x", fn)
	defer leaveC()
	<-c.done
	if c == a || calls.Load() != 2 {
		t.Errorf("a pull after the first ended did not start anew (%d calls)", calls.Load())
	}
}

// A pull goes on while anyone waits for it, and is cancelled when the last waiter leaves: a pod
// removed while its image pulls does not keep the pull (and what it fetched) alive.
func TestPullsCancelledWhenAllLeave(t *testing.T) {
	var ps pulls
	started := make(chan context.Context, 1)
	fn := func(ctx context.Context, p *runtime.PullProgress) (runtime.Image, error) {
		started <- ctx
		<-ctx.Done()
		return runtime.Image{}, ctx.Err()
	}
	a, leaveA := ps.join("x", fn)
	b, leaveB := ps.join("x", fn)
	if a != b {
		t.Fatal("not shared")
	}
	ctx := <-started
	leaveA()
	leaveA() // leaving twice counts once
	if ctx.Err() != nil {
		t.Fatal("cancelled while a waiter was left")
	}
	leaveB()
	if ctx.Err() == nil {
		t.Fatal("the pull was not cancelled when its last waiter left")
	}
	<-a.done
	if !errors.Is(a.err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", a.err)
	}
	// A new waiter after that starts a new pull, not the cancelled one.
	c, leaveC := ps.join("x", func(context.Context, *runtime.PullProgress) (runtime.Image, error) {
		return runtime.Image{ID: "sha256:2"}, nil
	})
	defer leaveC()
	if <-c.done; c == a || c.img.ID != "sha256:2" {
		t.Errorf("a waiter after the cancel joined the cancelled pull")
	}
}
