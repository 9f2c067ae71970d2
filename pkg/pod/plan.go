package pod

import (
	"time"

	corev1 "k8s.io/api/core/v1"
)

// plan is what a pod's worker does next, decided by computePlan from what the worker knows of
// the pod and the time. The worker's loop carries it out: each action runs off the loop and
// reports back.
type plan struct {
	createSandbox  bool        // the sandbox is missing or dead: (re)make it
	prepareVolumes bool        // the sandbox is ready, the volumes are not made yet
	refreshVolumes bool        // configMap, secret and downwardAPI volumes are due a look
	start          []*ctrState // containers whose next attempt starts now
	stop           []*ctrState // sidecars to stop: the regular containers are done for good
	terminal       bool        // every container is finished for good (Succeeded or Failed)
	// restartAll: a container exited by a rule with the action RestartAllContainers; stop lists
	// the live containers, killed at once without their preStop hooks.
	restartAll bool
	reset      bool      // restartAll, and no container runs any more: the pod starts over (resetAll)
	deadline   bool      // the pod is past spec.activeDeadlineSeconds: it fails, stop lists its live containers
	wake       time.Time // when to plan again if nothing happens first; zero: never
}

func (p *plan) wakeAt(t time.Time) {
	if !t.IsZero() && (p.wake.IsZero() || t.Before(p.wake)) {
		p.wake = t
	}
}

// computePlan decides the next actions for a pod, as the kubelet's computePodActions does: the
// sandbox first, then the volumes, then the init containers one at a time in order (a sidecar
// lets the next one start once it has started), then every app container at once. It reads s
// and does nothing else: no I/O, no clock, no change to s.
func computePlan(s *podState, now time.Time) plan {
	var p plan
	p.wakeAt(s.lostAt)
	if s.deadlineExceeded {
		// Failed for its deadline: a container whose start was in flight is stopped too.
		p.stop = liveContainers(s)
		return p
	}
	if s.terminal {
		return p
	}
	if d, ok := activeDeadline(s); ok {
		if !now.Before(d) {
			p.deadline, p.terminal = true, true
			p.stop = liveContainers(s)
			return p
		}
		p.wakeAt(d)
	}
	if s.sandboxBusy || s.volBusy {
		return p
	}
	if !s.sandboxOK {
		if s.starting() > 0 {
			return p // starts into the sandbox that went end first; their results come back
		}
		if now.Before(s.retryAt) {
			p.wakeAt(s.retryAt)
			return p
		}
		p.createSandbox = true
		return p
	}
	if s.vols == nil {
		if now.Before(s.volRetryAt) {
			p.wakeAt(s.volRetryAt)
			return p
		}
		p.prepareVolumes = true
		return p
	}
	if !s.refreshAt.IsZero() {
		if !now.Before(s.refreshAt) && s.starting() == 0 {
			// Volumes are refreshed while no container starts: a start reads them.
			p.refreshVolumes = true
			return p
		}
		p.wakeAt(s.refreshAt)
	}
	if restartingAll(s) {
		planRestartAll(s, now, &p)
		return p
	}
	if planInits(s, now, &p) {
		planApps(s, now, &p)
	}
	return p
}

// restartingAll reports whether the pod restarts all its containers: one of them exited by a
// rule with the action RestartAllContainers, and the pod has not started over yet (the
// kubelet's AllContainersRestarting condition).
func restartingAll(s *podState) bool {
	if s.restartingAll {
		return true
	}
	for _, c := range s.all() {
		if c.restartsAll() {
			return true
		}
	}
	return false
}

// planRestartAll plans a restart of all containers as the kubelet's computePodActions does
// with RestartAllContainersOnContainerExits: every container still running is killed, none
// starts; once none runs, the pod starts over in the same sandbox, from its first init
// container, its volumes as they are.
func planRestartAll(s *podState, now time.Time, p *plan) {
	p.restartAll = true
	down := true
	for _, c := range s.all() {
		switch c.phase {
		case ctrRunning, ctrLost:
			p.stop = append(p.stop, c)
			down = false
		case ctrStopping, ctrStarting:
			down = false // its stop or start comes back first
		}
	}
	if down {
		p.reset = true
		p.wakeAt(now) // plan the starts at once
	}
}

// resetAll sets every container of the pod back for a restart of all containers, as the
// kubelet reports containers it removed for one (convertToAPIContainerStatuses): one whose
// status showed it running or terminated counts a restart now, and its last state is the
// removal's (RestartingAllContainers, exit code 137); one that was waiting (never started, in
// its backoff, or its start failed) keeps its count and last state. None waits for a backoff:
// the kubelet starts removed containers without one.
func resetAll(s *podState) {
	for _, c := range s.all() {
		switch c.phase {
		case ctrExited:
			if c.waitReason != "" {
				// Shown waiting (CrashLoopBackOff): its own exit stays its last state.
				c.last = terminatedState(c)
			} else {
				c.reset = true
				c.last = &corev1.ContainerStateTerminated{
					Reason:   ReasonRestartingAllContainers,
					Message:  messageRestartingAllContainers,
					ExitCode: 137,
				}
			}
		case ctrFailed:
		default:
			continue // new: nothing ran
		}
		c.phase = ctrNew
		c.restartAt = time.Time{}
		c.ready, c.startedOK, c.hookBusy = false, false, false
		c.waitReason, c.waitMessage, c.permanentErr = "", "", false
		if c.reset {
			c.waitReason, c.waitMessage = ReasonRestartingAllContainers, messageRestartingAllContainers
		}
	}
	s.restartingAll = false
}

// messageRestartingAllContainers is the kubelet's message for a container removed by a
// restart of all its pod's containers.
const messageRestartingAllContainers = "The container is removed because RestartAllContainers in place"

// planInits plans the init containers and reports whether they are all done (the sidecars
// among them started), so that the app containers may start.
func planInits(s *podState, now time.Time, p *plan) bool {
	policy := s.pod.Spec.RestartPolicy
	for _, c := range s.inits {
		switch {
		case isSidecar(c.spec) && c.alive() && c.startedOK:
			continue
		case c.phase == ctrStarting || c.alive():
			return false // wait for it
		case c.phase == ctrExited && !isSidecar(c.spec) && c.exit.Code == 0 && !c.exit.Unknown:
			continue // done
		case c.phase == ctrExited && !c.restarts(policy):
			p.terminal = true // an init container failed and does not restart, by its policy or the pod's
			return false
		}
		if due(c, now, p) {
			p.start = append(p.start, c)
		}
		return false
	}
	return true
}

// planApps plans the app containers: they start together, each as its restart policy (its own
// and its rules, or the pod's) and backoff say.
func planApps(s *podState, now time.Time, p *plan) {
	policy := s.pod.Spec.RestartPolicy
	finished := len(s.apps) > 0
	for _, c := range s.apps {
		switch c.phase {
		case ctrNew, ctrFailed:
		case ctrExited:
			if !c.restarts(policy) {
				continue
			}
		default:
			finished = false
			continue
		}
		finished = false
		if due(c, now, p) {
			p.start = append(p.start, c)
		}
	}
	if !finished {
		return
	}
	p.terminal = true
	// The regular containers are done for good: sidecars go too, as on a kubelet.
	for _, c := range s.inits {
		if isSidecar(c.spec) && (c.phase == ctrRunning || c.phase == ctrLost) {
			p.stop = append(p.stop, c)
		}
	}
}

// due reports whether a container that waits for its next attempt may start now; if not, the
// plan wakes when it may.
func due(c *ctrState, now time.Time, p *plan) bool {
	if c.permanentErr {
		return false
	}
	if now.Before(c.restartAt) {
		p.wakeAt(c.restartAt)
		return false
	}
	return true
}

// noteExit records when an exited container may start again, by the crash backoff, and
// whether it waits in CrashLoopBackOff until then. It reports whether a BackOff is due.
//
// An exit that restarts all the pod's containers waits for no backoff and moves it on by none:
// the kubelet removes the container, and its next start finds no exit to back off from.
func noteExit(c *ctrState, b Backoff, policy corev1.RestartPolicy, now time.Time) bool {
	if !c.restarts(policy) || c.restartsAll() {
		return false
	}
	c.restartAt, c.delay = b.NextRestart(c.exit.At, c.exit.At.Sub(c.started), c.delay)
	return now.Before(c.restartAt)
}

// activeDeadline is when the pod passes its spec.activeDeadlineSeconds, counted from its
// status.startTime as the kubelet's activeDeadlineHandler counts it; ok is false while there
// is none (no deadline, or not started yet).
func activeDeadline(s *podState) (at time.Time, ok bool) {
	secs := s.pod.Spec.ActiveDeadlineSeconds
	if secs == nil || s.startTime.IsZero() {
		return time.Time{}, false
	}
	return s.startTime.Add(time.Duration(*secs) * time.Second), true
}

// liveContainers are the pod's containers whose process may run and that are not being
// stopped yet, init containers first.
func liveContainers(s *podState) []*ctrState {
	var out []*ctrState
	for _, c := range s.all() {
		if c.phase == ctrRunning || c.phase == ctrLost {
			out = append(out, c)
		}
	}
	return out
}
