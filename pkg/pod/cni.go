package pod

import (
	"context"
	"fmt"
	"time"
)

// CNISlots is how many CNI operations (ADD or DEL, each a chain of plugin processes) the daemon
// runs at once on a machine with cpus CPUs. Go parks an OS thread in wait(2) for every child
// process it waits for, and keeps every thread it ever made: 50 pods dropped at once used to
// leave about 50 idle threads and 2 MB of their stacks behind for good. More plugins at once
// than CPUs to run them buys nothing either: they compete for the same CPUs and for the
// iptables lock.
func CNISlots(cpus int) int { return max(4, 2*cpus) }

// cniTimeout bounds one CNI operation, as the kubelet's runtime request timeout (2 min) bounds
// a sandbox's creation: a plugin that hangs fails its pod's attempt, which is retried with
// backoff, instead of holding a slot for ever.
const cniTimeout = 2 * time.Minute

// semaphore bounds how many operations run at once: one slot each.
type semaphore chan struct{}

// do runs fn, a CNI operation, when a slot is free, with cniTimeout.
func (s semaphore) do(ctx context.Context, fn func(context.Context) error) error {
	select {
	case s <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("waiting to run CNI: %w", ctx.Err())
	}
	defer func() { <-s }()
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	return fn(ctx)
}
