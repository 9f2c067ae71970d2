package pod

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
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
	s.apps[0].exit.Code = 1 // Failed: the reason stays ContainersNotReady
	st, _ = podStatus(s, "", t0)
	if c := conditionOf(st, corev1.PodReady); st.Phase != corev1.PodFailed || c.Reason != "ContainersNotReady" {
		t.Errorf("failed pod: %s, %+v", st.Phase, c)
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
