package pod

import (
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/logs"
	"github.com/minipod/minipod/pkg/runtime"
)

// ctrPhase is where one container of a pod is in its life, as its worker sees it:
//
//	new ──> starting ──> running ──> stopping ──> exited ──> starting (the next attempt)
//	           │            │  └──────────────────> ^
//	           v            └──> lost ──> running, stopping or exited (containerd asked again)
//	        failed ──> starting (retried after its backoff)
//
//	exited, failed ──> new (a restart of all the pod's containers sets it back)
//
// A container is new before its first attempt, and again once a restart of all the pod's
// containers (a restartPolicyRules action RestartAllContainers) has set it back; starting while an attempt is being made off the
// worker's loop (image pull, create, start); running until its exit comes; stopping while the
// worker kills it (failed probe, sidecars at the end); exited when its attempt ended; failed when
// the last attempt could not be made (its waiting reason says why); lost while containerd must be
// asked again because the wait for its exit broke.
type ctrPhase uint8

const (
	ctrNew ctrPhase = iota
	ctrStarting
	ctrRunning
	ctrStopping
	ctrExited
	ctrFailed
	ctrLost
)

func (p ctrPhase) String() string {
	switch p {
	case ctrNew:
		return "new"
	case ctrStarting:
		return "starting"
	case ctrRunning:
		return "running"
	case ctrStopping:
		return "stopping"
	case ctrExited:
		return "exited"
	case ctrFailed:
		return "failed"
	case ctrLost:
		return "lost"
	}
	return fmt.Sprintf("ctrPhase(%d)", uint8(p))
}

// transitions lists, for each phase, the phases it may go to.
var transitions = map[ctrPhase][]ctrPhase{
	ctrNew:      {ctrStarting},
	ctrStarting: {ctrRunning, ctrFailed, ctrExited},
	ctrRunning:  {ctrStopping, ctrExited, ctrLost},
	ctrStopping: {ctrExited, ctrLost},
	ctrExited:   {ctrStarting, ctrNew},
	ctrFailed:   {ctrStarting, ctrNew},
	ctrLost:     {ctrRunning, ctrStopping, ctrExited},
}

// canMove reports whether a container may go from one phase to another.
func canMove(from, to ctrPhase) bool {
	for _, p := range transitions[from] {
		if p == to {
			return true
		}
	}
	return false
}

// ctrState is one container of the pod across its attempts. Only the worker's loop touches it.
type ctrState struct {
	spec  *corev1.Container
	init  bool
	phase ctrPhase

	attempt int    // restartCount
	id      string // containerd ID of the current attempt, "" before the first
	exit    runtime.Exit
	started time.Time
	imageID string
	logPath string
	user    *runtime.ProcessUser // the current attempt's process identity, once created

	log        *logs.File
	stdin      *io.PipeWriter // held open for stdin: true
	ready      bool           // readiness probe verdict (true without a readiness probe)
	startedOK  bool           // startup probe passed (true without a startup probe)
	hookBusy   bool           // its postStart hook runs: probes wait for it
	stopSignal string
	message    string // termination message of the exited attempt
	hookErr    string // why a postStart hook killed the current attempt

	last      *corev1.ContainerStateTerminated
	delay     time.Duration // crash backoff delay to apply to the next restart
	restartAt time.Time     // when the next attempt may start (zero: at once)
	failDelay time.Duration // backoff of failed starts (image pulls, create, start), doubling as the crash backoff

	waitReason   string
	waitMessage  string
	permanentErr bool   // waiting for a change of spec, not for time
	pulling      string // while its image is pulled: the progress, shown as ContainerCreating's message
	// reset: a restart of all the pod's containers removed its last attempt, which its
	// restartCount already counts; its next attempt does not count again.
	reset bool
}

// move changes the container's phase; a move the lifecycle does not allow is refused with an
// error (and the phase kept), so that a bug shows in the log instead of a confused pod.
func (c *ctrState) move(to ctrPhase) error {
	if !canMove(c.phase, to) {
		return fmt.Errorf("container %s: no move from %s to %s", c.spec.Name, c.phase, to)
	}
	c.phase = to
	return nil
}

// alive reports whether the current attempt's process may be running.
func (c *ctrState) alive() bool {
	return c.phase == ctrRunning || c.phase == ctrStopping || c.phase == ctrLost
}

// hasExit reports whether the container's latest attempt ended (its exit is in c.exit).
func (c *ctrState) hasExit() bool { return c.phase == ctrExited }

// isSidecar reports whether an init container is a sidecar (restartPolicy: Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// restarts reports whether an exited container runs again, by its own restart policy and rules
// or else the pod's policy, as the kubelet decides with ContainerRestartRules. A sidecar always
// does; an init container that exited 0 is done whatever its policy. An exit whose code is not
// known counts as 137, the code its status reports.
func (c *ctrState) restarts(policy corev1.RestartPolicy) bool {
	if c.init && isSidecar(c.spec) {
		return true
	}
	code := c.exitCode()
	if c.init && code == 0 {
		return false
	}
	return ContainerShouldRestart(c.spec, policy, code)
}

// exitCode is the code of the container's latest exit as its status reports it: 137 when the
// code is not known.
func (c *ctrState) exitCode() int32 {
	if c.exit.Unknown {
		return 137
	}
	return int32(c.exit.Code)
}

// restartsAll reports whether the container exited in a way that restarts every container of
// its pod: a restartPolicyRules rule with the action RestartAllContainers matches its exit.
func (c *ctrState) restartsAll() bool {
	return c.phase == ctrExited && RestartsAll(c.spec, c.exitCode())
}

// restartCount is the container's restartCount: its attempt, or one more while a restart of
// all the pod's containers has removed the last attempt and the next is not made yet.
func (c *ctrState) restartCount() int32 {
	if c.reset {
		return int32(c.attempt) + 1
	}
	return int32(c.attempt)
}

// startFailed records an attempt that was made but whose process could not be started
// (RunContainerError) as containerd's CRI records one and the kubelet reports it: terminated
// with exit code 128 and reason StartError, the error as its message, never started (startedAt
// is 0 in Unix time) and finished when the start failed. As on a kubelet it was an attempt: it
// becomes the container's last state, and the next attempt is its next restart.
func (c *ctrState) startFailed(id string, attempt int, logPath string, err error, at time.Time) {
	c.id, c.attempt, c.logPath = id, attempt, logPath
	c.last = &corev1.ContainerStateTerminated{
		ExitCode:    128,
		Reason:      "StartError",
		Message:     err.Error(),
		StartedAt:   metav1.NewTime(time.Unix(0, 0)),
		FinishedAt:  metav1.NewTime(at),
		ContainerID: "containerd://" + id,
	}
}
