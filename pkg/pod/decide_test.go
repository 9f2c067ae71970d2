package pod

import (
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
)

func TestBackoffKubeletNumbers(t *testing.T) {
	b := DefaultBackoff
	if b.Initial != 10*time.Second || b.Max != 5*time.Minute {
		t.Fatalf("default backoff = %+v, want the kubelet's 10s / 5m", b)
	}
	// A container that crashes at once, again and again: the gaps between exit and restart.
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	want := []time.Duration{0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second,
		160 * time.Second, 300 * time.Second, 300 * time.Second}
	var delay time.Duration
	for i, w := range want {
		at, next := b.NextRestart(t0, time.Second, delay)
		if got := at.Sub(t0); got != w {
			t.Errorf("crash %d: restart after %s, want %s", i+1, got, w)
		}
		delay = next
	}
}

func TestBackoffResetsAfterLongRun(t *testing.T) {
	b := DefaultBackoff
	t0 := time.Now()
	for _, tc := range []struct {
		ran  time.Duration
		want time.Duration
	}{
		{9 * time.Minute, 160 * time.Second},
		{10 * time.Minute, 0},
		{time.Hour, 0},
	} {
		at, next := b.NextRestart(t0, tc.ran, 160*time.Second)
		if got := at.Sub(t0); got != tc.want {
			t.Errorf("ran %s: wait %s, want %s", tc.ran, got, tc.want)
		}
		if tc.want == 0 && next != b.Initial {
			t.Errorf("ran %s: next delay %s, want %s", tc.ran, next, b.Initial)
		}
	}
}

func TestBackoffCustom(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 4 * time.Second}
	var delay time.Duration
	var got []time.Duration
	t0 := time.Now()
	for range 5 {
		var at time.Time
		at, delay = b.NextRestart(t0, 0, delay)
		got = append(got, at.Sub(t0))
	}
	want := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("gaps = %v, want %v", got, want)
		}
	}
}

func TestShouldRestart(t *testing.T) {
	for _, tc := range []struct {
		policy corev1.RestartPolicy
		code   int32
		want   bool
	}{
		{corev1.RestartPolicyAlways, 0, true},
		{corev1.RestartPolicyAlways, 1, true},
		{corev1.RestartPolicyOnFailure, 0, false},
		{corev1.RestartPolicyOnFailure, 137, true},
		{corev1.RestartPolicyNever, 0, false},
		{corev1.RestartPolicyNever, 1, false},
	} {
		if got := ShouldRestart(tc.policy, tc.code); got != tc.want {
			t.Errorf("ShouldRestart(%s, %d) = %v, want %v", tc.policy, tc.code, got, tc.want)
		}
	}
}

func TestPhase(t *testing.T) {
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	waiting := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	backoff := corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
	}
	ok := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}
	failed := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}
	for _, tc := range []struct {
		name   string
		policy corev1.RestartPolicy
		init   bool
		cs     []corev1.ContainerStatus
		want   corev1.PodPhase
	}{
		{"not initialized", corev1.RestartPolicyAlways, false, []corev1.ContainerStatus{running}, corev1.PodPending},
		{"creating", corev1.RestartPolicyAlways, true, []corev1.ContainerStatus{waiting, running}, corev1.PodPending},
		{"all running", corev1.RestartPolicyAlways, true, []corev1.ContainerStatus{running, running}, corev1.PodRunning},
		{"crash loop counts as running", corev1.RestartPolicyAlways, true, []corev1.ContainerStatus{backoff}, corev1.PodRunning},
		{"one done one running", corev1.RestartPolicyNever, true, []corev1.ContainerStatus{ok, running}, corev1.PodRunning},
		{"never all ok", corev1.RestartPolicyNever, true, []corev1.ContainerStatus{ok, ok}, corev1.PodSucceeded},
		{"never one failed", corev1.RestartPolicyNever, true, []corev1.ContainerStatus{ok, failed}, corev1.PodFailed},
		{"onfailure ok", corev1.RestartPolicyOnFailure, true, []corev1.ContainerStatus{ok}, corev1.PodSucceeded},
		{"onfailure failed restarts", corev1.RestartPolicyOnFailure, true, []corev1.ContainerStatus{failed}, corev1.PodRunning},
		{"always stopped restarts", corev1.RestartPolicyAlways, true, []corev1.ContainerStatus{ok}, corev1.PodRunning},
	} {
		if got := Phase(tc.policy, nil, tc.cs, tc.init, false); got != tc.want {
			t.Errorf("%s: Phase = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// The kubelet's ContainerShouldRestart: the container's rules in order, then its own policy,
// then the pod's.
func TestContainerShouldRestart(t *testing.T) {
	policy := func(v corev1.ContainerRestartPolicy) *corev1.ContainerRestartPolicy { return &v }
	rule := func(op corev1.ContainerRestartRuleOnExitCodesOperator, codes ...int32) corev1.ContainerRestartRule {
		return corev1.ContainerRestartRule{Action: corev1.ContainerRestartRuleActionRestart,
			ExitCodes: &corev1.ContainerRestartRuleOnExitCodes{Operator: op, Values: codes}}
	}
	in42 := rule(corev1.ContainerRestartRuleOnExitCodesOpIn, 42)
	for _, tc := range []struct {
		name string
		pod  corev1.RestartPolicy
		c    *corev1.Container
		code int32
		want bool
	}{
		{"no container: the pod's Never", corev1.RestartPolicyNever, nil, 1, false},
		{"no own policy: the pod's OnFailure", corev1.RestartPolicyOnFailure, &corev1.Container{}, 1, true},
		{"rules without a policy are not looked at", corev1.RestartPolicyNever, &corev1.Container{RestartPolicyRules: []corev1.ContainerRestartRule{in42}}, 42, false},
		{"own Never over the pod's Always", corev1.RestartPolicyAlways, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever)}, 1, false},
		{"own Always over the pod's Never", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyAlways)}, 0, true},
		{"own OnFailure, success", corev1.RestartPolicyAlways, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyOnFailure)}, 0, false},
		{"own OnFailure, failure", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyOnFailure)}, 2, true},
		{"rule In matches", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever), RestartPolicyRules: []corev1.ContainerRestartRule{in42}}, 42, true},
		{"rule In does not match", corev1.RestartPolicyAlways, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever), RestartPolicyRules: []corev1.ContainerRestartRule{in42}}, 1, false},
		{"rule NotIn matches", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever),
			RestartPolicyRules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleOnExitCodesOpNotIn, 0, 1)}}, 2, true},
		{"rule NotIn does not match", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever),
			RestartPolicyRules: []corev1.ContainerRestartRule{rule(corev1.ContainerRestartRuleOnExitCodesOpNotIn, 0, 1)}}, 1, false},
		{"no rule matches: own OnFailure", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyOnFailure), RestartPolicyRules: []corev1.ContainerRestartRule{in42}}, 3, true},
		{"a later rule matches", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever),
			RestartPolicyRules: []corev1.ContainerRestartRule{in42, rule(corev1.ContainerRestartRuleOnExitCodesOpIn, 7)}}, 7, true},
		{"RestartAllContainers runs it again", corev1.RestartPolicyNever, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever),
			RestartPolicyRules: []corev1.ContainerRestartRule{{Action: corev1.ContainerRestartRuleActionRestartAllContainers, ExitCodes: in42.ExitCodes}}}, 42, true},
		{"RestartAllContainers does not match: own Never", corev1.RestartPolicyAlways, &corev1.Container{RestartPolicy: policy(corev1.ContainerRestartPolicyNever),
			RestartPolicyRules: []corev1.ContainerRestartRule{{Action: corev1.ContainerRestartRuleActionRestartAllContainers, ExitCodes: in42.ExitCodes}}}, 1, false},
	} {
		if got := ContainerShouldRestart(tc.c, tc.pod, tc.code); got != tc.want {
			t.Errorf("%s: ContainerShouldRestart(code %d) = %v, want %v", tc.name, tc.code, got, tc.want)
		}
	}
}

// The phase with containers of their own restart policy, as the kubelet's getPhase computes it
// with ContainerRestartRules.
func TestPhaseContainerPolicies(t *testing.T) {
	never, always := corev1.ContainerRestartPolicyNever, corev1.ContainerRestartPolicyAlways
	own := func(p *corev1.ContainerRestartPolicy) *corev1.Container { return &corev1.Container{RestartPolicy: p} }
	exited := func(code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
	}
	backoff := corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}},
	}
	removed := corev1.ContainerStatus{
		State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonRestartingAllContainers}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: ReasonRestartingAllContainers}},
	}
	for _, tc := range []struct {
		name     string
		policy   corev1.RestartPolicy
		cs       []*corev1.Container
		st       []corev1.ContainerStatus
		terminal bool
		want     corev1.PodPhase
	}{
		{"own Never failed in a pod of Always", corev1.RestartPolicyAlways, []*corev1.Container{own(&never)}, []corev1.ContainerStatus{exited(1)}, false, corev1.PodFailed},
		{"own Never succeeded in a pod of Always", corev1.RestartPolicyAlways, []*corev1.Container{own(&never)}, []corev1.ContainerStatus{exited(0)}, false, corev1.PodSucceeded},
		{"own Always restarting in a pod of Never", corev1.RestartPolicyNever, []*corev1.Container{own(&always)}, []corev1.ContainerStatus{backoff}, false, corev1.PodRunning},
		{"one restarts, one done for good", corev1.RestartPolicyNever, []*corev1.Container{own(&always), nil}, []corev1.ContainerStatus{backoff, exited(2)}, false, corev1.PodRunning},
		{"one of the pod's Always, one done for good", corev1.RestartPolicyAlways, []*corev1.Container{nil, own(&never)}, []corev1.ContainerStatus{exited(0), exited(2)}, false, corev1.PodRunning},
		{"terminal: by the exit codes", corev1.RestartPolicyNever, []*corev1.Container{own(&always)}, []corev1.ContainerStatus{exited(0)}, true, corev1.PodSucceeded},
		{"removed by a restart of all containers: restarting", corev1.RestartPolicyNever, []*corev1.Container{own(&never)}, []corev1.ContainerStatus{removed}, false, corev1.PodRunning},
	} {
		if got := Phase(tc.policy, tc.cs, tc.st, true, tc.terminal); got != tc.want {
			t.Errorf("%s: Phase = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCommand(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	for _, tc := range []struct {
		name string
		c    corev1.Container
		want []string
	}{
		{"image only", corev1.Container{}, []string{"/entry", "default"}},
		{"args replace cmd", corev1.Container{Args: []string{"a"}}, []string{"/entry", "a"}},
		{"command replaces both", corev1.Container{Command: []string{"/bin/x"}}, []string{"/bin/x"}},
		{"command and args", corev1.Container{Command: []string{"/bin/x"}, Args: []string{"y"}}, []string{"/bin/x", "y"}},
	} {
		got := Command(&tc.c, img)
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			}
		}
	}
}

func TestEnv(t *testing.T) {
	p := &corev1.Pod{}
	p.Name, p.Namespace, p.UID = "web", "prod", "u1"
	p.Labels = map[string]string{"app": "x"}
	c := &corev1.Container{Name: "c", Env: []corev1.EnvVar{
		{Name: "PATH", Value: "/custom"},
		{Name: "NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "GREETING", Value: "hi $(NAME) in $(IP) $(HOME)"},
	}}
	img := ocispec.ImageConfig{Env: []string{"PATH=/usr/bin", "HOME=/root"}}
	env, err := Env(c, img, podFields{pod: p, podIPs: []string{"10.0.0.5"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/custom", "HOME=/root", "NAME=web", "APP=x", "IP=10.0.0.5", "GREETING=hi web in 10.0.0.5 $(HOME)"}
	if len(env) != len(want) {
		t.Fatalf("env = %q, want %q", env, want)
	}
	for i := range want {
		if env[i] != want[i] {
			t.Fatalf("env = %q, want %q", env, want)
		}
	}
}
