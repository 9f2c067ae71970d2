package pod

import (
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

// ShouldRestart says whether a container that exited with code restarts under policy.
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

// Phase computes a pod's phase from its app container statuses the way the kubelet does
// (pkg/kubelet/kubelet_pods.go getPhase), for a pod whose sandbox and init containers are done
// when initialized is true.
func Phase(policy corev1.RestartPolicy, initialized bool, statuses []corev1.ContainerStatus) corev1.PodPhase {
	if !initialized {
		return corev1.PodPending
	}
	var running, waiting, stopped, succeeded int
	for _, s := range statuses {
		switch {
		case s.State.Running != nil:
			running++
		case s.State.Terminated != nil:
			stopped++
			if s.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case s.State.Waiting != nil:
			if s.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
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
	case stopped > 0:
		switch policy {
		case corev1.RestartPolicyAlways:
			// Containers in backoff will run again.
			return corev1.PodRunning
		case corev1.RestartPolicyOnFailure:
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodRunning
		default:
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
	}
	return corev1.PodPending
}
