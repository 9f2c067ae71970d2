package probe

import (
	"container/heap"
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// maxAttempts is how many times an attempt that could not be made (Unknown) is tried again
// within one period, as the kubelet's maxProbeRetries.
const maxAttempts = 3

// DefaultConcurrency is the number of slots for probe attempts a Manager has when NewManager
// is given a number below one (see Manager for what a slot bounds).
const DefaultConcurrency = 8

// slowAfter is how long an attempt may hold one of the Manager's slots. An attempt still
// running after that (a peer that accepts and never answers, a command that runs until
// timeoutSeconds) goes on without one, so it delays another probe by at most this long.
const slowAfter = time.Second

// Manager schedules the probes of many containers. A single goroutine keeps every probe in a
// heap ordered by when it is next due, so the cost of a probe between attempts is a heap entry,
// not a goroutine; each attempt runs on a goroutine of its own that ends with it.
//
// Per probe it follows the kubelet's worker: the first attempt is initialDelaySeconds after the
// container started, later ones periodSeconds apart; a probe is never run twice at once; while
// a startup probe is defined and has not succeeded, liveness and readiness are not run, and once
// it succeeds it is not run again (readiness then runs at once, liveness on its next tick with
// WithTicks, else at once; neither before its own initial delay ends). After a Failure verdict
// from liveness or startup that probe stops: the caller restarts the container and calls Remove
// (and Add for the new one).
//
// On a kubelet every probe has a goroutine of its own, so a slow probe delays only itself. Here
// attempts share slots, and fairness keeps that property:
//
//   - An attempt holds a slot until its probe has answered or for one second (slowAfter),
//     whichever comes first; the result callbacks run after the slot is given back. A probe
//     that hangs until its timeoutSeconds runs on without a slot after that second, as it
//     would on a kubelet.
//   - A due probe waits for a slot in its group's queue (a group is what WithGroup names: a pod;
//     without it, the container alone). One group holds max(1, concurrency/4) slots at most,
//     and its probes get them in the order they fell due.
//   - Between groups, a free slot goes to the group whose attempts have held slots for the
//     least time (fair queueing on slot time: an attempt counts as slowAfter while it holds
//     its slot and as the time it held it once it gives it back), ties to the probe due first.
//     A pod whose probes answer at once thus goes before pods whose probes hang. A group that
//     had nothing due comes back with at most slowAfter of credit over the others, so no group
//     starves another.
//
// So one slow pod never makes another pod's probe late, and more slow pods than slots make it
// wait for a second (slowAfter) at most once they have used slot time (when all fall due
// together for the first time, as after the daemon's restart, it waits its turn among them: a
// second per concurrency groups ahead of it). A slow pod's own probes share its slots: when
// they all hang they start two a second (at concurrency 8). The slots bound how many attempts
// start together (a burst of due exec probes runs concurrency at a time), not how long one may
// wait on a silent peer: attempts in flight are at most one per probe, as on a kubelet, and no
// probe has a goroutine between attempts.
type Manager struct {
	concurrency int // slots: attempts that may hold one at once
	groupCap    int // slots one group may hold at once

	mu       sync.Mutex
	entries  map[string]*entry
	groups   map[groupID]*group
	due      probeHeap // probes waiting for their due time
	runnable groupHeap // groups with a queued probe and a free slot, least usage first
	fresh    []*slot   // slots given, oldest first, until given back (front ones may be given back already)
	held     int       // slots held
	seq      uint64
	vtime    time.Duration // the most usage a group had when given a slot: fair queueing's clock

	wake chan struct{} // pokes the scheduler when the heap changed or a slot came free; capacity 1
}

// groupID names a group: an explicit WithGroup name, or a container key on its own.
type groupID struct {
	name string
	own  bool // name is the key of the only container in the group
}

// group is the probes of the containers that share a groupID, as the scheduler sees them.
type group struct {
	id    groupID
	refs  int           // entries in the group; the group is forgotten at zero
	queue []*probeState // due probes waiting for a slot, in due order
	held  int           // slots its attempts hold
	usage time.Duration // slot time its attempts used, those holding one counted as slowAfter
	index int           // position in Manager.runnable, -1 when not in it
}

// slot is what one attempt holds from its start until its probe answered or slowAfter passed.
type slot struct {
	ps    *probeState
	g     *group
	start time.Time
	held  bool // still held: false once given back
}

// entry is one container's probes.
type entry struct {
	key       string
	group     string // from WithGroup; empty: the container is a group of its own
	container *corev1.Container
	podIP     string
	started   time.Time
	ticks     time.Time // from WithTicks: when the probes' period ticks began; zero: none
	jitter    bool      // from WithTicks: each probe's ticks are shifted by a share of its period
	execFn    ExecFunc
	// The callbacks: set by Add, then guarded by cbMu (Handoff replaces them).
	onChange  func(kind Kind, r Result, msg string)
	onFailed  func(kind Kind, msg string) // may be nil
	onWarning func(kind Kind, msg string) // may be nil
	probes    [len(kinds)]*probeState     // nil where the container has no such probe

	g           *group // guarded by Manager.mu
	startupDone bool   // guarded by Manager.mu

	removed atomic.Bool
	ctx     context.Context // cancelled by Remove, stopping attempts in flight
	cancel  context.CancelFunc
	cbMu    sync.Mutex // serialises onChange calls for this key
}

// probeState is one probe of one container. Guarded by Manager.mu, it is in at most one of
// three places: the heap (waiting to be due), its group's queue (due, waiting for a slot), or
// in flight (from when its attempt got a slot until the attempt schedules the next one).
type probeState struct {
	e    *entry
	kind Kind
	spec *corev1.Probe
	t    *tracker // guarded by Manager.mu

	due    time.Time
	seq    uint64 // order among probes due at the same time
	index  int    // position in the heap, -1 when not in it
	queued bool   // in its group's queue

	stopped atomic.Bool // Stop was called for it: never run or reported again
}

// NewManager returns a Manager with concurrency slots (DefaultConcurrency when concurrency <
// 1), at most max(1, concurrency/4) of them for one group. Probes are run once Run is called.
func NewManager(concurrency int) *Manager {
	if concurrency < 1 {
		concurrency = DefaultConcurrency
	}
	return &Manager{
		concurrency: concurrency,
		groupCap:    max(1, concurrency/4),
		entries:     make(map[string]*entry),
		groups:      make(map[groupID]*group),
		wake:        make(chan struct{}, 1),
	}
}

// Run runs due probes until ctx is done, then waits for attempts in flight to end (ctx's end
// cancels them; a result callback that blocks keeps Run waiting). Call it once.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		m.mu.Lock()
		now := time.Now()
		for len(m.due) > 0 && !m.due[0].due.After(now) {
			m.queueLocked(heap.Pop(&m.due).(*probeState))
		}
		// Slots of attempts that ran past slowAfter come free; the front ones are the oldest.
		for len(m.fresh) > 0 && (!m.fresh[0].held || now.Sub(m.fresh[0].start) >= slowAfter) {
			m.releaseLocked(m.fresh[0], now)
			m.fresh[0] = nil
			m.fresh = m.fresh[1:]
		}
		for m.held < m.concurrency && len(m.runnable) > 0 {
			s := m.startLocked(now)
			wg.Go(func() { m.attempt(ctx, s) })
		}
		var next time.Time
		if len(m.due) > 0 {
			next = m.due[0].due
		}
		if len(m.fresh) > 0 {
			if t := m.fresh[0].start.Add(slowAfter); next.IsZero() || t.Before(next) {
				next = t
			}
		}
		m.mu.Unlock()

		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(next.Sub(now))
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// queueLocked puts a due probe at the end of its group's queue.
func (m *Manager) queueLocked(ps *probeState) {
	g := ps.e.g
	if len(g.queue) == 0 {
		// Usage a group did not use while it had nothing due is not a credit it can spend now.
		g.usage = max(g.usage, m.vtime-slowAfter)
	}
	ps.queued = true
	g.queue = append(g.queue, ps)
	m.fixLocked(g)
}

// startLocked gives a slot to the first probe of the runnable group that used the least slot
// time, and returns the slot.
func (m *Manager) startLocked(now time.Time) *slot {
	g := m.runnable[0]
	m.vtime = max(m.vtime, g.usage)
	g.usage += slowAfter // the most it can use; releaseLocked gives back what it did not
	ps := g.queue[0]
	g.queue[0] = nil
	g.queue = g.queue[1:]
	ps.queued = false
	s := &slot{ps: ps, g: g, start: now, held: true}
	g.held++
	m.held++
	m.fresh = append(m.fresh, s)
	m.fixLocked(g)
	return s
}

// releaseLocked gives s back at now; a second call does nothing.
func (m *Manager) releaseLocked(s *slot, now time.Time) {
	if !s.held {
		return
	}
	s.held = false
	s.g.usage -= slowAfter - min(now.Sub(s.start), slowAfter)
	s.g.held--
	m.held--
	m.fixLocked(s.g)
}

// fixLocked puts g in the runnable heap, moves it there or takes it out, as its queue and its
// held slots say.
func (m *Manager) fixLocked(g *group) {
	want := len(g.queue) > 0 && g.held < m.groupCap
	switch {
	case g.index >= 0 && want:
		heap.Fix(&m.runnable, g.index)
	case g.index >= 0:
		heap.Remove(&m.runnable, g.index)
	case want:
		heap.Push(&m.runnable, g)
	}
}

// AddOption changes how Add probes a container.
type AddOption func(*entry)

// WithGroup puts the container in a group for fairness (see Manager); for a pod's containers,
// name is the pod's key ("namespace/name"), so that one pod's probes share a quarter of the
// slots at most. Without it, or with an empty name, the container is a group of its own.
func WithGroup(name string) AddOption {
	return func(e *entry) { e.group = name }
}

// WithTicks makes the container's probes run on period ticks that began at origin, as the
// kubelet's probe workers do: a worker is made when the pod is synced, looks once at once (the
// container is usually not running yet) and then every periodSeconds. So the first probe of a
// container comes at the first tick after it started and after its initialDelaySeconds, up to
// a period after its start, not the instant it starts, before its server has bound its port.
// A restarted container keeps the pod's ticks. Without it, the first probe comes as soon as
// the initial delay is over.
//
// With jitter (containers found running when the daemon started), each probe's ticks are
// shifted by a share of its period drawn from the container's key, as the kubelet sleeps a
// random share of the period before its first tick after a restart: otherwise every probe of
// every adopted pod would fall due at the same instants.
func WithTicks(origin time.Time, jitter bool) AddOption {
	return func(e *entry) { e.ticks, e.jitter = origin, jitter }
}

// WithFailedAttempts makes fn be called for every failed attempt, before any verdict change
// that attempt causes: the kubelet records an Unhealthy event for each failed probe, not only
// for the one that crosses failureThreshold. The same ordering rules as for onChange apply.
func WithFailedAttempts(fn func(kind Kind, msg string)) AddOption {
	return func(e *entry) { e.onFailed = fn }
}

// WithWarnings makes fn be called for every attempt that succeeded with a warning (Warning: an
// HTTP redirect to another host), before any verdict change that attempt causes: the kubelet
// records a ProbeWarning event for each. The same ordering rules as for onChange apply.
func WithWarnings(fn func(kind Kind, msg string)) AddOption {
	return func(e *entry) { e.onWarning = fn }
}

// Add starts probing one container. key is opaque (e.g. "ns/name/uid/container/attempt"); a key
// already present is replaced. started is when the container started (zero: now). execFn runs
// exec probes. onChange is called each time the verdict of a kind changes, with the new verdict
// and the message of the attempt that decided it; it is called from the manager's goroutines,
// never concurrently for the same key, and no call starts after Remove(key) returns (one in
// progress may still be finishing). It may call Add and Remove.
//
// onChange (and the WithFailedAttempts and WithWarnings functions) must not block. It runs
// after the attempt gave its slot back, so it holds no other container's probes back, but until
// it returns its probe does not run again, the key's other verdicts wait, and Run cannot
// return. Hand the verdict to a channel with room, or drop it when the consumer is gone.
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
	id := groupID{name: e.group}
	if id.name == "" {
		id = groupID{name: key, own: true}
	}
	e.g = m.groups[id]
	if e.g == nil {
		e.g = &group{id: id, index: -1}
		m.groups[id] = e.g
	}
	e.g.refs++
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

// Stop stops the given kinds of probe of the container added under key and lets its other
// probes run on, as the kubelet stops liveness and startup probes when a pod begins
// terminating and keeps probing readiness (StopLivenessAndStartup). No report of a stopped
// probe starts after Stop returns; their verdicts stay what they were. It must not be called
// from the container's own callbacks.
func (m *Manager) Stop(key string, stop ...Kind) {
	m.mu.Lock()
	e := m.entries[key]
	if e == nil {
		m.mu.Unlock()
		return
	}
	for _, k := range stop {
		if k < 0 || int(k) >= len(kinds) || e.probes[k] == nil {
			continue
		}
		ps := e.probes[k]
		ps.stopped.Store(true)
		m.unscheduleLocked(ps)
	}
	m.mu.Unlock()
	// A report in progress finishes before Stop returns: later ones see stopped.
	e.cbMu.Lock()
	e.cbMu.Unlock()
}

// Handoff replaces the callbacks of the container added under key: onChange, and onFailed and
// onWarning as WithFailedAttempts and WithWarnings give them (each may be nil). A report in
// progress finishes first; no old callback starts after Handoff returns. It reports whether a
// container is added under key, and must not be called from that container's callbacks.
func (m *Manager) Handoff(key string, onChange func(kind Kind, r Result, msg string), onFailed, onWarning func(kind Kind, msg string)) bool {
	m.mu.Lock()
	e := m.entries[key]
	m.mu.Unlock()
	if e == nil {
		return false
	}
	if onChange == nil {
		onChange = func(Kind, Result, string) {}
	}
	e.cbMu.Lock()
	e.onChange, e.onFailed, e.onWarning = onChange, onFailed, onWarning
	e.cbMu.Unlock()
	return true
}

func (m *Manager) removeLocked(key string) {
	e := m.entries[key]
	if e == nil {
		return
	}
	delete(m.entries, key)
	e.removed.Store(true)
	e.cancel()
	g := e.g
	for _, ps := range e.probes {
		if ps != nil {
			m.unscheduleLocked(ps)
		}
	}
	// Attempts in flight keep g until they end; a new entry of the same name makes a new group.
	if g.refs--; g.refs == 0 {
		delete(m.groups, g.id)
	}
}

// unscheduleLocked takes a probe out of the heap or its group's queue, wherever it waits; one in
// flight is left to its attempt.
func (m *Manager) unscheduleLocked(ps *probeState) {
	switch {
	case ps.index >= 0:
		heap.Remove(&m.due, ps.index)
	case ps.queued:
		g := ps.e.g
		ps.queued = false
		i := slices.Index(g.queue, ps)
		g.queue = slices.Delete(g.queue, i, i+1)
		m.fixLocked(g)
	}
}

// attempt runs one due probe on its own goroutine, gives its slot back, reports a verdict
// change and schedules the next run.
func (m *Manager) attempt(runCtx context.Context, s *slot) {
	ps := s.ps
	e := ps.e
	if e.removed.Load() {
		m.mu.Lock()
		m.releaseLocked(s, time.Now())
		m.pokeIfRunnableLocked()
		m.mu.Unlock()
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
	warned := r == Warning
	if warned {
		r = Success // a success with something to report, as the kubelet counts it
	}

	m.mu.Lock()
	m.releaseLocked(s, time.Now())
	m.pokeIfRunnableLocked()
	if e.removed.Load() || ps.stopped.Load() {
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

	if changed || warned || r == Failure {
		// Delivered before the probe is rescheduled, so verdicts of one kind arrive in order.
		e.cbMu.Lock()
		if !e.removed.Load() && !ps.stopped.Load() {
			if r == Failure && e.onFailed != nil {
				e.onFailed(ps.kind, msg)
			}
			if warned && e.onWarning != nil {
				e.onWarning(ps.kind, msg)
			}
			if changed {
				e.onChange(ps.kind, verdict, msg)
			}
		}
		e.cbMu.Unlock()
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if e.removed.Load() || ps.stopped.Load() {
		return
	}
	now := time.Now()
	switch {
	case hold:
		// The container is going to be restarted; probing resumes when it is added again.
	case startedNow:
		for _, k := range [...]Kind{Liveness, Readiness} {
			if p := e.probes[k]; p != nil && !p.stopped.Load() {
				m.pushLocked(p, e.startedDue(p, now))
			}
		}
	default:
		next := e.nextDue(ps)
		if next.Before(now) {
			next = now // the attempt outlasted the period: go again at once, like a ticker
		}
		m.pushLocked(ps, next)
	}
	m.poke()
}

// firstDue is when a probe first runs: initialDelaySeconds after the container started, on the
// first of its ticks from then on (WithTicks), but not before now.
func (e *entry) firstDue(ps *probeState, now time.Time) time.Time {
	t := e.started.Add(time.Duration(ps.spec.InitialDelaySeconds) * time.Second)
	if now.After(t) {
		t = now
	}
	p := period(ps.spec)
	return nextTick(e.origin(p), p, t)
}

// startedDue is when liveness or readiness first runs once the startup probe succeeded at now.
// Liveness waits for its first tick (and its initial delay), as firstDue says. Readiness runs at
// once when its initial delay is over: the kubelet computes the pod's status on the startup
// verdict, and computing it for a started container that is not ready triggers its readiness
// probe then and there (prober_manager.go, UpdatePodStatus); within the initial delay the
// triggered run does nothing and the probe waits for its tick.
func (e *entry) startedDue(ps *probeState, now time.Time) time.Time {
	delayed := now.Before(e.started.Add(time.Duration(ps.spec.InitialDelaySeconds) * time.Second))
	if ps.kind == Readiness && !delayed {
		return now
	}
	return e.firstDue(ps, now)
}

// nextDue is when a probe runs next after the run due at ps.due: a period later, or with ticks
// (WithTicks) on the first of them after it, so that a run off the ticks (readiness right after
// startup) falls back in step, as a kubelet's ticker goes on beating through a triggered run.
func (e *entry) nextDue(ps *probeState) time.Time {
	p := period(ps.spec)
	origin := e.origin(p)
	if origin.IsZero() || ps.due.Before(origin) {
		return ps.due.Add(p)
	}
	return nextTick(origin, p, ps.due.Add(time.Nanosecond))
}

// origin is when the ticks of a probe of period p began (WithTicks), shifted by its jitter;
// zero without ticks.
func (e *entry) origin(p time.Duration) time.Time {
	origin := e.ticks
	if e.jitter && !origin.IsZero() {
		h := fnv.New64a()
		h.Write([]byte(e.key))
		// A period earlier, so that the first shifted tick comes within a period of origin.
		origin = origin.Add(time.Duration(h.Sum64()%uint64(p)) - p)
	}
	return origin
}

// nextTick is the first tick at or after t of ticks that began at origin, period apart; t
// itself without ticks, or when they began after t.
func nextTick(origin time.Time, period time.Duration, t time.Time) time.Time {
	if origin.IsZero() || !t.After(origin) {
		return t
	}
	n := (t.Sub(origin) + period - 1) / period
	return origin.Add(n * period)
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

// pokeIfRunnableLocked wakes the scheduler when a probe waits for the slot that came free (and
// not otherwise: a wake-up costs more than the rest of a quick probe's bookkeeping at rest).
func (m *Manager) pokeIfRunnableLocked() {
	if len(m.runnable) > 0 {
		m.poke()
	}
}

// poke wakes the scheduler without blocking.
func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// before reports whether a is due before b (by due time, then by the order they were pushed).
func (a *probeState) before(b *probeState) bool {
	if !a.due.Equal(b.due) {
		return a.due.Before(b.due)
	}
	return a.seq < b.seq
}

// probeHeap is a min-heap of probes by due time.
type probeHeap []*probeState

func (h probeHeap) Len() int           { return len(h) }
func (h probeHeap) Less(i, j int) bool { return h[i].before(h[j]) }
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

// groupHeap is a min-heap of groups by the slot time they used, then by the due time of the
// first probe in their queue.
type groupHeap []*group

func (h groupHeap) Len() int { return len(h) }
func (h groupHeap) Less(i, j int) bool {
	if h[i].usage != h[j].usage {
		return h[i].usage < h[j].usage
	}
	return h[i].queue[0].before(h[j].queue[0])
}
func (h groupHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *groupHeap) Push(x any) {
	g := x.(*group)
	g.index = len(*h)
	*h = append(*h, g)
}
func (h *groupHeap) Pop() any {
	old := *h
	n := len(old)
	g := old[n-1]
	old[n-1] = nil
	g.index = -1
	*h = old[:n-1]
	return g
}
