package pod

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
)

func conditionOf(st corev1.PodStatus, t corev1.PodConditionType) corev1.PodCondition {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c
		}
	}
	return corev1.PodCondition{}
}

// podStatus against the kubelet's reporting: phases, waiting reasons, readiness, conditions.
func TestPodStatus(t *testing.T) {
	running := func(c *ctrState) {
		c.id = c.spec.Name + "-0"
		c.started = t0.Add(-time.Minute)
		c.ready, c.startedOK = true, true
	}
	notReady := func(c *ctrState) { c.ready = false }
	attempt := func(n int) func(*ctrState) { return func(c *ctrState) { c.attempt = n } }
	waitingFor := func(reason string) func(*ctrState) { return func(c *ctrState) { c.waitReason = reason } }
	pulling := func(c *ctrState) { c.pulling = "Pulling image \"busybox\": 1.0 MiB of 2.0 MiB" }
	for _, tc := range []struct {
		name       string
		policy     corev1.RestartPolicy
		terminal   bool
		sandbox    bool
		inits      []*ctrState
		apps       []*ctrState
		phase      corev1.PodPhase
		state      string // the first app container's state: running, terminated or a waiting reason
		ready      bool
		message    string // the first app container's waiting message, when state is a reason
		initReason string // the first init container's waiting reason, if any
	}{
		{name: "all running and ready", policy: corev1.RestartPolicyAlways, sandbox: true,
			apps: []*ctrState{ctr("a", ctrRunning, running)}, phase: corev1.PodRunning, state: "running", ready: true},
		{name: "running, not ready", policy: corev1.RestartPolicyAlways, sandbox: true,
			apps: []*ctrState{ctr("a", ctrRunning, running, notReady)}, phase: corev1.PodRunning, state: "running"},
		{name: "being killed is still running", policy: corev1.RestartPolicyAlways, sandbox: true,
			apps: []*ctrState{ctr("a", ctrStopping, running)}, phase: corev1.PodRunning, state: "running", ready: true},
		{name: "no sandbox yet", policy: corev1.RestartPolicyAlways,
			apps: []*ctrState{ctr("a", ctrNew)}, phase: corev1.PodPending, state: "ContainerCreating"},
		{name: "pulling shows progress", policy: corev1.RestartPolicyAlways, sandbox: true,
			apps: []*ctrState{ctr("a", ctrStarting, pulling)}, phase: corev1.PodPending, state: "ContainerCreating", message: "Pulling image \"busybox\": 1.0 MiB of 2.0 MiB"},
		{name: "image pull failed", policy: corev1.RestartPolicyAlways, sandbox: true,
			apps: []*ctrState{ctr("a", ctrFailed, waitingFor(ReasonImagePullBackOff))}, phase: corev1.PodPending, state: ReasonImagePullBackOff},
		{name: "crash loop", policy: corev1.RestartPolicyAlways, sandbox: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(1), attempt(3), waitingFor("CrashLoopBackOff"))}, phase: corev1.PodRunning, state: "CrashLoopBackOff"},
		{name: "succeeded under OnFailure", policy: corev1.RestartPolicyOnFailure, sandbox: true, terminal: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(0))}, phase: corev1.PodSucceeded, state: "terminated"},
		{name: "failed under Never", policy: corev1.RestartPolicyNever, sandbox: true, terminal: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(3)), ctr("b", ctrExited, exitCode(0))}, phase: corev1.PodFailed, state: "terminated"},
		{name: "one done, one running under Never", policy: corev1.RestartPolicyNever, sandbox: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(0)), ctr("b", ctrRunning, running)}, phase: corev1.PodRunning, state: "terminated"},
		{name: "init running", policy: corev1.RestartPolicyAlways, sandbox: true,
			inits: []*ctrState{ctr("i", ctrRunning, initCtr, running)}, apps: []*ctrState{ctr("a", ctrNew)}, phase: corev1.PodPending, state: "PodInitializing"},
		{name: "init being pulled", policy: corev1.RestartPolicyAlways, sandbox: true,
			inits: []*ctrState{ctr("i", ctrStarting, initCtr, pulling)}, apps: []*ctrState{ctr("a", ctrNew)}, phase: corev1.PodPending, state: "PodInitializing", initReason: "PodInitializing"},
		{name: "init failed under Never", policy: corev1.RestartPolicyNever, sandbox: true, terminal: true,
			inits: []*ctrState{ctr("i", ctrExited, initCtr, exitCode(1))}, apps: []*ctrState{ctr("a", ctrNew)}, phase: corev1.PodFailed, state: "PodInitializing"},
		{name: "inits done, app being made", policy: corev1.RestartPolicyAlways, sandbox: true,
			inits: []*ctrState{ctr("i", ctrExited, initCtr, exitCode(0))}, apps: []*ctrState{ctr("a", ctrStarting)}, phase: corev1.PodPending, state: "ContainerCreating"},
		// Containers with their own restart policy and rules (ContainerRestartRules).
		{name: "own Always crash loop under Never", policy: corev1.RestartPolicyNever, sandbox: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(1), attempt(1), waitingFor("CrashLoopBackOff"), ownPolicy(corev1.ContainerRestartPolicyAlways))}, phase: corev1.PodRunning, state: "CrashLoopBackOff"},
		{name: "rule matched under Never", policy: corev1.RestartPolicyNever, sandbox: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(42), ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpIn, 42)))}, phase: corev1.PodRunning, state: "ContainerCreating"},
		{name: "own Never failed under Always", policy: corev1.RestartPolicyAlways, sandbox: true, terminal: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyNever))}, phase: corev1.PodFailed, state: "terminated"},
		{name: "own Never done, another restarting, under Never", policy: corev1.RestartPolicyNever, sandbox: true,
			apps: []*ctrState{ctr("a", ctrExited, exitCode(1)), ctr("b", ctrExited, exitCode(1), waitingFor("CrashLoopBackOff"), ownPolicy(corev1.ContainerRestartPolicyOnFailure))}, phase: corev1.PodRunning, state: "terminated"},
		{name: "init with own Never failed under Always", policy: corev1.RestartPolicyAlways, sandbox: true, terminal: true,
			inits: []*ctrState{ctr("i", ctrExited, initCtr, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyNever))}, apps: []*ctrState{ctr("a", ctrNew)}, phase: corev1.PodFailed, state: "PodInitializing"},
		{name: "init with own OnFailure restarting under Never", policy: corev1.RestartPolicyNever, sandbox: true,
			inits: []*ctrState{ctr("i", ctrExited, initCtr, exitCode(1), waitingFor("CrashLoopBackOff"), ownPolicy(corev1.ContainerRestartPolicyOnFailure))}, apps: []*ctrState{ctr("a", ctrNew)}, phase: corev1.PodPending, state: "PodInitializing", initReason: "CrashLoopBackOff"},
		{name: "sidecar started, app running", policy: corev1.RestartPolicyAlways, sandbox: true,
			inits: []*ctrState{ctr("s", ctrRunning, sidecar, running)}, apps: []*ctrState{ctr("a", ctrRunning, running)}, phase: corev1.PodRunning, state: "running", ready: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readyPod(tc.policy, tc.inits, tc.apps)
			s.sandboxOK, s.terminal = tc.sandbox, tc.terminal
			s.pod.Name, s.pod.Namespace = "p", "default"
			st, conds := podStatus(s, "192.0.2.1", t0)
			if st.Phase != tc.phase {
				t.Errorf("phase = %s, want %s", st.Phase, tc.phase)
			}
			cs := st.ContainerStatuses[0]
			got := "?"
			switch {
			case cs.State.Running != nil:
				got = "running"
			case cs.State.Terminated != nil:
				got = "terminated"
			case cs.State.Waiting != nil:
				got = cs.State.Waiting.Reason
				if tc.message != "" && cs.State.Waiting.Message != tc.message {
					t.Errorf("waiting message = %q, want %q", cs.State.Waiting.Message, tc.message)
				}
			}
			if got != tc.state {
				t.Errorf("state = %s, want %s", got, tc.state)
			}
			if ready := conditionOf(st, corev1.PodReady).Status == corev1.ConditionTrue; ready != tc.ready {
				t.Errorf("Ready = %v, want %v", ready, tc.ready)
			}
			if len(conds) != 5 || len(st.Conditions) != 5 {
				t.Errorf("%d conditions", len(st.Conditions))
			}
			if tc.initReason != "" {
				if w := st.InitContainerStatuses[0].State.Waiting; w == nil || w.Reason != tc.initReason {
					t.Errorf("init state = %+v, want waiting %s", st.InitContainerStatuses[0].State, tc.initReason)
				}
			}
		})
	}
}

// A condition keeps its transition time while its status stays; a change takes the new time.
func TestPodStatusConditionTimes(t *testing.T) {
	s := readyPod(corev1.RestartPolicyAlways, nil, []*ctrState{ctr("a", ctrNew)})
	s.pod.Name = "p"
	_, conds := podStatus(s, "", t0)
	s.conds = conds
	st, conds := podStatus(s, "", t0.Add(time.Minute))
	if got := conditionOf(st, corev1.PodReady); !got.LastTransitionTime.Time.Equal(t0) || got.Reason != "ContainersNotReady" {
		t.Errorf("unchanged Ready: %+v", got)
	}
	s.conds = conds
	s.apps[0].phase, s.apps[0].ready, s.apps[0].startedOK = ctrRunning, true, true
	st, _ = podStatus(s, "", t0.Add(2*time.Minute))
	if got := conditionOf(st, corev1.PodReady); got.Status != corev1.ConditionTrue || !got.LastTransitionTime.Time.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("Ready after the change: %+v", got)
	}
}

// A Succeeded pod's Ready and ContainersReady are False with the kubelet's PodCompleted.
func TestPodStatusCompleted(t *testing.T) {
	s := readyPod(corev1.RestartPolicyNever, nil, []*ctrState{ctr("a", ctrExited, exitCode(0))})
	s.terminal = true
	st, _ := podStatus(s, "", t0)
	for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		if c := conditionOf(st, ct); c.Status != corev1.ConditionFalse || c.Reason != "PodCompleted" {
			t.Errorf("%s: %+v", ct, c)
		}
	}
	if c := conditionOf(st, corev1.PodInitialized); c.Status != corev1.ConditionTrue || c.Reason != "PodCompleted" {
		t.Errorf("Initialized: %+v", c)
	}
	s.apps[0].exit.Code = 1 // Failed: the kubelet's PodFailed, with no message
	st, _ = podStatus(s, "", t0)
	for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		if c := conditionOf(st, ct); st.Phase != corev1.PodFailed || c.Status != corev1.ConditionFalse || c.Reason != "PodFailed" || c.Message != "" {
			t.Errorf("failed pod: %s, %+v", st.Phase, c)
		}
	}
}

// Init containers that completed are ready, as the kubelet's prober manager reports them; the
// Initialized condition names those not done, as the kubelet's GeneratePodInitializedCondition.
func TestPodStatusInitialized(t *testing.T) {
	runningOK := func(c *ctrState) { c.id, c.ready, c.startedOK = c.spec.Name+"-0", true, true }
	crashLoop := func(c *ctrState) { c.attempt, c.waitReason = 3, "CrashLoopBackOff" }
	for _, tc := range []struct {
		name     string
		policy   corev1.RestartPolicy
		terminal bool
		inits    []*ctrState
		apps     []*ctrState
		ready    []bool // of each init container
		status   corev1.ConditionStatus
		message  string
	}{
		{name: "all completed", policy: corev1.RestartPolicyAlways,
			inits:  []*ctrState{ctr("init1", ctrExited, initCtr, exitCode(0)), ctr("init2", ctrExited, initCtr, exitCode(0))},
			apps:   []*ctrState{ctr("run1", ctrRunning, runningOK)},
			ready:  []bool{true, true},
			status: corev1.ConditionTrue},
		{name: "first fails and restarts (Always)", policy: corev1.RestartPolicyAlways,
			inits:   []*ctrState{ctr("init1", ctrExited, initCtr, exitCode(1), crashLoop), ctr("init2", ctrNew, initCtr)},
			apps:    []*ctrState{ctr("run1", ctrNew)},
			ready:   []bool{false, false},
			status:  corev1.ConditionFalse,
			message: "containers with incomplete status: [init1 init2]"},
		{name: "second fails the pod (Never)", policy: corev1.RestartPolicyNever, terminal: true,
			inits:   []*ctrState{ctr("init1", ctrExited, initCtr, exitCode(0)), ctr("init2", ctrExited, initCtr, exitCode(1))},
			apps:    []*ctrState{ctr("run1", ctrNew)},
			ready:   []bool{true, false},
			status:  corev1.ConditionFalse,
			message: "containers with incomplete status: [init2]"},
		{name: "running init", policy: corev1.RestartPolicyAlways,
			inits:   []*ctrState{ctr("init1", ctrRunning, initCtr, runningOK)},
			apps:    []*ctrState{ctr("run1", ctrNew)},
			ready:   []bool{false},
			status:  corev1.ConditionFalse,
			message: "containers with incomplete status: [init1]"},
		{name: "sidecar not started yet", policy: corev1.RestartPolicyAlways,
			inits:   []*ctrState{ctr("s", ctrRunning, sidecar), ctr("init2", ctrNew, initCtr)},
			apps:    []*ctrState{ctr("run1", ctrNew)},
			ready:   []bool{false, false},
			status:  corev1.ConditionFalse,
			message: "containers with incomplete status: [s init2]"},
		{name: "sidecar restarting after the apps started", policy: corev1.RestartPolicyAlways,
			inits:  []*ctrState{ctr("s", ctrExited, sidecar, exitCode(1), crashLoop)},
			apps:   []*ctrState{ctr("run1", ctrRunning, runningOK)},
			ready:  []bool{false},
			status: corev1.ConditionTrue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readyPod(tc.policy, tc.inits, tc.apps)
			s.terminal = tc.terminal
			st, _ := podStatus(s, "", t0)
			for i, want := range tc.ready {
				if got := st.InitContainerStatuses[i].Ready; got != want {
					t.Errorf("%s ready = %v, want %v", st.InitContainerStatuses[i].Name, got, want)
				}
			}
			c := conditionOf(st, corev1.PodInitialized)
			if c.Status != tc.status || c.Message != tc.message {
				t.Errorf("Initialized = %s %q, want %s %q", c.Status, c.Message, tc.status, tc.message)
			}
			if want := ""; tc.status == corev1.ConditionFalse && c.Reason != "ContainersNotInitialized" || tc.status == corev1.ConditionTrue && c.Reason != want {
				t.Errorf("Initialized reason = %q", c.Reason)
			}
		})
	}
}

// A sidecar's readiness counts in ContainersReady and Ready, and the conditions name the
// containers not ready, as the kubelet's GenerateContainersReadyCondition.
func TestPodStatusReadyCountsSidecars(t *testing.T) {
	up := func(ready bool) func(*ctrState) {
		return func(c *ctrState) { c.id, c.ready, c.startedOK = c.spec.Name+"-0", ready, true }
	}
	for _, tc := range []struct {
		name    string
		inits   []*ctrState
		apps    []*ctrState
		status  corev1.ConditionStatus
		message string
	}{
		{"all ready", []*ctrState{ctr("s", ctrRunning, sidecar, up(true)), ctr("i", ctrExited, initCtr, exitCode(0))},
			[]*ctrState{ctr("a", ctrRunning, up(true))}, corev1.ConditionTrue, ""},
		{"sidecar not ready", []*ctrState{ctr("s", ctrRunning, sidecar, up(false)), ctr("i", ctrExited, initCtr, exitCode(0))},
			[]*ctrState{ctr("a", ctrRunning, up(true))}, corev1.ConditionFalse, "containers with unready status: [s]"},
		{"sidecar and apps not ready", []*ctrState{ctr("s", ctrRunning, sidecar, up(false))},
			[]*ctrState{ctr("a", ctrRunning, up(false)), ctr("b", ctrRunning, up(true)), ctr("c", ctrNew)}, corev1.ConditionFalse, "containers with unready status: [s a c]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _ := podStatus(readyPod(corev1.RestartPolicyAlways, tc.inits, tc.apps), "", t0)
			for _, ct := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
				c := conditionOf(st, ct)
				if c.Status != tc.status || c.Message != tc.message {
					t.Errorf("%s = %s %q, want %s %q", ct, c.Status, c.Message, tc.status, tc.message)
				}
				if tc.status == corev1.ConditionFalse && c.Reason != "ContainersNotReady" {
					t.Errorf("%s reason = %q", ct, c.Reason)
				}
			}
		})
	}
}

// A condition whose status stays keeps its transition time, but takes the new message.
func TestPodStatusConditionMessageFollows(t *testing.T) {
	s := readyPod(corev1.RestartPolicyAlways, []*ctrState{ctr("init1", ctrRunning, initCtr), ctr("init2", ctrNew, initCtr)}, []*ctrState{ctr("a", ctrNew)})
	_, conds := podStatus(s, "", t0)
	s.conds = conds
	s.inits[0].phase, s.inits[0].exit = ctrExited, runtime.Exit{At: t0}
	st, _ := podStatus(s, "", t0.Add(time.Minute))
	if c := conditionOf(st, corev1.PodInitialized); !c.LastTransitionTime.Time.Equal(t0) || c.Message != "containers with incomplete status: [init2]" {
		t.Errorf("Initialized: %+v", c)
	}
}

func TestPodStatusFailures(t *testing.T) {
	s := readyPod(corev1.RestartPolicyAlways, nil, []*ctrState{ctr("a", ctrNew)})
	s.vols, s.volErr = nil, errors.New("secret \"x\" not found")
	s.sandboxOK = true
	st, _ := podStatus(s, "", t0)
	if w := st.ContainerStatuses[0].State.Waiting; w == nil || w.Reason != "ContainerCreating" || w.Message != "FailedMount: secret \"x\" not found" {
		t.Errorf("volume failure: %+v", st.ContainerStatuses[0].State)
	}
	s.sandboxOK, s.sandboxErr = false, errors.New("cni: no address")
	st, _ = podStatus(s, "", t0)
	if st.Message != "FailedCreatePodSandBox: cni: no address" || st.PodIP != "" {
		t.Errorf("sandbox failure: message %q, IP %q", st.Message, st.PodIP)
	}
}

// A pod failed for its active deadline is Failed with the kubelet's reason and message.
func TestPodStatusDeadlineExceeded(t *testing.T) {
	s := readyPod(corev1.RestartPolicyAlways, nil, []*ctrState{ctr("a", ctrExited, exitCode(137))})
	s.terminal, s.deadlineExceeded = true, true
	st, _ := podStatus(s, "", t0)
	if st.Phase != corev1.PodFailed || st.Reason != "DeadlineExceeded" || st.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("status: %s %q %q", st.Phase, st.Reason, st.Message)
	}
	if cs := st.ContainerStatuses[0]; cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 137 {
		t.Errorf("container: %+v", cs.State)
	}
	if c := conditionOf(st, corev1.PodReady); c.Status != corev1.ConditionFalse || c.Reason != "PodFailed" {
		t.Errorf("Ready: %+v", c)
	}
}

// A restart of all containers as the kubelet reports it: the AllContainersRestarting condition
// (only in a pod with a RestartAllContainers rule) is True from the exit that begins it until
// the pod starts over; removed containers wait with reason RestartingAllContainers, their
// restart counted; the pod stays Initialized while its init containers run again.
func TestPodStatusRestartAllContainers(t *testing.T) {
	never := corev1.ContainerRestartPolicyNever
	runningOK := func(c *ctrState) { c.id, c.ready, c.startedOK = c.spec.Name+"-0", true, true }
	src := ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42))
	s := readyPod(corev1.RestartPolicyNever,
		[]*ctrState{ctr("i", ctrExited, initCtr, exitCode(0))},
		[]*ctrState{src, ctr("b", ctrRunning, runningOK)})
	s.pod.Spec.Containers = []corev1.Container{*src.spec, *s.apps[1].spec}
	st, conds := podStatus(s, "", t0)
	if c := conditionOf(st, corev1.AllContainersRestarting); c.Status != corev1.ConditionTrue || c.Reason != "RestartAllContainersStarted" || c.Message != "container exited with restart policy rule" {
		t.Errorf("after the exit: %+v, want True RestartAllContainersStarted", c)
	}
	if st.Phase != corev1.PodRunning {
		t.Errorf("after the exit: phase %s, want Running", st.Phase)
	}
	if cs := st.ContainerStatuses[0]; cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 42 {
		t.Errorf("src after its exit: %+v, want its exit 42 as it waits", cs)
	}

	s.conds = conds
	for _, c := range s.all() {
		if c.phase == ctrRunning {
			c.phase, c.exit = ctrExited, runtime.Exit{Code: 137, At: t0}
		}
	}
	s.restartingAll = true
	resetAll(s)
	st, _ = podStatus(s, "", t0.Add(time.Second))
	if c := conditionOf(st, corev1.AllContainersRestarting); c.Status != corev1.ConditionFalse || c.Reason != "" {
		t.Errorf("after the reset: %+v, want False", c)
	}
	if c := conditionOf(st, corev1.PodInitialized); c.Status != corev1.ConditionTrue {
		t.Errorf("after the reset: Initialized %+v, want it kept True", c)
	}
	for _, cs := range append(st.InitContainerStatuses, st.ContainerStatuses...) {
		w, last := cs.State.Waiting, cs.LastTerminationState.Terminated
		if cs.RestartCount != 1 || w == nil || w.Reason != ReasonRestartingAllContainers || last == nil || last.Reason != ReasonRestartingAllContainers || last.ExitCode != 137 {
			t.Errorf("%s after the reset: %+v, want restartCount 1, waiting and last state RestartingAllContainers", cs.Name, cs)
		}
	}

	plain := readyPod(corev1.RestartPolicyNever, nil, []*ctrState{ctr("a", ctrRunning, runningOK)})
	plain.pod.Spec.Containers = []corev1.Container{*plain.apps[0].spec}
	if st, _ := podStatus(plain, "", t0); conditionOf(st, corev1.AllContainersRestarting).Type != "" {
		t.Error("a pod without a RestartAllContainers rule has the AllContainersRestarting condition")
	}
}
