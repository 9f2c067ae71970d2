package pod

import (
	"context"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/volume"
)

// A worker owns one pod identity (namespace/name) and drives containerd towards the latest
// desired version of it. Its lifecycle:
//
//	       update (new UID)            file removed
//	start ─────────> syncing <──────────────┐ │
//	  │ adopt what      │  exits, probes,   │ │
//	  │ containerd has  │  results, timers  │ v
//	  └─────────────────┴───────────────> terminating ──> done (status removed)
//
// One goroutine, the loop, decides: it alone reads and writes the pod's state and publishes its
// status. Each turn it plans (computePlan) and starts the plan's actions; everything slow (a
// sandbox, an image pull, a container start and its postStart hook, a stop with its grace
// period, a teardown) runs on a goroutine the worker owns, tied to the context of the pod
// version it works for, and reports back through the inbox. So the loop always answers: a file
// removed while an image pulls cancels the version's context at once, which abandons the pull,
// cuts a hook short, and begins the stop.
//
// The worker stops without touching the pod when its context ends (daemon shutdown): pods
// outlive the daemon. Before run returns, every goroutine it started has ended.
type worker struct {
	key     string
	m       *Manager
	log     *slog.Logger
	updates chan *corev1.Pod // nil pod: the file is gone
	wake    chan struct{}    // images arrived
	inbox   inbox

	desired    *corev1.Pod
	cur        *podState
	pre        *prepull // the images of the next version being pulled while cur runs
	ro         rollout  // the pod's versions: the last good one, a failed one, the history
	roView     rolloutViewKey
	roGen      int // bumped by every change of ro
	tearing    int // versions being torn down; the next one starts when none is
	done       bool
	firstRound bool // started with the manager's first desired set
	// adoptPending: the manager has not been told yet that what an earlier run left for this
	// key is adopted or torn down.
	adoptPending bool
	wg           sync.WaitGroup
}

// podState is what the worker knows of one version of its pod. Only the loop touches it, but
// for what it hands to the goroutines of the version: ctx, wg and slot. Once the version is
// being torn down, the teardown goroutine owns it.
type podState struct {
	pod *corev1.Pod
	n   names
	rec sandboxRecord

	ctx    context.Context // cancelled when this version is replaced, removed or the daemon stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the goroutines working for this version
	slot   *slotHold

	sandboxOK   bool
	sandboxBusy bool // a sandbox is being made
	pausePID    uint32
	ips         []string
	files       sandbox.Files
	startTime   time.Time
	retryAt     time.Time // when sandbox creation may be tried again
	sandboxErr  error
	sandboxLost bool // the pause exit wait broke

	inits, apps []*ctrState
	conds       map[corev1.PodConditionType]corev1.PodCondition

	vols       *volume.Prepared // nil until the volumes are made
	volBusy    bool             // they are being made or refreshed
	volErr     error            // why they could not be made
	volRetryAt time.Time
	refreshAt  time.Time // next look at configMap, secret and downwardAPI sources

	lostAt    time.Time     // when to ask containerd again about lost tasks
	lostDelay time.Duration // backoff of those questions while containerd is away
	lostBusy  bool

	seen time.Time // when the worker got this version: the start of its start latency
	// readySince: since when the version has been Ready without a break (zero: not Ready);
	// it becomes the good one after stableFor (progress).
	readySince time.Time
	startDone  bool // the start latency was recorded
	terminal   bool // all containers finished for good (Succeeded or Failed)
	// restartingAll: a container exited by a rule with the action RestartAllContainers; the
	// others are being killed, and the pod starts over once none runs (resetAll).
	restartingAll bool
	// deadlineExceeded: the pod ran past spec.activeDeadlineSeconds and failed for it.
	deadlineExceeded bool
	earlier          bool // made by an earlier run of the daemon (adopted or left to tear down)
	// While the sandbox and its first containers are created: a containerd lease that keeps
	// what they are made of, and the snapshots made ahead by container ID, with the image
	// each was made of (see prepareRootfs).
	lease string
	prep  map[string]runtime.Image
}

func (s *podState) all() []*ctrState {
	return append(append([]*ctrState{}, s.inits...), s.apps...)
}

func (s *podState) byID(id string) *ctrState {
	for _, c := range s.all() {
		if c.id == id {
			return c
		}
	}
	return nil
}

// starting counts the containers whose start is in flight.
func (s *podState) starting() int {
	n := 0
	for _, c := range s.all() {
		if c.phase == ctrStarting {
			n++
		}
	}
	return n
}

// busy reports whether any creation work of the version is in flight.
func (s *podState) busy() bool { return s.sandboxBusy || s.volBusy || s.starting() > 0 }

func newWorker(m *Manager, key string) *worker {
	w := &worker{
		key:     key,
		m:       m,
		log:     m.log.With("pod", key),
		updates: make(chan *corev1.Pod, 1),
		wake:    make(chan struct{}, 1),
	}
	w.inbox.wake = make(chan struct{}, 1)
	return w
}

// update hands the worker a new desired version; an older pending one is dropped.
// Only the manager's goroutine calls it.
func (w *worker) update(p *corev1.Pod) {
	for {
		select {
		case w.updates <- p:
			return
		default:
			select {
			case <-w.updates:
			default:
			}
		}
	}
}

// run blocks until the pod is gone (after a removal) or ctx ends, and then until every
// goroutine the worker started has ended: starts in flight are cancelled, teardowns finish.
func (w *worker) run(ctx context.Context) {
	defer w.wg.Wait()
	w.desired = <-w.updates
	w.ro = w.m.loadRollout(w.key)
	if w.ro.Good != nil {
		w.m.good.Store(w.key, w.ro.Good) // its images are kept from the start
	}
	w.desiredChanged()
	w.adopt(ctx)
	w.adoptPending = true
	w.adopted()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := w.step(ctx)
		if w.done {
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			if w.cur != nil {
				w.cur.cancel()
			}
			return
		case p := <-w.updates:
			w.desired = p
			w.desiredChanged()
		case <-w.inbox.wake:
			for _, msg := range w.inbox.take() {
				msg(w)
			}
		case <-w.wake:
			w.retryImages()
		case <-timer.C:
		}
	}
}

// adopted tells the manager, once, that what an earlier run left for this key is adopted or
// torn down.
func (w *worker) adopted() {
	if w.adoptPending && w.tearing == 0 {
		w.adoptPending = false
		w.m.adoptDone(w)
	}
}

// step moves the pod one step towards the desired version and publishes its status. It returns
// when to step again if nothing happens first.
func (w *worker) step(ctx context.Context) time.Time {
	now := time.Now()
	want := w.want()
	var wake time.Time
	if w.cur != nil && (want == nil || want.UID != w.cur.pod.UID) {
		if want != nil && w.holdForImages(ctx, want, now) {
			// The running version keeps running while the next one's images come.
			wake = w.pre.retryAt
		} else {
			w.replace(want)
		}
	} else if w.pre != nil {
		w.dropPrepull() // the file went back to the running version
	}
	if w.tearing > 0 {
		return time.Time{} // the next version waits until the last one is gone
	}
	if want == nil {
		w.m.store.remove(w.key)
		w.dropRollout()
		w.done = true
		return time.Time{}
	}
	if w.cur == nil {
		w.cur = w.newState(ctx, want)
		w.versionStarted(want)
	}
	s := w.cur
	if !s.lostAt.IsZero() && !now.Before(s.lostAt) && !s.lostBusy {
		w.findLost(s)
	}
	p := computePlan(s, now)
	w.execute(s, p)
	judged := w.publish(now)
	if !s.busy() {
		// The sandbox and the containers it started with are made: the start slot and the
		// lease that kept their parts go.
		s.slot.release()
		w.releaseRootfs(s)
	}
	return earliest(p.wake, wake, judged)
}

// replace begins the teardown of the running version, for want (nil: the file is gone).
func (w *worker) replace(want *corev1.Pod) {
	w.dropPrepull()
	if want == nil {
		w.endRevision(time.Now(), "removed", "")
	} else if w.cur.serving() {
		w.m.cfg.Metrics.PodUpdate()
		w.log.Info("replacing the running version", "from", revision(string(w.cur.pod.UID)), "to", revision(string(want.UID)))
	}
	w.publishTerminating(w.cur)
	w.teardown(w.cur)
	w.cur = nil
}

// earliest is the earliest of the non-zero times, or zero.
func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if !t.IsZero() && (e.IsZero() || t.Before(e)) {
			e = t
		}
	}
	return e
}

// execute starts the plan's actions, each on a goroutine of the version's.
func (w *worker) execute(s *podState, p plan) {
	if p.terminal {
		s.terminal = true
	}
	if p.deadline && !s.deadlineExceeded {
		s.deadlineExceeded = true
		w.log.Info("pod past its active deadline, killing it")
		w.event(s, nil, events.Normal, reasonDeadlineExceeded, messageDeadlineExceeded)
	}
	if p.restartAll && !s.restartingAll {
		s.restartingAll = true
		w.log.Info("restarting all containers")
	}
	for _, c := range p.stop {
		if p.restartAll {
			w.killNow(s, c)
			continue
		}
		w.kill(s, c, s.rec.Grace)
	}
	if p.reset {
		resetAll(s)
	}
	switch {
	case p.createSandbox:
		w.startSandbox(s)
	case p.prepareVolumes:
		w.startVolumes(s, false)
	case p.refreshVolumes:
		w.startVolumes(s, true)
	}
	for _, c := range p.start {
		w.startContainer(s, c)
	}
}

// spawn runs fn on a goroutine that works for version s; the version's teardown and the
// worker's end wait for it.
func (w *worker) spawn(s *podState, fn func()) {
	w.wg.Add(1)
	s.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer s.wg.Done()
		fn()
	}()
}

// inbox carries what the worker's goroutines and the runtime report to its loop: each message
// is a function the loop runs. Posting never blocks, so a slow loop never holds up a probe slot
// or the runtime's event stream.
type inbox struct {
	mu   sync.Mutex
	q    []func(*worker)
	wake chan struct{}
}

func (b *inbox) post(fn func(*worker)) {
	b.mu.Lock()
	b.q = append(b.q, fn)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take returns the queued messages, oldest first.
func (b *inbox) take() []func(*worker) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.q
	b.q = nil
	return q
}

// post hands fn to the loop, to run there if s is still the worker's current version.
func (w *worker) post(s *podState, fn func()) { w.deliver(s, fn, nil) }

// deliver hands a result to the loop: apply runs there if s is still the worker's current
// version, else drop does (when not nil), to let go of what the result holds.
func (w *worker) deliver(s *podState, apply, drop func()) {
	w.inbox.post(func(w *worker) {
		switch {
		case w.cur == s:
			apply()
		case drop != nil:
			drop()
		}
	})
}

func (w *worker) newState(ctx context.Context, p *corev1.Pod) *podState {
	n := w.m.dirs.pod(p.Namespace, p.Name, string(p.UID))
	s := &podState{
		pod:   p,
		n:     n,
		conds: map[corev1.PodConditionType]corev1.PodCondition{},
		seen:  time.Now(),
		slot:  &slotHold{slots: w.m.startSlots},
		rec: sandboxRecord{
			UID:         n.uid,
			Namespace:   n.namespace,
			Name:        n.name,
			SandboxID:   n.sandboxID(),
			NetNS:       n.netns(),
			Grace:       corev1.DefaultTerminationGracePeriodSeconds,
			HostNetwork: p.Spec.HostNetwork,
		},
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		s.rec.Grace = *g
	}
	for i := range p.Spec.InitContainers {
		s.inits = append(s.inits, &ctrState{spec: &p.Spec.InitContainers[i], init: true})
	}
	for i := range p.Spec.Containers {
		s.apps = append(s.apps, &ctrState{spec: &p.Spec.Containers[i]})
	}
	for _, c := range s.all() {
		c.logPath = n.logPath(c.spec.Name, 0)
	}
	return s
}

// handleExit applies a task's exit: the sandbox's, or a container's of the current version.
func (w *worker) handleExit(id string, exit runtime.Exit) {
	s := w.cur
	if s == nil {
		return
	}
	if id == s.rec.SandboxID {
		if exit.Err == nil {
			w.log.Info("sandbox exited", "code", exit.Code)
			s.sandboxOK = false
		} else {
			w.log.Warn("lost track of the sandbox", "err", exit.Err)
			s.sandboxLost = true
			w.lostLater(s)
		}
		return
	}
	c := s.byID(id)
	if c == nil || !c.alive() {
		return
	}
	if exit.Err != nil {
		// The wait broke, most likely because containerd restarted: the container itself
		// probably runs on under its shim. Look again shortly; never start a second copy.
		w.log.Warn("lost track of container", "container", c.spec.Name, "err", exit.Err)
		w.moveTo(c, ctrLost)
		w.lostLater(s)
		return
	}
	w.log.Info("container exited", "container", c.spec.Name, "code", exit.Code)
	w.exited(s, c, exit)
}

// exited records the end of a container's attempt and when it may start again.
func (w *worker) exited(s *podState, c *ctrState, exit runtime.Exit) {
	w.moveTo(c, ctrExited)
	c.exit = exit
	c.hookBusy = false
	w.m.probes.Remove(c.id)
	if _, ok := w.m.oomed.LoadAndDelete(c.id); ok {
		c.exit.OOM = true
	}
	closeLog(c)
	c.message = w.terminationMessage(s, c)
	c.waitReason, c.waitMessage = "", ""
	if !s.terminal && !s.restartingAll && noteExit(c, w.m.cfg.Backoff, s.pod.Spec.RestartPolicy, time.Now()) {
		w.event(s, c, events.Warning, events.ReasonBackOff, "Back-off restarting failed container %s in pod %s_%s(%s)", c.spec.Name, s.pod.Name, s.pod.Namespace, s.pod.UID)
		c.waitReason = "CrashLoopBackOff"
		c.waitMessage = crashLoopMessage(s.pod, c)
	}
}

func crashLoopMessage(p *corev1.Pod, c *ctrState) string {
	return "back-off " + c.restartAt.Sub(c.exit.At).Round(time.Second).String() +
		" restarting failed container=" + c.spec.Name + " pod=" + p.Name + "_" + p.Namespace + "(" + string(p.UID) + ")"
}

func (w *worker) moveTo(c *ctrState, to ctrPhase) {
	if err := c.move(to); err != nil {
		w.log.Error("container state", "err", err)
		c.phase = to
	}
}

func (w *worker) lostLater(s *podState) {
	if s.lostAt.IsZero() {
		s.lostAt = time.Now().Add(time.Second)
	}
}

// watch hands one task's exit to the worker's loop when it comes. The runtime calls back
// instead of a goroutine per task waiting for it: at 50 pods that was 100 parked goroutines and
// their stacks.
func (w *worker) watch(id string, ew runtime.ExitWatch) {
	ew.Notify(func() {
		e := <-ew.C
		w.inbox.post(func(w *worker) { w.handleExit(id, e) })
	})
}

// retryImages lets containers that wait for an image try again at once.
func (w *worker) retryImages() {
	if w.cur == nil {
		return
	}
	for _, c := range w.cur.all() {
		switch c.waitReason {
		case ReasonErrImagePull, ReasonImagePullBackOff, ReasonErrImageNeverPull:
			c.restartAt = time.Now()
		}
	}
}

// publish stores the current version's status for the API, after judging an update's progress
// by it (progress: when to judge again). Published pods are never modified afterwards.
func (w *worker) publish(now time.Time) time.Time {
	s := w.cur
	p := s.pod.DeepCopy()
	p.Status, s.conds = podStatus(s, w.m.cfg.HostIP, time.Now())
	if !s.startDone && p.Status.Phase == corev1.PodRunning && allRunning(p.Status.ContainerStatuses) {
		s.startDone = true
		w.m.cfg.Metrics.PodStartDuration(time.Since(s.seen))
	}
	next := w.progress(s, &p.Status, now)
	w.annotateRevisions(p)
	w.m.store.set(w.key, p)
	w.refreshRolloutView()
	return next
}

// publishTerminating marks the published pod as being deleted, so that the table shows
// Terminating while its containers get their grace period.
func (w *worker) publishTerminating(s *podState) {
	old := w.m.store.get(w.key)
	if old == nil {
		return
	}
	p := old.DeepCopy()
	now := metav1.Now()
	p.DeletionTimestamp = &now
	grace := s.rec.Grace
	p.DeletionGracePeriodSeconds = &grace
	w.m.store.set(w.key, p)
}

// event records a pod event; c names the container it is about, or nil for the pod. It may be
// called from any goroutine.
func (w *worker) event(s *podState, c *ctrState, typ, reason, format string, args ...any) {
	if c == nil {
		w.eventFor(s.pod, nil, false, typ, reason, format, args...)
		return
	}
	w.eventFor(s.pod, c.spec, c.init, typ, reason, format, args...)
}

func (w *worker) eventFor(p *corev1.Pod, c *corev1.Container, init bool, typ, reason, format string, args ...any) {
	if w.m.cfg.Events == nil || p == nil {
		return
	}
	field := ""
	if c != nil {
		field = events.ContainerFieldPath(c.Name)
		if init {
			field = events.InitContainerFieldPath(c.Name)
		}
	}
	w.m.cfg.Events.Eventf(p.Namespace, p.Name, string(p.UID), field, typ, reason, format, args...)
}

// startTime is when the process started, as /proc records it (so that an adopting daemon
// reports the same time), or now when /proc cannot tell.
func startTime(pid uint32) time.Time {
	if t, err := runtime.ProcessStartTime(pid); err == nil {
		return t
	}
	return time.Now()
}

func closeLog(c *ctrState) {
	if c.log != nil {
		c.log.Close()
		c.log = nil
	}
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
}

func podNamespaces(p *corev1.Pod) runtime.Namespaces {
	share := p.Spec.ShareProcessNamespace != nil && *p.Spec.ShareProcessNamespace
	return runtime.Namespaces{HostNetwork: p.Spec.HostNetwork, HostPID: p.Spec.HostPID, HostIPC: p.Spec.HostIPC, SharePID: share}
}

func (s *podState) byName(name string) *ctrState {
	for _, c := range s.all() {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}
