package pod

import (
	"context"
	"sync"
)

// StartSlots is how many pods the daemon starts at once on a machine with cpus CPUs. A pod's start is a chain of short
// processes (a shim, runc for the pause and each container, the CNI plugins) with containerd
// calls between them, and much of it waits rather than computes, so several starts per CPU
// keep the CPUs busy. Many more only get in each other's way: on 2 CPUs, 50 pods dropped at
// once were all running about 11 % sooner with 16 at a time than with all 50 at once, and 20
// took as long as before; with 8 at a time, 50 gained a little more but 20 lost 11 %
// (docs/performance.md). The pods that wait are listed as Pending (ContainerCreating).
func StartSlots(cpus int) int { return max(8, 8*cpus) }

// slotHold is the start slot a worker holds while it makes its pod's sandbox and first
// containers. A wait that does not use the CPU, an image pull or a postStart hook, gives it
// back early, so that a slow registry or hook does not hold up other pods' starts. release may
// be called any number of times and from the goroutines that start a pod's containers together.
type slotHold struct {
	mu    sync.Mutex
	slots chan struct{}
	held  bool
}

// take waits until one of the slots is free and takes it. It gives up, returning false, when
// ctx ends first: the context of a pod version ends when its file is removed or changed, so a
// pod is never made only to be torn down.
func (h *slotHold) take(ctx context.Context) bool {
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	h.mu.Lock()
	h.held = true
	h.mu.Unlock()
	return true
}

func (h *slotHold) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held {
		h.held = false
		<-h.slots
	}
}
