package runtime

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
)

// Task exits come from one subscription to containerd's /tasks/exit events, as in the CRI
// plugin, rather than from one blocking Wait call per task: a Wait holds a gRPC stream and two
// goroutines in the daemon (and more in containerd) for the whole life of every container.
//
// An event subscription only sees what happens after containerd has registered it, and the
// client cannot tell when that is. So the hub publishes a marker event of its own after each
// subscribe; once the marker comes back, every exit from then on arrives, and the hub asks
// containerd once about each task registered before that moment, which catches an exit that
// fell into the gap. When the stream breaks (containerd restarted), every waiter gets an Exit
// with Err set, as a broken Wait call gave before: the caller looks at the task again.

const syncTopic = "/minipod/exit-hub-sync"

type exitHub struct {
	r    *Runtime
	once sync.Once

	mu      sync.Mutex
	waiters map[string][]*exitWaiter // by container ID; a container has one task at a time
	execs   map[string]chan uint32   // exec exits by container ID + "/" + exec ID
	synced  bool                     // the current subscription is known to be live
}

// An exitWaiter keeps the task's ID, PID and output, not the client's task object: that holds
// the container's record with its OCI spec, about 5 KB a container for as long as it runs.
type exitWaiter struct {
	id  string
	pid uint32
	io  cio.IO // nil: no output to wait for
	out chan Exit

	mu     sync.Mutex
	sent   bool   // the exit is on out
	notify func() // called once the exit is on out
}

// ExitWatch yields one task's exit exactly once, after the task's output has been copied: on
// C, or (with Notify) to a function, which spares the caller a goroutine per task that does
// nothing but wait.
type ExitWatch struct {
	C <-chan Exit
	w *exitWaiter
}

// Notify calls f once the exit is on C, at once if it is already there. f runs on a goroutine
// of the runtime's and must not block; it receives from C itself. On the zero ExitWatch (no
// running task) it does nothing.
func (e ExitWatch) Notify(f func()) {
	if e.w == nil {
		return
	}
	e.w.mu.Lock()
	if !e.w.sent {
		e.w.notify = f
		e.w.mu.Unlock()
		return
	}
	e.w.mu.Unlock()
	f()
}

// send puts the exit on out (which has room for it: each waiter gets exactly one) and then
// calls the function Notify gave.
func (w *exitWaiter) send(e Exit) {
	w.out <- e
	w.mu.Lock()
	w.sent = true
	f := w.notify
	w.mu.Unlock()
	if f != nil {
		f()
	}
}

func (w *exitWaiter) watch() ExitWatch { return ExitWatch{C: w.out, w: w} }

// NewExitWatch returns a watch and the function that delivers its exit, once, for a runtime
// other than containerd's (a test's fake): the watch behaves as one of a real task.
func NewExitWatch() (ExitWatch, func(Exit)) {
	w := &exitWaiter{out: make(chan Exit, 1)}
	var once sync.Once
	return w.watch(), func(e Exit) { once.Do(func() { w.send(e) }) }
}

// start starts the subscription on first use; it ends when the runtime is closed.
func (h *exitHub) start() {
	h.once.Do(func() {
		h.waiters = map[string][]*exitWaiter{}
		h.execs = map[string]chan uint32{}
		go h.run(h.r.done)
	})
}

// wait registers task's exit. The caller must register before the task can exit unseen:
// before Start, or before asking for the task's status.
func (h *exitHub) wait(id string, pid uint32, tio cio.IO) *exitWaiter {
	h.start()
	w := &exitWaiter{id: id, pid: pid, io: tio, out: make(chan Exit, 1)}
	h.mu.Lock()
	h.waiters[w.id] = append(h.waiters[w.id], w)
	h.mu.Unlock()
	return w
}

// exited hands e to the waiters of container id whose task has pid.
func (h *exitHub) exited(id string, pid uint32, e Exit) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var keep []*exitWaiter
	for _, w := range h.waiters[id] {
		if w.pid == pid {
			deliver(w, e)
		} else {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 {
		delete(h.waiters, id)
	} else {
		h.waiters[id] = keep
	}
}

// deliver gives w its exit once the task's output is copied, so that a container's log is
// complete when its exit is handled.
func deliver(w *exitWaiter, e Exit) {
	tio := w.io
	if tio == nil || e.Err != nil {
		w.send(e)
		return
	}
	go func() {
		drained := make(chan struct{})
		go func() { tio.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(ioDrain):
		}
		tio.Close()
		w.send(e)
	}()
}

// run keeps a subscription open until ctx ends, resubscribing with backoff.
func (h *exitHub) run(ctx context.Context) {
	ctx = h.r.ns(ctx)
	delay := 100 * time.Millisecond
	for seq := 0; ctx.Err() == nil; seq++ {
		sctx, cancel := context.WithCancel(ctx)
		evs, errs := h.r.client.Subscribe(sctx, `topic=="/tasks/exit"`, `topic==`+strconv.Quote(syncTopic))
		marker := "sync-" + strconv.Itoa(seq)
		published := h.publishMarker(sctx, marker)
	loop:
		for {
			select {
			case <-ctx.Done():
				cancel()
				return
			case <-published:
				// Not seen back yet: publish again (the first may have beaten the subscription).
				published = h.publishMarker(sctx, marker)
			case env := <-evs:
				if env == nil || env.Namespace != h.r.namespace {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				switch ev := v.(type) {
				case *apievents.TaskExit:
					if ev.ID != ev.ContainerID {
						h.execExited(ev.ContainerID+"/"+ev.ID, ev.ExitStatus)
						continue
					}
					h.exited(ev.ContainerID, ev.Pid, Exit{Code: ev.ExitStatus, At: ev.ExitedAt.AsTime()})
				case *apievents.ContainerUpdate:
					if ev.ID == marker && !h.isSynced() {
						delay = 100 * time.Millisecond
						published = nil
						h.resync(ctx)
					}
				}
			case <-errs:
				break loop
			}
		}
		cancel()
		h.broken()
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// publishMarker publishes the marker after a short pause and returns a channel that fires a
// while later, when it is time to publish again if the marker has not come back.
func (h *exitHub) publishMarker(ctx context.Context, marker string) <-chan time.Time {
	go func() {
		_ = h.r.client.EventService().Publish(ctx, syncTopic, &apievents.ContainerUpdate{ID: marker})
	}()
	return time.After(500 * time.Millisecond)
}

func (h *exitHub) isSynced() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.synced
}

// resync marks the subscription live, then asks containerd about every task registered so
// far: one that ended before the subscription saw it is delivered from its status.
func (h *exitHub) resync(ctx context.Context) {
	h.mu.Lock()
	h.synced = true
	var ws []*exitWaiter
	for _, l := range h.waiters {
		ws = append(ws, l...)
	}
	h.mu.Unlock()
	for _, w := range ws {
		resp, err := h.r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: w.id})
		if err != nil {
			if IsNotFound(errgrpc.ToNative(err)) {
				h.exited(w.id, w.pid, Exit{Unknown: true, At: time.Now()})
			}
			continue
		}
		if p := resp.GetProcess(); p.GetStatus() == tasktypes.Status_STOPPED {
			h.exited(w.id, w.pid, Exit{Code: p.GetExitStatus(), At: p.GetExitedAt().AsTime()})
		}
	}
}

// broken ends every wait with an error: exits may now be missed until the next subscription,
// so the callers look at their tasks again (and register again).
func (h *exitHub) broken() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.synced = false
	for k, ch := range h.execs {
		close(ch) // closed without a code: ask containerd instead
		delete(h.execs, k)
	}
	for id, l := range h.waiters {
		for _, w := range l {
			deliver(w, Exit{Err: errExitStreamBroken})
		}
		delete(h.waiters, id)
	}
}

// forget unregisters w without delivering anything (its task turned out not to run).
func (h *exitHub) forget(id string, w *exitWaiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	l := h.waiters[id]
	for i, x := range l {
		if x == w {
			l = append(l[:i:i], l[i+1:]...)
			break
		}
	}
	if len(l) == 0 {
		delete(h.waiters, id)
	} else {
		h.waiters[id] = l
	}
}

var errExitStreamBroken = errors.New("containerd's event stream broke; the task's exit may have been missed")

// waitExec registers the exit of an exec'd process before it starts. The channel yields its
// exit code, or is closed without one when the event stream cannot be trusted to bring it (not
// yet live, or broken): the caller then asks containerd with a Wait call.
func (h *exitHub) waitExec(containerID, execID string) (<-chan uint32, func()) {
	h.start()
	ch := make(chan uint32, 1)
	k := containerID + "/" + execID
	h.mu.Lock()
	if h.synced {
		h.execs[k] = ch
	} else {
		close(ch)
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if h.execs[k] == ch {
			delete(h.execs, k)
		}
		h.mu.Unlock()
	}
}

func (h *exitHub) execExited(k string, code uint32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch := h.execs[k]; ch != nil {
		ch <- code
		delete(h.execs, k)
	}
}
