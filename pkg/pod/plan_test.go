package pod

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/volume"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// ctr makes a container state for the plan's tables.
func ctr(name string, phase ctrPhase, mods ...func(*ctrState)) *ctrState {
	c := &ctrState{spec: &corev1.Container{Name: name, Image: "busybox"}, phase: phase}
	for _, m := range mods {
		m(c)
	}
	return c
}

func exitCode(code uint32) func(*ctrState) {
	return func(c *ctrState) {
		c.exit = runtime.Exit{Code: code, At: t0.Add(-time.Second)}
		c.id = c.spec.Name + "-0"
	}
}
func unknownExit(c *ctrState) {
	c.exit = runtime.Exit{Unknown: true, At: t0}
	c.id = c.spec.Name + "-0"
}
func restartIn(d time.Duration) func(*ctrState) {
	return func(c *ctrState) { c.restartAt = t0.Add(d) }
}
func sidecar(c *ctrState) {
	always := corev1.ContainerRestartPolicyAlways
	c.spec.RestartPolicy = &always
	c.init = true
}
func initCtr(c *ctrState)   { c.init = true }
func startedOK(c *ctrState) { c.startedOK = true }
func permanent(c *ctrState) { c.permanentErr = true }

// readyPod is a pod whose sandbox and volumes are made.
func readyPod(policy corev1.RestartPolicy, inits, apps []*ctrState) *podState {
	p := &corev1.Pod{}
	p.Spec.RestartPolicy = policy
	return &podState{pod: p, sandboxOK: true, vols: &volume.Prepared{}, inits: inits, apps: apps}
}

func ctrNames(cs []*ctrState) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.spec.Name)
	}
	return out
}

func TestPlanSandboxAndVolumes(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *podState
		want plan
	}{
		{"no sandbox: make one", &podState{pod: &corev1.Pod{}}, plan{createSandbox: true}},
		{"sandbox failed: wait for the retry", &podState{pod: &corev1.Pod{}, retryAt: t0.Add(5 * time.Second)}, plan{wake: t0.Add(5 * time.Second)}},
		{"sandbox being made: nothing", &podState{pod: &corev1.Pod{}, sandboxBusy: true}, plan{}},
		{"sandbox gone while a container starts: wait for the start", &podState{pod: &corev1.Pod{}, apps: []*ctrState{ctr("a", ctrStarting)}}, plan{}},
		{"sandbox ready: volumes next", &podState{pod: &corev1.Pod{}, sandboxOK: true}, plan{prepareVolumes: true}},
		{"volumes failed: wait for the retry", &podState{pod: &corev1.Pod{}, sandboxOK: true, volRetryAt: t0.Add(time.Second)}, plan{wake: t0.Add(time.Second)}},
		{"volumes being made: nothing", &podState{pod: &corev1.Pod{}, sandboxOK: true, volBusy: true}, plan{}},
		{"terminal: nothing", &podState{pod: &corev1.Pod{}, terminal: true}, plan{}},
		{"lost tasks: wake to ask again", &podState{pod: &corev1.Pod{}, sandboxBusy: true, lostAt: t0.Add(time.Second)}, plan{wake: t0.Add(time.Second)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := computePlan(tc.s, t0)
			if got.createSandbox != tc.want.createSandbox || got.prepareVolumes != tc.want.prepareVolumes ||
				len(got.start) != 0 || !got.wake.Equal(tc.want.wake) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPlanRefreshWaitsForStarts(t *testing.T) {
	s := readyPod(corev1.RestartPolicyAlways, nil, []*ctrState{ctr("a", ctrStarting)})
	s.refreshAt = t0.Add(-time.Second)
	if p := computePlan(s, t0); p.refreshVolumes {
		t.Error("refresh planned while a container starts")
	}
	s.apps[0].phase = ctrRunning
	if p := computePlan(s, t0); !p.refreshVolumes {
		t.Error("refresh not planned when due")
	}
	s.refreshAt = t0.Add(time.Minute)
	if p := computePlan(s, t0); p.refreshVolumes || !p.wake.Equal(s.refreshAt) {
		t.Errorf("refresh not due: got %+v", p)
	}
}

// The restart policy against how each container ended, as the kubelet decides it
// (computePodActions and its restart rules).
func TestPlanRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		policy   corev1.RestartPolicy
		app      *ctrState
		start    bool
		terminal bool
	}{
		{corev1.RestartPolicyAlways, ctr("a", ctrExited, exitCode(0)), true, false},
		{corev1.RestartPolicyAlways, ctr("a", ctrExited, exitCode(1)), true, false},
		{corev1.RestartPolicyOnFailure, ctr("a", ctrExited, exitCode(0)), false, true},
		{corev1.RestartPolicyOnFailure, ctr("a", ctrExited, exitCode(2)), true, false},
		{corev1.RestartPolicyOnFailure, ctr("a", ctrExited, unknownExit), true, false},
		{corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(0)), false, true},
		{corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(1)), false, true},
		{corev1.RestartPolicyAlways, ctr("a", ctrNew), true, false},
		{corev1.RestartPolicyNever, ctr("a", ctrNew), true, false},
		{corev1.RestartPolicyNever, ctr("a", ctrRunning), false, false},
		{corev1.RestartPolicyAlways, ctr("a", ctrStarting), false, false},
		{corev1.RestartPolicyAlways, ctr("a", ctrStopping), false, false},
		{corev1.RestartPolicyAlways, ctr("a", ctrLost), false, false},
		// A failed start is tried again whatever the policy: the kubelet retries pulls.
		{corev1.RestartPolicyNever, ctr("a", ctrFailed), true, false},
		{corev1.RestartPolicyNever, ctr("a", ctrFailed, permanent), false, false},
	} {
		name := string(tc.policy) + "/" + tc.app.phase.String()
		t.Run(name, func(t *testing.T) {
			p := computePlan(readyPod(tc.policy, nil, []*ctrState{tc.app}), t0)
			if got := len(p.start) == 1; got != tc.start {
				t.Errorf("start = %v, want %v (exit %+v)", got, tc.start, tc.app.exit)
			}
			if p.terminal != tc.terminal {
				t.Errorf("terminal = %v, want %v", p.terminal, tc.terminal)
			}
		})
	}
}

// ownPolicy gives a container its own restart policy and rules (ContainerRestartRules).
func ownPolicy(policy corev1.ContainerRestartPolicy, rules ...corev1.ContainerRestartRule) func(*ctrState) {
	return func(c *ctrState) { c.spec.RestartPolicy, c.spec.RestartPolicyRules = &policy, rules }
}

// restartOn is a rule that restarts the container on the exit codes in (In) or not in (NotIn)
// codes.
func restartOn(op corev1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) corev1.ContainerRestartRule {
	return corev1.ContainerRestartRule{Action: corev1.ContainerRestartRuleActionRestart,
		ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
}

// A container's own restart policy and rules override the pod's, as the kubelet decides with
// ContainerRestartRules (computePodActions, ShouldContainerBeRestarted, ContainerShouldRestart);
// the pod ends once no app container restarts.
func TestPlanContainerRestartPolicy(t *testing.T) {
	in42 := restartOn(corev1.ContainerRestartRuleOnExitCodesOpIn, 42)
	for _, tc := range []struct {
		name     string
		policy   corev1.RestartPolicy
		app      *ctrState
		start    bool
		terminal bool
	}{
		{"rule matches under Never", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(42), ownPolicy(corev1.ContainerRestartPolicyNever, in42)), true, false},
		{"rule does not match under Never", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyNever, in42)), false, true},
		{"own Never in a pod of Always", corev1.RestartPolicyAlways, ctr("a", ctrExited, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyNever)), false, true},
		{"own Always in a pod of Never", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyAlways)), true, false},
		{"own Always after success", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(0), ownPolicy(corev1.ContainerRestartPolicyAlways)), true, false},
		{"own OnFailure after success", corev1.RestartPolicyAlways, ctr("a", ctrExited, exitCode(0), ownPolicy(corev1.ContainerRestartPolicyOnFailure)), false, true},
		{"own OnFailure after failure", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(3), ownPolicy(corev1.ContainerRestartPolicyOnFailure)), true, false},
		{"NotIn matches", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(2), ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpNotIn, 0, 1))), true, false},
		{"NotIn does not match", corev1.RestartPolicyNever, ctr("a", ctrExited, exitCode(0), ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpNotIn, 0, 1))), false, true},
		{"no rule matches: own OnFailure", corev1.RestartPolicyAlways, ctr("a", ctrExited, exitCode(0), ownPolicy(corev1.ContainerRestartPolicyOnFailure, in42)), false, true},
		{"unknown end counts as 137", corev1.RestartPolicyNever, ctr("a", ctrExited, unknownExit, ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpIn, 137))), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := computePlan(readyPod(tc.policy, nil, []*ctrState{tc.app}), t0)
			if got := len(p.start) == 1; got != tc.start {
				t.Errorf("start = %v, want %v (exit %+v)", got, tc.start, tc.app.exit)
			}
			if p.terminal != tc.terminal {
				t.Errorf("terminal = %v, want %v", p.terminal, tc.terminal)
			}
		})
	}
	// The pod goes on while one app container restarts, whatever the others' policies.
	s := readyPod(corev1.RestartPolicyNever, nil, []*ctrState{
		ctr("a", ctrExited, exitCode(1)),
		ctr("b", ctrExited, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyOnFailure)),
	})
	if p := computePlan(s, t0); p.terminal || !slices.Equal(ctrNames(p.start), []string{"b"}) {
		t.Errorf("one of two restarts: terminal %v, start %v; want false, [b]", p.terminal, ctrNames(p.start))
	}
}

// An init container's own policy and rules decide whether it runs again after a failure (the
// kubelet's computeInitContainerActions with ContainerRestartRules); one that exited 0 is done
// whatever they say.
func TestPlanInitContainerRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   corev1.RestartPolicy
		init     *ctrState
		start    []string
		terminal bool
	}{
		{"own Never in a pod of Always ends the pod", corev1.RestartPolicyAlways, ctr("i", ctrExited, initCtr, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyNever)), nil, true},
		{"own OnFailure in a pod of Never restarts", corev1.RestartPolicyNever, ctr("i", ctrExited, initCtr, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyOnFailure)), []string{"i"}, false},
		{"rule matches under Never", corev1.RestartPolicyNever, ctr("i", ctrExited, initCtr, exitCode(42), ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpIn, 42))), []string{"i"}, false},
		{"rule does not match under Never", corev1.RestartPolicyNever, ctr("i", ctrExited, initCtr, exitCode(1), ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpIn, 42))), nil, true},
		{"success is done even with a matching rule", corev1.RestartPolicyNever, ctr("i", ctrExited, initCtr, exitCode(0), ownPolicy(corev1.ContainerRestartPolicyNever, restartOn(corev1.ContainerRestartRuleOnExitCodesOpIn, 0))), []string{"a"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := computePlan(readyPod(tc.policy, []*ctrState{tc.init}, []*ctrState{ctr("a", ctrNew)}), t0)
			if got := ctrNames(p.start); !slices.Equal(got, tc.start) {
				t.Errorf("start = %v, want %v", got, tc.start)
			}
			if p.terminal != tc.terminal {
				t.Errorf("terminal = %v, want %v", p.terminal, tc.terminal)
			}
		})
	}
}

func TestPlanBackoff(t *testing.T) {
	a := ctr("a", ctrExited, exitCode(1), restartIn(10*time.Second))
	b := ctr("b", ctrFailed, restartIn(20*time.Second))
	c := ctr("c", ctrExited, exitCode(1))
	p := computePlan(readyPod(corev1.RestartPolicyAlways, nil, []*ctrState{a, b, c}), t0)
	if got := ctrNames(p.start); !slices.Equal(got, []string{"c"}) {
		t.Errorf("start = %v, want [c]", got)
	}
	if !p.wake.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("wake = %v, want the first backoff's end", p.wake)
	}
	if p := computePlan(readyPod(corev1.RestartPolicyAlways, nil, []*ctrState{a, b}), t0.Add(10*time.Second)); !slices.Equal(ctrNames(p.start), []string{"a"}) {
		t.Errorf("at the backoff's end: start = %v, want [a]", ctrNames(p.start))
	}
}

// Init containers run one at a time, in order; app containers wait for all of them.
func TestPlanInitOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policy   corev1.RestartPolicy
		inits    []*ctrState
		start    []string
		terminal bool
	}{
		{"first init first", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrNew, initCtr), ctr("i2", ctrNew, initCtr)}, []string{"i1"}, false},
		{"wait for a running init", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrRunning, initCtr), ctr("i2", ctrNew, initCtr)}, nil, false},
		{"wait for a starting init", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrStarting, initCtr), ctr("i2", ctrNew, initCtr)}, nil, false},
		{"next after success", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrExited, initCtr, exitCode(0)), ctr("i2", ctrNew, initCtr)}, []string{"i2"}, false},
		{"apps after all inits", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrExited, initCtr, exitCode(0)), ctr("i2", ctrExited, initCtr, exitCode(0))}, []string{"a", "b"}, false},
		{"failed init restarts (Always)", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrExited, initCtr, exitCode(1)), ctr("i2", ctrNew, initCtr)}, []string{"i1"}, false},
		{"failed init restarts (OnFailure)", corev1.RestartPolicyOnFailure, []*ctrState{ctr("i1", ctrExited, initCtr, exitCode(1))}, []string{"i1"}, false},
		{"failed init ends the pod (Never)", corev1.RestartPolicyNever, []*ctrState{ctr("i1", ctrExited, initCtr, exitCode(1)), ctr("i2", ctrNew, initCtr)}, nil, true},
		{"unknown end of an init is a failure (Never)", corev1.RestartPolicyNever, []*ctrState{ctr("i1", ctrExited, initCtr, unknownExit)}, nil, true},
		{"failed init in backoff", corev1.RestartPolicyAlways, []*ctrState{ctr("i1", ctrExited, initCtr, exitCode(1), restartIn(time.Minute))}, nil, false},
		{"sidecar starts in its turn", corev1.RestartPolicyAlways, []*ctrState{ctr("s", ctrNew, sidecar), ctr("i2", ctrNew, initCtr)}, []string{"s"}, false},
		{"next init waits for the sidecar's start", corev1.RestartPolicyAlways, []*ctrState{ctr("s", ctrRunning, sidecar), ctr("i2", ctrNew, initCtr)}, nil, false},
		{"next init after the sidecar started", corev1.RestartPolicyAlways, []*ctrState{ctr("s", ctrRunning, sidecar, startedOK), ctr("i2", ctrNew, initCtr)}, []string{"i2"}, false},
		{"exited sidecar restarts even under Never", corev1.RestartPolicyNever, []*ctrState{ctr("s", ctrExited, sidecar, exitCode(0))}, []string{"s"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readyPod(tc.policy, tc.inits, []*ctrState{ctr("a", ctrNew), ctr("b", ctrNew)})
			p := computePlan(s, t0)
			if got := ctrNames(p.start); !slices.Equal(got, tc.start) {
				t.Errorf("start = %v, want %v", got, tc.start)
			}
			if p.terminal != tc.terminal {
				t.Errorf("terminal = %v, want %v", p.terminal, tc.terminal)
			}
		})
	}
}

// When the regular containers are done for good, the sidecars are stopped, as on a kubelet.
func TestPlanSidecarsStopAtTheEnd(t *testing.T) {
	s := readyPod(corev1.RestartPolicyNever,
		[]*ctrState{ctr("s1", ctrRunning, sidecar, startedOK), ctr("s2", ctrStopping, sidecar, startedOK)},
		[]*ctrState{ctr("a", ctrExited, exitCode(0))})
	p := computePlan(s, t0)
	if !p.terminal || !slices.Equal(ctrNames(p.stop), []string{"s1"}) {
		t.Errorf("terminal %v, stop %v; want true, [s1]", p.terminal, ctrNames(p.stop))
	}
	s.apps[0].phase = ctrRunning
	if p := computePlan(s, t0); p.terminal || len(p.stop) > 0 {
		t.Errorf("with a running app: terminal %v, stop %v", p.terminal, ctrNames(p.stop))
	}
}

// computePlan reads its input and changes nothing.
func TestPlanIsPure(t *testing.T) {
	a := ctr("a", ctrExited, exitCode(1), restartIn(time.Second))
	s := readyPod(corev1.RestartPolicyAlways, []*ctrState{ctr("i", ctrExited, initCtr, exitCode(0))}, []*ctrState{a})
	before := *a
	for range 3 {
		computePlan(s, t0.Add(2*time.Second))
	}
	if a.phase != before.phase || a.restartAt != before.restartAt || a.waitReason != before.waitReason || s.terminal {
		t.Errorf("computePlan changed its input: %+v", a)
	}
}

func TestNoteExit(t *testing.T) {
	b := Backoff{Initial: 10 * time.Second, Max: 40 * time.Second}
	for _, tc := range []struct {
		name    string
		policy  corev1.RestartPolicy
		code    uint32
		ran     time.Duration
		delay   time.Duration
		backoff bool
		at      time.Duration // restartAt after the exit
		next    time.Duration
	}{
		{"first crash restarts at once", corev1.RestartPolicyAlways, 1, time.Second, 0, false, 0, 10 * time.Second},
		{"second crash waits", corev1.RestartPolicyAlways, 1, time.Second, 10 * time.Second, true, 10 * time.Second, 20 * time.Second},
		{"capped", corev1.RestartPolicyAlways, 1, time.Second, 40 * time.Second, true, 40 * time.Second, 40 * time.Second},
		{"long run resets", corev1.RestartPolicyAlways, 1, 80 * time.Second, 40 * time.Second, false, 0, 10 * time.Second},
		{"success under OnFailure: no restart", corev1.RestartPolicyOnFailure, 0, time.Second, 10 * time.Second, false, -1, 10 * time.Second},
		// The container's own policy decides; the backoff is the same.
		{"own Always under Never waits", corev1.RestartPolicyNever, 1, time.Second, 10 * time.Second, true, 10 * time.Second, 20 * time.Second},
		{"own Always under Never, first crash", corev1.RestartPolicyNever, 0, time.Second, 0, false, 0, 10 * time.Second},
		// An exit that restarts all containers neither waits nor moves the backoff on.
		{"RestartAllContainers", corev1.RestartPolicyNever, 42, time.Second, 20 * time.Second, false, -1, 20 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ctr("a", ctrExited)
			if tc.policy == corev1.RestartPolicyNever {
				ownPolicy(corev1.ContainerRestartPolicyAlways, allOn(42))(c)
			}
			c.started = t0.Add(-tc.ran)
			c.exit = runtime.Exit{Code: tc.code, At: t0}
			c.delay = tc.delay
			if got := noteExit(c, b, tc.policy, t0); got != tc.backoff {
				t.Errorf("backoff = %v, want %v", got, tc.backoff)
			}
			if tc.at >= 0 && !c.restartAt.Equal(t0.Add(tc.at)) {
				t.Errorf("restartAt = %v, want exit + %v", c.restartAt.Sub(t0), tc.at)
			}
			if c.delay != tc.next {
				t.Errorf("next delay = %v, want %v", c.delay, tc.next)
			}
		})
	}
}

func TestCtrTransitions(t *testing.T) {
	all := []ctrPhase{ctrNew, ctrStarting, ctrRunning, ctrStopping, ctrExited, ctrFailed, ctrLost}
	allowed := map[[2]ctrPhase]bool{}
	for from, tos := range transitions {
		for _, to := range tos {
			allowed[[2]ctrPhase{from, to}] = true
		}
	}
	for _, from := range all {
		for _, to := range all {
			c := &ctrState{spec: &corev1.Container{Name: "a"}, phase: from}
			err := c.move(to)
			if ok := allowed[[2]ctrPhase{from, to}]; (err == nil) != ok {
				t.Errorf("%s -> %s: err %v, allowed %v", from, to, err, ok)
			}
			if err != nil && c.phase != from {
				t.Errorf("%s -> %s refused but the phase changed to %s", from, to, c.phase)
			}
		}
	}
	// Every phase is reachable from new, and a container can always start again after an end.
	for _, want := range [][2]ctrPhase{{ctrNew, ctrStarting}, {ctrStarting, ctrRunning}, {ctrStarting, ctrFailed}, {ctrRunning, ctrStopping}, {ctrRunning, ctrLost}, {ctrStopping, ctrExited}, {ctrExited, ctrStarting}, {ctrFailed, ctrStarting}, {ctrLost, ctrRunning}, {ctrExited, ctrNew}, {ctrFailed, ctrNew}} {
		if !allowed[want] {
			t.Errorf("%s -> %s must be allowed", want[0], want[1])
		}
	}
	if ctrPhase(99).String() == "" || ctrLost.String() != "lost" {
		t.Error("String")
	}
}

// A pod past spec.activeDeadlineSeconds, counted from its start time, fails and its live
// containers are stopped, as the kubelet's activeDeadlineHandler has it; before, the plan wakes
// at the deadline.
func TestPlanActiveDeadline(t *testing.T) {
	secs := int64(30)
	pod := func(inits, apps []*ctrState) *podState {
		s := readyPod(corev1.RestartPolicyAlways, inits, apps)
		s.pod.Spec.ActiveDeadlineSeconds = &secs
		s.startTime = t0.Add(-20 * time.Second)
		return s
	}
	s := pod(nil, []*ctrState{ctr("a", ctrRunning)})
	if p := computePlan(s, t0); p.deadline || p.terminal || !p.wake.Equal(t0.Add(10*time.Second)) {
		t.Errorf("before the deadline: %+v, want a wake at the deadline", p)
	}
	s = pod([]*ctrState{ctr("s", ctrRunning, sidecar, startedOK)},
		[]*ctrState{ctr("a", ctrRunning), ctr("b", ctrStopping), ctr("c", ctrExited, exitCode(1)), ctr("d", ctrLost), ctr("e", ctrStarting)})
	p := computePlan(s, t0.Add(10*time.Second))
	if !p.deadline || !p.terminal || len(p.start) > 0 || !slices.Equal(ctrNames(p.stop), []string{"s", "a", "d"}) {
		t.Errorf("at the deadline: deadline %v terminal %v start %v stop %v; want true, true, [], [s a d]", p.deadline, p.terminal, ctrNames(p.start), ctrNames(p.stop))
	}
	// Once failed for it, a container whose start was in flight is stopped when it runs.
	s.deadlineExceeded, s.terminal = true, true
	s.apps[0].phase, s.apps[3].phase, s.apps[4].phase = ctrStopping, ctrStopping, ctrRunning
	s.inits[0].phase = ctrStopping
	if p := computePlan(s, t0.Add(11*time.Second)); !slices.Equal(ctrNames(p.stop), []string{"e"}) || len(p.start) > 0 {
		t.Errorf("after: stop %v start %v, want [e] []", ctrNames(p.stop), ctrNames(p.start))
	}
	// No start time yet, no deadline; a pod already finished keeps its phase.
	s = pod(nil, []*ctrState{ctr("a", ctrRunning)})
	s.startTime = time.Time{}
	if p := computePlan(s, t0.Add(time.Hour)); p.deadline || !p.wake.IsZero() {
		t.Errorf("not started: %+v", p)
	}
	s = pod(nil, []*ctrState{ctr("a", ctrExited, exitCode(0))})
	s.terminal = true
	if p := computePlan(s, t0.Add(time.Hour)); p.deadline {
		t.Errorf("finished pod failed for its deadline: %+v", p)
	}
}

// allOn is a rule that restarts every container of the pod on the exit codes in codes.
func allOn(codes ...int32) corev1.ContainerRestartRule {
	return corev1.ContainerRestartRule{Action: corev1.ContainerRestartRuleActionRestartAllContainers,
		ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: corev1.ContainerRestartRuleOnExitCodesOpIn, Values: codes}}
}

// A container that exits by a rule with the action RestartAllContainers has every running
// container killed and nothing started; once none runs, the pod starts over, as the kubelet's
// computePodActions does with RestartAllContainersOnContainerExits. An exit the rule does not
// match, or a pod that ended, restarts nothing.
func TestPlanRestartAllContainers(t *testing.T) {
	never, always := corev1.ContainerRestartPolicyNever, corev1.ContainerRestartPolicyAlways
	for _, tc := range []struct {
		name        string
		inits, apps []*ctrState
		terminal    bool
		restartAll  bool
		reset       bool
		stop, start []string
	}{
		{name: "app exits 42: the others are killed",
			inits:      []*ctrState{ctr("i", ctrExited, initCtr, exitCode(0)), ctr("s", ctrRunning, sidecar, startedOK)},
			apps:       []*ctrState{ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42)), ctr("b", ctrRunning), ctr("c", ctrLost)},
			restartAll: true, stop: []string{"s", "b", "c"}},
		{name: "sidecar exits 42: the others are killed, it does not restart alone",
			inits:      []*ctrState{ctr("i", ctrExited, initCtr, exitCode(0)), ctr("s", ctrExited, initCtr, ownPolicy(always, allOn(42)), exitCode(42))},
			apps:       []*ctrState{ctr("a", ctrRunning)},
			restartAll: true, stop: []string{"a"}},
		{name: "init exits 42: the sidecar before it is killed, no app starts",
			inits:      []*ctrState{ctr("s", ctrRunning, sidecar, startedOK), ctr("i", ctrExited, initCtr, ownPolicy(never, allOn(42)), exitCode(42))},
			apps:       []*ctrState{ctr("a", ctrNew)},
			restartAll: true, stop: []string{"s"}},
		{name: "wait for the kills and the starts in flight",
			apps:       []*ctrState{ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42)), ctr("b", ctrStopping), ctr("c", ctrStarting)},
			restartAll: true},
		{name: "all down: the pod starts over",
			apps:       []*ctrState{ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42)), ctr("b", ctrExited, exitCode(137)), ctr("c", ctrNew)},
			restartAll: true, reset: true},
		{name: "another exit code: its own policy",
			apps:  []*ctrState{ctr("src", ctrExited, ownPolicy(always, allOn(42)), exitCode(1)), ctr("b", ctrRunning)},
			start: []string{"src"}},
		{name: "another exit code under Never: nothing",
			apps: []*ctrState{ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(1)), ctr("b", ctrRunning)}},
		{name: "the last app exits 42: not the end of the pod",
			apps:       []*ctrState{ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42)), ctr("b", ctrExited, exitCode(0))},
			restartAll: true, reset: true},
		{name: "a pod that ended restarts nothing", terminal: true,
			apps: []*ctrState{ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := readyPod(corev1.RestartPolicyNever, tc.inits, tc.apps)
			s.terminal = tc.terminal
			p := computePlan(s, t0)
			if p.restartAll != tc.restartAll || p.reset != tc.reset || p.terminal {
				t.Errorf("restartAll %v reset %v terminal %v, want %v %v false", p.restartAll, p.reset, p.terminal, tc.restartAll, tc.reset)
			}
			if got := ctrNames(p.stop); !slices.Equal(got, tc.stop) {
				t.Errorf("stop = %v, want %v", got, tc.stop)
			}
			if got := ctrNames(p.start); !slices.Equal(got, tc.start) {
				t.Errorf("start = %v, want %v", got, tc.start)
			}
			if tc.reset && !p.wake.Equal(t0) {
				t.Errorf("wake = %v, want now, to start the containers", p.wake)
			}
		})
	}
}

// The killed containers exit by their signal: while the pod restarts them all, the plan goes on
// without the exit that began it.
func TestPlanRestartAllGoesOn(t *testing.T) {
	never := corev1.ContainerRestartPolicyNever
	s := readyPod(corev1.RestartPolicyNever, nil, []*ctrState{ctr("a", ctrExited, ownPolicy(never, allOn(42)), exitCode(143)), ctr("b", ctrRunning)})
	s.restartingAll = true
	if p := computePlan(s, t0); !p.restartAll || !slices.Equal(ctrNames(p.stop), []string{"b"}) || p.terminal {
		t.Errorf("restartAll %v stop %v terminal %v, want true [b] false", p.restartAll, ctrNames(p.stop), p.terminal)
	}
}

// After the reset the pod runs from its first init container again, without a backoff; the
// restart counts and last states are the kubelet's for containers it removed.
func TestResetAll(t *testing.T) {
	never, always := corev1.ContainerRestartPolicyNever, corev1.ContainerRestartPolicyAlways
	i := ctr("i", ctrExited, initCtr, exitCode(0))
	sc := ctr("s", ctrExited, sidecar, exitCode(137))
	src := ctr("src", ctrExited, ownPolicy(never, allOn(42)), exitCode(42))
	back := ctr("back", ctrExited, ownPolicy(always), exitCode(1), restartIn(time.Minute))
	back.waitReason = "CrashLoopBackOff"
	fresh := ctr("fresh", ctrNew)
	for _, c := range []*ctrState{i, sc, src, back} {
		c.attempt = 2
	}
	s := readyPod(corev1.RestartPolicyNever, []*ctrState{i, sc}, []*ctrState{src, back, fresh})
	s.restartingAll = true
	resetAll(s)
	if s.restartingAll || restartingAll(s) {
		t.Error("still restarting all after the reset")
	}
	for _, c := range s.all() {
		if c.phase != ctrNew || !c.restartAt.IsZero() {
			t.Errorf("%s: phase %s restartAt %v, want new and no backoff", c.spec.Name, c.phase, c.restartAt)
		}
	}
	for _, c := range []*ctrState{i, sc, src} {
		if c.restartCount() != 3 || c.last == nil || c.last.Reason != ReasonRestartingAllContainers || c.last.ExitCode != 137 || c.waitReason != ReasonRestartingAllContainers {
			t.Errorf("%s: restartCount %d last %+v waiting %q; want 3, RestartingAllContainers 137", c.spec.Name, c.restartCount(), c.last, c.waitReason)
		}
	}
	if back.restartCount() != 2 || back.last == nil || back.last.ExitCode != 1 || back.waitReason != "" {
		t.Errorf("in backoff: restartCount %d last %+v waiting %q; want 2, its exit 1", back.restartCount(), back.last, back.waitReason)
	}
	if fresh.restartCount() != 0 || fresh.last != nil || fresh.waitReason != "" {
		t.Errorf("never started: restartCount %d last %+v waiting %q", fresh.restartCount(), fresh.last, fresh.waitReason)
	}
	if p := computePlan(s, t0); !slices.Equal(ctrNames(p.start), []string{"i"}) || p.restartAll {
		t.Errorf("after the reset: start %v restartAll %v, want [i] false", ctrNames(p.start), p.restartAll)
	}
}
