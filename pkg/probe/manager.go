package probe

import (
	"container/heap"
	"context"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxAttempts is how many times an attempt that could not be made (Unknown) is tried again
// within one period, as the kubelet's maxProbeRetries.
const maxAttempts = 3

// DefaultConcurrency is the number of probe attempts a Manager runs at once when NewManager is
// given a number below one.
const DefaultConcurrency = 8

// Manager schedules the probes of many containers. A single goroutine keeps every probe in a
// heap ordered by when it is next due and hands due probes to a fixed pool of workers, so the
// cost of a probe between attempts is a heap entry, not a goroutine.
//
// Per probe it follows the kubelet's worker: the first attempt is initialDelaySeconds after the
// container started, later ones periodSeconds apart; a probe is never run twice at once; while
// a startup probe is defined and has not succeeded, liveness and readiness are not run, and once
// it succeeds it is not run again (readiness and liveness then start at once, or when their own
// initial delay ends). After a Failure verdict from liveness or startup that probe stops: the
// caller restarts the container and calls Remove (and Add for the new one).
type Manager struct {
	concurrency int

	mu      sync.Mutex
	entries map[string]*entry
	due     probeHeap
	seq     uint64

	wake chan struct{} // pokes the scheduler when the heap changed; capacity 1
}

// entry is one container's probes.
type entry struct {
	key       string
	container *corev1.Container
	podIP     string
	started   time.Time
	execFn    ExecFunc
	onChange  func(kind Kind, r Result, msg string)
	onFailed  func(kind Kind, msg string) // may be nil
	probes    [len(kinds)]*probeState     // nil where the container has no such probe

	startupDone bool // guarded by Manager.mu

	removed atomic.Bool
	ctx     context.Context // cancelled by Remove, stopping attempts in flight
	cancel  context.CancelFunc
	cbMu    sync.Mutex // serialises onChange calls for this key
}

// probeState is one probe of one container: a heap element while waiting to be due.
type probeState struct {
	e    *entry
	kind Kind
	spec *corev1.Probe
	t    *tracker // guarded by Manager.mu

	due   time.Time
	seq   uint64 // order among probes due at the same time
	index int    // position in the heap, -1 when not in it
}

// NewManager returns a Manager that runs at most concurrency probe attempts at once
// (DefaultConcurrency when concurrency < 1). Probes are run once Run is called.
func NewManager(concurrency int) *Manager {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	return &Manager{
		concurrency: concurrency,
		entries:     make(map[string]*entry),
		wake:        make(chan struct{}, 1),
	}
}

// Run runs due probes until ctx is done, then waits for attempts in flight to end. Call it once.
func (m *Manager) Run(ctx context.Context) {
	jobs := make(chan *probeState)
	var wg sync.WaitGroup
	for range m.concurrency {
		wg.Go(func() {
			for ps := range jobs {
				m.attempt(ctx, ps)
			}
		})
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var ready []*probeState // due, waiting for a free worker
	for {
		m.mu.Lock()
		now := time.Now()
		for len(m.due) > 0 && !m.due[0].due.After(now) {
			ready = append(ready, heap.Pop(&m.due).(*probeState))
		}
		var next time.Time
		if len(m.due) > 0 {
			next = m.due[0].due
		}
		m.mu.Unlock()

		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(next.Sub(now))
		}
		var (
			send chan *probeState // nil (never ready) while nothing is due
			head *probeState
		)
		if len(ready) > 0 {
			send, head = jobs, ready[0]
		}
		select {
		case <-ctx.Done():
			return
		case send <- head:
			ready[0] = nil
			ready = ready[1:]
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// AddOption changes how Add probes a container.
type AddOption func(*entry)

// WithFailedAttempts makes fn be called for every failed attempt, before any verdict change
// that attempt causes: the kubelet records an Unhealthy event for each failed probe, not only
// for the one that crosses failureThreshold. The same ordering rules as for onChange apply.
func WithFailedAttempts(fn func(kind Kind, msg string)) AddOption {
	return func(e *entry) { e.onFailed = fn }
}

// Add starts probing one container. key is opaque (e.g. "ns/name/uid/container/attempt"); a key
// already present is replaced. started is when the container started (zero: now). execFn runs
// exec probes. onChange is called each time the verdict of a kind changes, with the new verdict
// and the message of the attempt that decided it; it is called from the manager's goroutines,
// never concurrently for the same key, and no call starts after Remove(key) returns (one in
// progress may still be finishing). It may call Add and Remove.
//
// Initial verdicts, not reported through onChange: readiness Failure until it first succeeds,
// liveness Success, startup Unknown until it succeeds or fails for good. A container without a
// readiness probe is ready once started (and started once running when it has no startup
// probe); that is for the caller to apply.
func (m *Manager) Add(key string, c *corev1.Container, podIP string, started time.Time, execFn ExecFunc, onChange func(kind Kind, r Result, msg string), opts ...AddOption) {
	if c == nil {
		return
	}
	if started.IsZero() {
		started = time.Now()
	}
	if onChange == nil {
		onChange = func(Kind, Result, string) {}
	}
	e := &entry{
		key:       key,
		container: c.DeepCopy(),
		podIP:     podIP,
		started:   started,
		execFn:    execFn,
		onChange:  onChange,
	}
	for _, o := range opts {
		o(e)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	specs := [len(kinds)]*corev1.Probe{
		Startup:   e.container.StartupProbe,
		Liveness:  e.container.LivenessProbe,
		Readiness: e.container.ReadinessProbe,
	}
	initial := [len(kinds)]Result{Startup: Unknown, Liveness: Success, Readiness: Failure}
	for _, k := range kinds {
		p := specs[k]
		if p == nil {
			continue
		}
		success := p.SuccessThreshold
		if k != Readiness {
			success = 1 // the API allows no other value for liveness and startup
		}
		failure := p.FailureThreshold
		if failure < 1 {
			failure = 3 // the API default
		}
		e.probes[k] = &probeState{e: e, kind: k, spec: p, t: newTracker(success, failure, initial[k]), index: -1}
	}
	e.startupDone = e.probes[Startup] == nil

	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(key)
	m.entries[key] = e
	now := time.Now()
	for _, ps := range e.probes {
		if ps != nil && (ps.kind == Startup || e.startupDone) {
			m.pushLocked(ps, e.firstDue(ps, now))
		}
	}
	m.poke()
}

// Remove stops probing the container added under key, and cancels its attempts in flight.
func (m *Manager) Remove(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(key)
}

// Result returns the current verdict of one kind of probe of the container added under key;
// ok is false when there is no such container or probe.
func (m *Manager) Result(key string, kind Kind) (r Result, ok bool) {
	if kind < 0 || int(kind) >= len(kinds) {
		return Unknown, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[key]
	if e == nil || e.probes[kind] == nil {
		return Unknown, false
	}
	return e.probes[kind].t.verdict, true
}

func (m *Manager) removeLocked(key string) {
	e := m.entries[key]
	if e == nil {
		return
	}
	delete(m.entries, key)
	e.removed.Store(true)
	e.cancel()
	for _, ps := range e.probes {
		if ps != nil && ps.index >= 0 {
			heap.Remove(&m.due, ps.index)
		}
	}
}

// attempt runs one due probe on a worker, reports a verdict change and schedules the next run.
func (m *Manager) attempt(runCtx context.Context, ps *probeState) {
	e := ps.e
	if e.removed.Load() {
		return
	}
	ctx, cancel := context.WithCancel(runCtx)
	stop := context.AfterFunc(e.ctx, cancel)
	var (
		r   Result
		msg string
	)
	for range maxAttempts {
		r, msg = Do(ctx, ps.spec, e.podIP, e.container, e.execFn)
		if r != Unknown || ctx.Err() != nil {
			break
		}
	}
	stop()
	cancel()

	m.mu.Lock()
	if e.removed.Load() {
		m.mu.Unlock()
		return
	}
	changed, verdict := ps.t.observe(r)
	hold := changed && verdict == Failure && (ps.kind == Liveness || ps.kind == Startup)
	if hold {
		ps.t.reset()
	}
	startedNow := changed && ps.kind == Startup && verdict == Success
	if startedNow {
		e.startupDone = true
	}
	m.mu.Unlock()

	if changed || (r == Failure && e.onFailed != nil) {
		// Delivered before the probe is rescheduled, so verdicts of one kind arrive in order.
		e.cbMu.Lock()
		if !e.removed.Load() {
			if r == Failure && e.onFailed != nil {
				e.onFailed(ps.kind, msg)
			}
			if changed {
				e.onChange(ps.kind, verdict, msg)
			}
		}
		e.cbMu.Unlock()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if e.removed.Load() {
		return
	}
	now := time.Now()
	switch {
	case hold:
		// The container is going to be restarted; probing resumes when it is added again.
	case startedNow:
		for _, k := range [...]Kind{Liveness, Readiness} {
			if p := e.probes[k]; p != nil {
				m.pushLocked(p, e.firstDue(p, now))
			}
		}
	default:
		next := ps.due.Add(period(ps.spec))
		if next.Before(now) {
			next = now // the attempt outlasted the period: go again at once, like a ticker
		}
		m.pushLocked(ps, next)
	}
	m.poke()
}

// firstDue is when a probe first runs: initialDelaySeconds after the container started, but not
// before now.
func (e *entry) firstDue(ps *probeState, now time.Time) time.Time {
	t := e.started.Add(time.Duration(ps.spec.InitialDelaySeconds) * time.Second)
	if t.Before(now) {
		return now
	}
	return t
}

// period is the probe's periodSeconds, 10s when unset.
func period(p *corev1.Probe) time.Duration {
	if p.PeriodSeconds < 1 {
		return 10 * time.Second
	}
	return time.Duration(p.PeriodSeconds) * time.Second
}

func (m *Manager) pushLocked(ps *probeState, due time.Time) {
	m.seq++
	ps.due, ps.seq = due, m.seq
	heap.Push(&m.due, ps)
}

// poke wakes the scheduler without blocking.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// probeHeap is a min-heap of probes by due time.
type probeHeap []*probeState

func (h probeHeap) Len() int { return len(h) }
func (h probeHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h probeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *probeHeap) Push(x any) {
	ps := x.(*probeState)
	ps.index = len(*h)
	*h = append(*h, ps)
}
func (h *probeHeap) Pop() any {
	old := *h
	n := len(old)
	ps := old[n-1]
	old[n-1] = nil
	ps.index = -1
	*h = old[:n-1]
	return ps
}
