package pod

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/volume"
)

// teardown ends version s: its context is cancelled at once (a pull in flight is abandoned, a
// hook cut short), its liveness and startup probes stop while readiness runs on (endProbes), and
// once every goroutine of the version has returned, a goroutine of the worker's stops the pod
// and removes everything it had. The loop hands s over: it never touches it again.
func (w *worker) teardown(s *podState) {
	s.cancel()
	end := newEnding()
	w.endProbes(s, end)
	w.tearing++
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		s.wg.Wait()
		s.slot.release()
		w.terminate(s, end)
		w.inbox.post(func(w *worker) {
			w.tearing--
			w.adopted()
		})
	}()
}

// terminate stops a pod gracefully and removes everything it had: its containers' stop
// signals (the sidecars' in turn, see stopAll), SIGKILL to those still running after the grace
// period, then the sandbox, its network and files. It runs to the end, within its own
// deadlines, also while the daemon shuts down. While the containers stop, it applies what end
// brings (readiness results, exits) and publishes the terminating pod's status, as a kubelet
// keeps reporting a pod until it is gone.
func (w *worker) terminate(s *podState, end *ending) {
	ctx := context.WithoutCancel(s.ctx)
	w.log.Info("stopping pod", "grace", s.rec.Grace)
	if s.pod != nil {
		for _, c := range s.all() {
			if c.alive() {
				w.event(s, c, events.Normal, events.ReasonKilling, "Stopping container %s", c.spec.Name)
			}
		}
	}
	list, err := w.m.cfg.Runtime.List(ctx, map[string]string{runtime.LabelPodUID: s.rec.UID})
	if err != nil {
		w.log.Error("list containers", "err", err)
	}
	// The lease of a version torn down while it was being made.
	w.deleteLease(ctx, s.lease)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		w.stopAll(ctx, s, list, end)
	}()
	w.whileStopping(s, end, stopped)
	sandboxErr := w.removeAll(ctx, s, list)
	for _, c := range s.all() {
		w.m.probes.Remove(c.id)
		closeLog(c)
	}
	if sandboxErr != nil {
		w.log.Error("remove sandbox", "err", sandboxErr)
		// Keep the record so a later start of the daemon can try again.
		return
	}
	w.removeFiles(ctx, s)
}

// stopAll stops the pod's app containers as a kubelet does (killContainersWithSyncResult with
// its terminationOrdering): every container's stop begins at once, and with it its preStop
// hook; a regular container is then sent its stop signal, while a sidecar's signal waits until
// every regular container has stopped and then the sidecar after it in the spec, so sidecars
// stop one by one in reverse order, each serving the containers that started after it (a proxy,
// a log shipper, the target of another sidecar's preStop hook) until they are gone. The waits
// end with the grace period, which the whole pod shares. Each exit it sees is handed to end.
func (w *worker) stopAll(ctx context.Context, s *podState, list []runtime.Container, end *ending) {
	p := s.pod // nil for a pod an earlier run left, whose manifest is gone
	specs := map[string]*corev1.Container{}
	if p != nil {
		for i := range p.Spec.Containers {
			specs[p.Spec.Containers[i].Name] = &p.Spec.Containers[i]
		}
		for i := range p.Spec.InitContainers {
			specs[p.Spec.InitContainers[i].Name] = &p.Spec.InitContainers[i]
		}
	}
	order := stopOrder(p, list)
	stopped := map[string]chan struct{}{}
	for _, c := range list {
		if c.Labels[runtime.LabelRole] == runtime.RoleApp {
			stopped[c.ID] = make(chan struct{})
		}
	}
	deadline := time.Now().Add(stopGrace(s.rec.Grace))
	var wg sync.WaitGroup
	for _, c := range list {
		if c.Labels[runtime.LabelRole] != runtime.RoleApp {
			continue
		}
		var turn func(time.Time)
		if after := order[c.ID]; len(after) > 0 {
			turn = func(deadline time.Time) { waitStopped(after, stopped, deadline) }
		}
		wg.Go(func() {
			defer close(stopped[c.ID])
			if exit, ok := w.stopContainer(ctx, c, specs[c.Labels[runtime.LabelContainer]], firstIP(s.ips), deadline, turn); ok {
				end.post(func() { w.endingExit(s, c.ID, exit) })
			}
		})
	}
	wg.Wait()
}

// waitStopped waits until every container in ids has stopped (its channel in stopped is
// closed), or until deadline.
func waitStopped(ids []string, stopped map[string]chan struct{}, deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for _, id := range ids {
		select {
		case <-stopped[id]:
		case <-t.C:
			return
		}
	}
}

// stopOrder says, for each of the pod's app containers in list (by ID), which containers must
// have stopped before it is sent its stop signal, as the kubelet's terminationOrdering: a
// sidecar waits for every regular container and for the next sidecar after it in the spec's
// init containers; regular containers and the other init containers wait for nothing. A
// sidecar the spec does not name (p nil: a pod an earlier run left, whose manifest is gone)
// waits for the regular containers only, its place among the sidecars being unknown.
func stopOrder(p *corev1.Pod, list []runtime.Container) map[string][]string {
	byName := map[string][]string{}
	var regular []string
	for _, c := range list {
		if c.Labels[runtime.LabelRole] != runtime.RoleApp {
			continue
		}
		byName[c.Labels[runtime.LabelContainer]] = append(byName[c.Labels[runtime.LabelContainer]], c.ID)
		if c.Labels[runtime.LabelInit] != "true" {
			regular = append(regular, c.ID)
		}
	}
	next := map[string]string{} // a sidecar's name -> the name of the sidecar after it
	if p != nil {
		later := ""
		for i := len(p.Spec.InitContainers) - 1; i >= 0; i-- {
			ic := &p.Spec.InitContainers[i]
			if !isSidecar(ic) {
				continue
			}
			if later != "" {
				next[ic.Name] = later
			}
			later = ic.Name
		}
	}
	order := map[string][]string{}
	for _, c := range list {
		if c.Labels[runtime.LabelRole] != runtime.RoleApp || c.Labels[runtime.LabelSidecar] != "true" {
			continue
		}
		after := slices.Clone(regular)
		if n, ok := next[c.Labels[runtime.LabelContainer]]; ok {
			after = append(after, byName[n]...)
		}
		if len(after) > 0 {
			order[c.ID] = after
		}
	}
	return order
}

// ending carries what happens to a pod version while its containers stop, to the goroutine
// that tears it down: readiness results (a kubelet keeps probing readiness while a pod
// terminates) and the containers' exits. Probe callbacks and the stopping goroutines post;
// whileStopping applies, on the teardown's goroutine, which owns the version's state then. It
// is safe for concurrent use; once closed, what is posted is dropped.
type ending struct {
	mu     sync.Mutex
	q      []func()
	closed bool
	wake   chan struct{} // capacity 1
}

func newEnding() *ending { return &ending{wake: make(chan struct{}, 1)} }

// post queues fn, to run on the teardown's goroutine; it never blocks.
func (e *ending) post(fn func()) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.q = append(e.q, fn)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// take returns what was posted, oldest first; with last, nothing is taken after it.
func (e *ending) take(last bool) []func() {
	e.mu.Lock()
	defer e.mu.Unlock()
	q := e.q
	e.q = nil
	e.closed = e.closed || last
	return q
}

// whileStopping applies what end brings until stopped is closed (every container has been
// stopped), and publishes the pod's status each time, with its deletion timestamp.
func (w *worker) whileStopping(s *podState, end *ending, stopped <-chan struct{}) {
	w.publishEnding(s)
	for {
		select {
		case <-end.wake:
			for _, fn := range end.take(false) {
				fn()
			}
			w.publishEnding(s)
		case <-stopped:
			for _, fn := range end.take(true) {
				fn()
			}
			w.publishEnding(s)
			return
		}
	}
}

// endingExit applies the exit of a container stopped while the pod terminates.
func (w *worker) endingExit(s *podState, id string, exit runtime.Exit) {
	c := s.byID(id)
	if c == nil || !c.alive() {
		return
	}
	w.moveTo(c, ctrExited)
	c.exit = exit
	if c.exit.At.IsZero() {
		c.exit.At = time.Now()
	}
	c.message = w.terminationMessage(s, c)
}

// publishEnding publishes the status of version s while it terminates, if the pod published
// is still s marked as being deleted (publishTerminating). No container of a terminating pod
// runs again (the kubelet's ShouldContainerBeRestarted is false for a pod being deleted), so
// one that exited is reported terminated, not waiting for its restart.
func (w *worker) publishEnding(s *podState) {
	if s.pod == nil {
		return
	}
	old := w.m.store.get(w.key)
	if old == nil || old.UID != s.pod.UID || old.DeletionTimestamp == nil {
		return
	}
	p := s.pod.DeepCopy()
	p.Status, s.conds = podStatus(s, w.m.cfg.HostIP, time.Now())
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			cs := &list[i]
			c := s.byName(cs.Name)
			if c == nil || c.phase != ctrExited || cs.State.Waiting == nil || cs.LastTerminationState.Terminated == nil {
				continue
			}
			cs.State = corev1.ContainerState{Terminated: cs.LastTerminationState.Terminated}
			cs.LastTerminationState = corev1.ContainerState{Terminated: c.last}
		}
	}
	p.DeletionTimestamp, p.DeletionGracePeriodSeconds = old.DeletionTimestamp, old.DeletionGracePeriodSeconds
	// The revisions the loop annotated stay (published pods are never changed: sharing the
	// map is safe).
	p.Annotations = old.Annotations
	w.m.store.set(w.key, p)
}

// removeAll removes the stopped containers and the sandbox. Every app container has stopped, so
// the network serves no one: its teardown (CNI DEL, netns) overlaps the removal of the
// containers' tasks, records and snapshots. The pause container goes last, as on a kubelet: it
// holds the pod's namespaces for the others.
func (w *worker) removeAll(ctx context.Context, s *podState, list []runtime.Container) error {
	rt := w.m.cfg.Runtime
	var removed sync.WaitGroup
	for _, c := range list {
		if c.Labels[runtime.LabelRole] != runtime.RoleApp {
			continue
		}
		removed.Go(func() {
			if err := rt.Remove(ctx, c.ID); err != nil {
				w.log.Warn("remove container", "id", c.ID, "err", err)
			}
		})
	}
	netErr := w.removeNetwork(ctx, s.rec)
	removed.Wait()
	err := errors.Join(rt.Remove(ctx, s.rec.SandboxID), netErr)
	// A removal that failed is tried again a few times (each step undoes only what is left)
	// before it is left, with its record, to the next start of the daemon.
	for delay := time.Second; err != nil && delay <= 4*time.Second; delay *= 2 {
		w.log.Warn("remove sandbox failed, trying again", "err", err, "in", delay)
		time.Sleep(delay)
		err = w.removeSandbox(ctx, s.rec)
	}
	return err
}

// removeFiles removes what is left of a pod whose containers and sandbox are gone: leftover
// snapshots, its cgroup, volumes, state and logs.
func (w *worker) removeFiles(ctx context.Context, s *podState) {
	// Every container of the pod is gone: a snapshot left with the pod's prefix is one whose
	// container record a crash never wrote, or one made ahead for a container never created.
	// Only a pod an earlier run made needs all snapshots listed to find them.
	if err := w.m.cfg.Runtime.RemoveSnapshots(ctx, s.n.snapshotPrefix(), s.earlier); err != nil {
		// The record is kept: the next start of the daemon sees the pod as an earlier run's
		// and lists every snapshot again.
		w.log.Error("remove leftover snapshots", "err", err)
		return
	}
	if err := sandbox.RemoveCgroup(s.n.cgroupParent()); err != nil {
		w.log.Warn("remove pod cgroup", "err", err)
	}
	// Volumes are unmounted first: removing the pod directory must never reach into a mount.
	if err := volume.Cleanup(s.n.dir()); err != nil {
		w.log.Error("clean up volumes", "err", err)
		return
	}
	w.m.userns.Release(s.n.uid)
	_ = os.RemoveAll(s.n.dir())
	_ = os.RemoveAll(s.n.logDir())
	w.log.Info("pod stopped")
	w.m.trim.touch()
}

// kill stops a running container of the current version off the loop (a failed liveness or
// startup probe, a sidecar at the end), with grace seconds to exit; its exit comes back as
// usual.
func (w *worker) kill(s *podState, c *ctrState, grace int64) {
	w.moveTo(c, ctrStopping)
	w.m.probes.Remove(c.id)
	target := runtime.Container{ID: c.id, Labels: map[string]string{runtime.LabelStopSignal: c.stopSignal}}
	spec, podIP := c.spec, firstIP(s.ips)
	w.spawn(s, func() {
		w.stopContainer(context.WithoutCancel(s.ctx), target, spec, podIP, time.Now().Add(stopGrace(grace)), nil)
	})
}

// killNow stops a container for a restart of all its pod's containers as the kubelet kills one
// for it: with a grace period of 0, so without its preStop hook and with the least time between
// the stop signal and SIGKILL.
func (w *worker) killNow(s *podState, c *ctrState) {
	w.moveTo(c, ctrStopping)
	w.m.probes.Remove(c.id)
	target := runtime.Container{ID: c.id, Labels: map[string]string{runtime.LabelStopSignal: c.stopSignal}}
	w.spawn(s, func() {
		w.stopContainer(context.WithoutCancel(s.ctx), target, nil, "", time.Now().Add(minStopGrace), nil)
	})
}

// stopContainer runs the container's preStop hook, waits for its turn (turn, when not nil,
// returns once the containers it must outlive have stopped, or at the deadline it is given),
// sends its stop signal, and waits until the deadline for the exit before it sends SIGKILL. As
// on a kubelet, the hook's time and the wait come out of the grace period, but the signal
// always gets at least minStopGrace. It returns the exit of a container it stopped (ok false:
// it was not running, or its exit did not come).
func (w *worker) stopContainer(ctx context.Context, c runtime.Container, spec *corev1.Container, podIP string, deadline time.Time, turn func(deadline time.Time)) (exit runtime.Exit, ok bool) {
	rt := w.m.cfg.Runtime
	st, err := rt.Task(ctx, c.ID, nil)
	if err != nil || !st.Running {
		return runtime.Exit{}, false
	}
	waited := false
	if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil {
		hctx, cancel := context.WithDeadline(ctx, deadline)
		if err := w.runHook(hctx, spec.Lifecycle.PreStop, c.ID, spec, podIP); err != nil {
			w.log.Warn("preStop hook failed", "container", spec.Name, "err", err)
		}
		cancel()
		waited = true
	}
	if turn != nil && time.Now().Before(deadline) {
		turn(deadline)
		waited = true
	}
	if d := time.Now().Add(minStopGrace); waited && deadline.Before(d) {
		deadline = d
	}
	sig, err := ParseSignal(c.Labels[runtime.LabelStopSignal])
	if err != nil {
		sig = syscall.SIGTERM
	}
	if err := rt.Signal(ctx, c.ID, sig); err != nil {
		w.log.Warn("signal container", "id", c.ID, "err", err)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case exit = <-st.Wait.C:
		return exit, exit.Err == nil
	case <-t.C:
	}
	w.log.Info("grace period over, killing", "id", c.ID)
	_ = rt.Signal(ctx, c.ID, syscall.SIGKILL)
	select {
	case exit = <-st.Wait.C:
		return exit, exit.Err == nil
	case <-time.After(10 * time.Second):
		return runtime.Exit{}, false
	}
}

// minStopGrace is the least time a container gets between its stop signal and SIGKILL, also
// when its grace period is shorter or a preStop hook used it up (the kubelet's
// minimumGracePeriodInSeconds).
const minStopGrace = 2 * time.Second

// stopGrace is how long a container with a grace period of seconds gets to stop.
func stopGrace(seconds int64) time.Duration {
	return max(time.Duration(seconds)*time.Second, minStopGrace)
}

// findLost asks containerd again, off the loop, about tasks whose exit wait broke: running
// ones are watched again, ended ones are handled as exits. While containerd does not answer,
// it asks again with a growing delay.
func (w *worker) findLost(s *podState) {
	ids := []string{}
	if s.sandboxLost {
		ids = append(ids, s.rec.SandboxID)
	}
	for _, c := range s.all() {
		if c.phase == ctrLost {
			ids = append(ids, c.id)
		}
	}
	s.lostBusy = true
	type answer struct {
		st  runtime.TaskState
		err error
	}
	w.spawn(s, func() {
		answers := map[string]answer{}
		for _, id := range ids {
			ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
			st, err := w.m.cfg.Runtime.Task(ctx, id, nil)
			cancel()
			answers[id] = answer{st, err}
		}
		w.post(s, func() {
			s.lostBusy = false
			stillLost := false
			for id, a := range answers {
				stillLost = w.found(s, id, a.st, a.err) || stillLost
			}
			if !stillLost {
				s.lostAt, s.lostDelay = time.Time{}, 0
				w.log.Info("found lost tasks again")
				return
			}
			s.lostDelay = min(max(2*s.lostDelay, time.Second), 10*time.Second)
			s.lostAt = time.Now().Add(s.lostDelay)
		})
	})
}

// found applies what containerd said of a lost task; it reports whether the task is still lost.
func (w *worker) found(s *podState, id string, st runtime.TaskState, err error) bool {
	if err != nil && !runtime.IsNotFound(err) {
		return true
	}
	if id == s.rec.SandboxID {
		s.sandboxLost = false
		if err == nil && st.Running {
			w.watch(id, st.Wait)
		} else {
			s.sandboxOK = false
		}
		return false
	}
	c := s.byID(id)
	if c == nil || c.phase != ctrLost {
		return false
	}
	switch {
	case err == nil && st.Running:
		w.moveTo(c, ctrRunning)
		w.watch(id, st.Wait)
	case err == nil && st.Exists:
		w.exited(s, c, st.Exit)
	default:
		w.exited(s, c, runtime.Exit{Unknown: true, At: time.Now()})
	}
	return false
}
