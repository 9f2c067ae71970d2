package pod

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Backoff is the crash-loop delay policy for restarting containers. The kubelet's numbers are
// DefaultBackoff; they can be changed per node (kubernetes#57291, KEP-4603).
type Backoff struct {
	Initial time.Duration // delay before the second restart; the first is immediate
	Max     time.Duration // the delay doubles up to this
}

// DefaultBackoff is the kubelet's: 10 s doubling to 5 min.
var DefaultBackoff = Backoff{Initial: 10 * time.Second, Max: 5 * time.Minute}

// resetAfter is how long a container must have run for its backoff to start over: twice the
// maximum delay, which is ten minutes with the kubelet's numbers.
func (b Backoff) resetAfter() time.Duration { return 2 * b.Max }

// NextRestart decides when a container that exited at finishedAt, after running for ranFor, may
// start again. delay is the container's current backoff delay (0 before its first restart).
// It returns the earliest restart time and the delay to keep for the next crash.
//
// As on a kubelet, the first restart is immediate, the second waits Initial, and each later one
// waits twice as long as the one before, up to Max. A container that ran for resetAfter before
// exiting starts over without delay.
func (b Backoff) NextRestart(finishedAt time.Time, ranFor, delay time.Duration) (at time.Time, next time.Duration) {
	if ranFor >= b.resetAfter() {
		delay = 0
	}
	at = finishedAt.Add(delay)
	switch {
	case delay == 0:
		next = b.Initial
	case delay*2 > b.Max:
		next = b.Max
	default:
		next = delay * 2
	}
	if next > b.Max {
		next = b.Max
	}
	return at, next
}

// ShouldRestart says whether a container that exited with code restarts under the pod's
// policy, for a container without a restart policy of its own.
func ShouldRestart(policy corev1.RestartPolicy, exitCode int32) bool {
	switch policy {
	case corev1.RestartPolicyAlways:
		return true
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	default:
		return false
	}
}

// ContainerShouldRestart says whether container c, which exited with exitCode, runs again under
// the pod's policy, as the kubelet decides with ContainerRestartRules (beta and on since 1.35)
// and RestartAllContainersOnContainerExits (beta and on since 1.36; pkg/api/v1/pod
// ContainerShouldRestart): c's restartPolicyRules in order, the first that matches the exit code
// deciding (Restart and RestartAllContainers both run it again); then c's own restartPolicy;
// without one, the pod's. A nil c has no policy of its own.
func ContainerShouldRestart(c *corev1.Container, policy corev1.RestartPolicy, exitCode int32) bool {
	if c == nil || c.RestartPolicy == nil {
		return ShouldRestart(policy, exitCode)
	}
	if r, ok := matchRestartRule(c.RestartPolicyRules, exitCode); ok {
		switch r.Action {
		case corev1.ContainerRestartRuleActionRestart, corev1.ContainerRestartRuleActionRestartAllContainers:
			return true
		}
	}
	switch *c.RestartPolicy {
	case corev1.ContainerRestartPolicyAlways:
		return true
	case corev1.ContainerRestartPolicyOnFailure:
		return exitCode != 0
	case corev1.ContainerRestartPolicyNever:
		return false
	}
	return ShouldRestart(policy, exitCode)
}

// RestartsAll says whether container c, which exited with exitCode, restarts every container of
// its pod: the first of its restartPolicyRules that matches the code has the action
// RestartAllContainers (the kubelet's ShouldAllContainersRestart). Rules count only with a
// restartPolicy of the container's own, which validation requires of them.
func RestartsAll(c *corev1.Container, exitCode int32) bool {
	if c == nil || c.RestartPolicy == nil {
		return false
	}
	r, ok := matchRestartRule(c.RestartPolicyRules, exitCode)
	return ok && r.Action == corev1.ContainerRestartRuleActionRestartAllContainers
}

// ReasonRestartingAllContainers is the kubelet's reason for the waiting state and the last
// state of a container removed by a restart of all its pod's containers.
const ReasonRestartingAllContainers = "RestartingAllContainers"

// matchRestartRule returns the first rule whose exit codes match exitCode: In when it is one of
// the values, NotIn when it is none of them. A rule without exit codes or with another operator
// matches nothing.
func matchRestartRule(rules []corev1.ContainerRestartRule, exitCode int32) (corev1.ContainerRestartRule, bool) {
	for _, r := range rules {
		if r.ExitCodes == nil {
			continue
		}
		in := slices.Contains(r.ExitCodes.Values, exitCode)
		switch r.ExitCodes.Operator {
		case corev1.ContainerRestartRuleOnExitCodesOpIn:
			if in {
				return r, true
			}
		case corev1.ContainerRestartRuleOnExitCodesOpNotIn:
			if !in {
				return r, true
			}
		}
	}
	return corev1.ContainerRestartRule{}, false
}

// Phase computes a pod's phase from its app containers' statuses the way the kubelet does with
// ContainerRestartRules (pkg/kubelet/kubelet_pods.go getPhase): statuses[i] is the status of
// containers[i]. initialized says the sandbox and the init containers are done; terminal says
// the pod is finished for good, its containers never to run again.
//
// Once no container runs, the pod runs on while one of its exited containers will restart, by
// its own policy and rules or the pod's; otherwise it succeeded if they all exited 0, and failed
// if not.
func Phase(policy corev1.RestartPolicy, containers []*corev1.Container, statuses []corev1.ContainerStatus, initialized, terminal bool) corev1.PodPhase {
	if !initialized {
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded, restarting int
	for i, s := range statuses {
		var c *corev1.Container
		if i < len(containers) {
			c = containers[i]
		}
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
			if restartable(c, policy, s.State.Terminated) {
				restarting++
			}
		case s.State.Waiting != nil && s.LastTerminationState.Terminated != nil:
			// Waiting for its next attempt (CrashLoopBackOff) counts as stopped.
			stopped++
			if restartable(c, policy, s.LastTerminationState.Terminated) {
				restarting++
			}
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped == 0:
		return corev1.PodPending
	case restarting > 0 && !terminal:
		return corev1.PodRunning
	case stopped == succeeded:
		return corev1.PodSucceeded
	}
	return corev1.PodFailed
}

// restartable says whether a container that ended as t runs again: by its policy, or because a
// restart of all the pod's containers removed it (getPhase with RestartAllContainersOnContainerExits).
func restartable(c *corev1.Container, policy corev1.RestartPolicy, t *corev1.ContainerStateTerminated) bool {
	return t.Reason == ReasonRestartingAllContainers || ContainerShouldRestart(c, policy, t.ExitCode)
}
