package pod

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Containers get HOSTNAME, the pod's hostname (the node's with hostNetwork), before their own
// environment, as under containerd's CRI (issue 23, deviation 7).
func TestWorkerHostnameEnv(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	own := busybox("own")
	own.Env = []corev1.EnvVar{{Name: "HOSTNAME", Value: "mine"}}
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"), own)})
	waitFor(t, m, "running", func(p *corev1.Pod) bool { return running(p, "a") && running(p, "own") })
	for name, want := range map[string]string{"a": "HOSTNAME=node1", "own": "HOSTNAME=mine"} {
		cfg, _ := rt.config(m.dirs.pod("default", "web", "uid-web").containerID(name, 0))
		var got []string
		for _, kv := range cfg.Env {
			if strings.HasPrefix(kv, "HOSTNAME=") {
				got = append(got, kv)
			}
		}
		if !slices.Equal(got, []string{want}) {
			t.Errorf("%s: HOSTNAME entries %q, want [%s]", name, got, want)
		}
	}
}

// A container that cannot be made is tried again with the doubling crash backoff, not every
// 10 s (issue 23, deviation 10).
func TestWorkerStartFailureBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		rt.mu.Lock()
		rt.createErr = errors.New("no space left on device")
		rt.mu.Unlock()
		m := testManager(t, rt)
		m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"))})
		waitFor(t, m, "a failure", func(p *corev1.Pod) bool {
			return strings.HasPrefix(waitingMessage(p, "a"), "CreateContainerError")
		})
		time.Sleep(12 * time.Second) // on the bubble's clock
		rt.mu.Lock()
		var gaps []time.Duration
		for i := 1; i < len(rt.failedAt) && len(gaps) < 3; i++ {
			gaps = append(gaps, rt.failedAt[i].Sub(rt.failedAt[i-1]).Round(time.Second))
		}
		rt.mu.Unlock()
		// testManager's backoff: 1 s doubling to 4 s.
		if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(gaps, want) {
			t.Errorf("gaps between failures %v, want %v", gaps, want)
		}
	})
}

// "Container image ... already present on machine", as the kubelet records it.
func TestWorkerPulledEventWhenPresent(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"))})
	waitFor(t, m, "running", func(p *corev1.Pod) bool { return running(p, "a") })
	var found bool
	for _, e := range m.cfg.Events.List("default", "web") {
		if e.Reason == "Pulled" && e.Message == `Container image "busybox" already present on machine` && e.FieldPath == "spec.containers{a}" {
			found = true
		}
	}
	if !found {
		t.Errorf("no Pulled event: %+v", m.cfg.Events.List("default", "web"))
	}
}

// The kubelet never gives a container less than 2 s between its stop signal and SIGKILL
// (issue 23, deviation 11).
func TestStopGrace(t *testing.T) {
	for _, c := range []struct {
		seconds int64
		want    time.Duration
	}{{0, 2 * time.Second}, {1, 2 * time.Second}, {2, 2 * time.Second}, {30, 30 * time.Second}} {
		if got := stopGrace(c.seconds); got != c.want {
			t.Errorf("stopGrace(%d) = %s, want %s", c.seconds, got, c.want)
		}
	}
}

// A container whose process could not be started is reported as containerd's CRI records it and
// the kubelet shows it: its last state is terminated, exit code 128, reason StartError, the
// error as its message, started at 0 in Unix time; and the attempt counts as one (issue 23,
// deviation 10).
func TestWorkerStartErrorLastState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		rt.mu.Lock()
		rt.startErr = errors.New(`exec: "nope": executable file not found in $PATH`)
		rt.mu.Unlock()
		m := testManager(t, rt)
		m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"))})
		p := waitFor(t, m, "a failed start", func(p *corev1.Pod) bool {
			return p.Status.ContainerStatuses[0].LastTerminationState.Terminated != nil
		})
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		if last.ExitCode != 128 || last.Reason != "StartError" || last.Message != `exec: "nope": executable file not found in $PATH` ||
			!last.StartedAt.Time.Equal(time.Unix(0, 0)) || last.FinishedAt.IsZero() || last.ContainerID == "" {
			t.Errorf("last state %+v", last)
		}
		if w := cs.State.Waiting; w == nil || w.Reason != "RunContainerError" || cs.RestartCount != 0 || cs.ContainerID != last.ContainerID {
			t.Errorf("state %+v, restarts %d, ID %s", cs.State, cs.RestartCount, cs.ContainerID)
		}
		waitFor(t, m, "a second failed start", func(p *corev1.Pod) bool {
			return p.Status.ContainerStatuses[0].RestartCount == 1
		})
		rt.mu.Lock()
		rt.startErr = nil
		rt.mu.Unlock()
		p = waitFor(t, m, "running", func(p *corev1.Pod) bool { return running(p, "a") })
		if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 2 || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.Reason != "StartError" {
			t.Errorf("running: restarts %d, last state %+v", cs.RestartCount, cs.LastTerminationState)
		}
	})
}
