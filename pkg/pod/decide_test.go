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
		if got := Phase(tc.policy, tc.init, tc.cs); got != tc.want {
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
