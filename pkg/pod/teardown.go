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
// hook cut short), and once every goroutine of the version has returned, a goroutine of the
// worker's stops the pod and removes everything it had. The loop hands s over: it never touches
// it again.
func (w *worker) teardown(s *podState) {
	s.cancel()
	w.tearing++
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		s.wg.Wait()
		s.slot.release()
		w.terminate(s)
		w.inbox.post(func(w *worker) {
			w.tearing--
			w.adopted()
		})
	}()
}

// terminate stops a pod gracefully and removes everything it had: its containers' stop
// signals (the sidecars' in turn, see stopAll), SIGKILL to those still running after the grace
// period, then the sandbox, its network and files. It runs to the end, within its own deadlines, also while the daemon shuts down.
func (w *worker) terminate(s *podState) {
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
	w.stopAll(ctx, s, list)
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
// end with the grace period, which the whole pod shares.
func (w *worker) stopAll(ctx context.Context, s *podState, list []runtime.Container) {
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
			w.stopContainer(ctx, c, specs[c.Labels[runtime.LabelContainer]], firstIP(s.ips), deadline, turn)
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

// stopContainer runs the container's preStop hook, waits for its turn (turn, when not nil,
// returns once the containers it must outlive have stopped, or at the deadline it is given),
// sends its stop signal, and waits until the deadline for the exit before it sends SIGKILL. As
// on a kubelet, the hook's time and the wait come out of the grace period, but the signal
// always gets at least minStopGrace.
func (w *worker) stopContainer(ctx context.Context, c runtime.Container, spec *corev1.Container, podIP string, deadline time.Time, turn func(deadline time.Time)) {
	rt := w.m.cfg.Runtime
	st, err := rt.Task(ctx, c.ID, nil)
	if err != nil || !st.Running {
		return
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
	case <-st.Wait.C:
		return
	case <-t.C:
	}
	w.log.Info("grace period over, killing", "id", c.ID)
	_ = rt.Signal(ctx, c.ID, syscall.SIGKILL)
	select {
	case <-st.Wait.C:
	case <-time.After(10 * time.Second):
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
