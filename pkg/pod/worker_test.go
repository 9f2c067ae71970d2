package pod

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func busybox(name string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox"}
}

func TestWorkerRunsAndRemoves(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"), busybox("b"))})
	p := waitFor(t, m, "web running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if !running(p, "a") || !running(p, "b") || p.Status.PodIP != "192.0.2.1" {
		t.Fatalf("status: %s", describePods(m))
	}
	m.Update(nil)
	waitGone(t, m, "web")
	if n, leases := rt.count(); n != 0 || leases != 0 {
		t.Errorf("left behind: %d containers, %d leases", n, leases)
	}
}

// A pod removed while its image pulls is gone at once: the pull is abandoned, not awaited.
func TestWorkerRemovedWhilePulling(t *testing.T) {
	rt := newFakeRuntime()
	release := rt.hold("app:1")
	defer release()
	m := testManager(t, rt)
	app := corev1.Container{Name: "app", Image: "app:1"}
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", app)})
	waitFor(t, m, "pulling", func(p *corev1.Pod) bool { return strings.Contains(waitingMessage(p, "app"), "Pulling image") })
	m.Update(nil)
	waitGone(t, m, "web")
	if inFlight, cancelled := rt.pulls("app:1"); cancelled != 1 || inFlight != 0 {
		t.Errorf("pull: %d in flight, %d cancelled; want 0 and 1", inFlight, cancelled)
	}
	if n, leases := rt.count(); n != 0 || leases != 0 {
		t.Errorf("left behind: %d containers, %d leases", n, leases)
	}
}

// A new version of a pod replaces one whose image is still pulling, without waiting for it.
func TestWorkerReplacedWhilePulling(t *testing.T) {
	rt := newFakeRuntime()
	release := rt.hold("app:1")
	defer release()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-1", corev1.Container{Name: "app", Image: "app:1"})})
	waitFor(t, m, "pulling", func(p *corev1.Pod) bool { return strings.Contains(waitingMessage(p, "app"), "Pulling image") })
	m.Update([]*corev1.Pod{hostPod("web", "uid-2", busybox("app"))})
	waitFor(t, m, "the new version running", func(p *corev1.Pod) bool { return p.UID == "uid-2" && running(p, "app") })
	if _, cancelled := rt.pulls("app:1"); cancelled != 1 {
		t.Errorf("the old version's pull was not abandoned")
	}
}

// A liveness failure is acted on while another container of the pod is still pulling. In a
// synctest bubble: the probe's period passes on the bubble's clock.
func TestWorkerLivenessWhilePulling(t *testing.T) {
	synctest.Test(t, testWorkerLivenessWhilePulling)
}

func testWorkerLivenessWhilePulling(t *testing.T) {
	rt := newFakeRuntime()
	release := rt.hold("slow:1")
	defer release()
	var sick atomic.Bool
	rt.execHook = func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
		if sick.Load() && strings.Contains(id, "-a-") {
			return 1, []byte("sick"), nil
		}
		return 0, nil, nil
	}
	m := testManager(t, rt)
	a := busybox("a")
	a.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
		PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1, SuccessThreshold: 1}
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", a, corev1.Container{Name: "b", Image: "slow:1"})})
	waitFor(t, m, "a running, b pulling", func(p *corev1.Pod) bool {
		return running(p, "a") && strings.Contains(waitingMessage(p, "b"), "Pulling image")
	})
	sick.Store(true)
	p := waitFor(t, m, "a restarted", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 2 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	if msg := waitingMessage(p, "b"); !strings.Contains(msg, "Pulling image") {
		t.Errorf("b no longer pulling when a was restarted: %q", msg)
	}
	sick.Store(false)
	release()
	waitFor(t, m, "b running", func(p *corev1.Pod) bool { return running(p, "b") && running(p, "a") })
}

// A postStart hook that does not end is cut short when the pod is removed.
func TestWorkerPostStartCutShort(t *testing.T) {
	rt := newFakeRuntime()
	hookCut := make(chan struct{})
	rt.execHook = func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
		<-ctx.Done()
		close(hookCut)
		return -1, nil, ctx.Err()
	}
	m := testManager(t, rt)
	a := busybox("a")
	a.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "600"}}}}
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", a)})
	p := waitFor(t, m, "a running", func(p *corev1.Pod) bool { return running(p, "a") })
	if cs := p.Status.ContainerStatuses[0]; *cs.Started {
		t.Errorf("started before its postStart hook ended")
	}
	m.Update(nil)
	waitGone(t, m, "web")
	select {
	case <-hookCut:
	default:
		t.Error("the hook was not cut short")
	}
}

// A container that keeps crashing is restarted at once the first time, then waits in
// CrashLoopBackOff for the backoff, as on a kubelet. In a synctest bubble: the backoff's
// second passes on the bubble's clock.
func TestWorkerCrashLoop(t *testing.T) {
	synctest.Test(t, testWorkerCrashLoop)
}

func testWorkerCrashLoop(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"))})
	waitFor(t, m, "running", func(p *corev1.Pod) bool { return running(p, "a") })
	crash := func(attempt int) {
		t.Helper()
		ids := rt.running("-a-")
		if len(ids) != 1 {
			t.Fatalf("attempt %d: running %v", attempt, ids)
		}
		rt.exit(ids[0], 1)
	}
	crash(0)
	waitFor(t, m, "restarted at once", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 1 && cs.State.Running != nil && cs.LastTerminationState.Terminated != nil
	})
	crash(1)
	p := waitFor(t, m, "CrashLoopBackOff", func(p *corev1.Pod) bool {
		return strings.HasPrefix(waitingMessage(p, "a"), "CrashLoopBackOff: back-off 1s")
	})
	if cs := p.Status.ContainerStatuses[0]; cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 1 {
		t.Errorf("last state: %+v", cs.LastTerminationState)
	}
	p = waitFor(t, m, "restarted after the backoff", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount == 2 && cs.State.Running != nil
	})
	// Only the current and the previous attempt's logs are kept.
	n := m.dirs.pod(p.Namespace, p.Name, string(p.UID))
	for attempt, want := range []bool{false, true, true} {
		if _, err := os.Stat(n.logPath("a", attempt)); (err == nil) != want {
			t.Errorf("log of attempt %d: kept %v, want %v", attempt, err == nil, want)
		}
	}
}

// The daemon's end leaves the pods running and waits for the work in flight.
func TestWorkerShutdownLeavesPods(t *testing.T) {
	rt := newFakeRuntime()
	release := rt.hold("slow:1")
	defer release()
	dir := t.TempDir()
	m := NewManager(Config{Runtime: rt, Network: fakeNetwork{}, StateDir: dir + "/state", LogDir: dir + "/logs", PauseImage: "pause", HostIP: "192.0.2.1"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	m.Update([]*corev1.Pod{hostPod("web", "uid-web", busybox("a"), corev1.Container{Name: "b", Image: "slow:1"})})
	waitFor(t, m, "a running", func(p *corev1.Pod) bool { return running(p, "a") })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if ids := rt.running("-a-"); len(ids) != 1 {
		t.Errorf("a stopped with the daemon: %v", ids)
	}
	if inFlight, _ := rt.pulls("slow:1"); inFlight != 0 {
		t.Errorf("a pull still runs after Run returned")
	}
}

// A pod past spec.activeDeadlineSeconds is killed and fails with DeadlineExceeded, and its
// containers are not restarted, as on a kubelet.
func TestWorkerActiveDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := newFakeRuntime()
		m := testManager(t, rt)
		p := hostPod("web", "uid-web", busybox("a"))
		secs := int64(5)
		p.Spec.ActiveDeadlineSeconds = &secs
		m.Update([]*corev1.Pod{p})
		waitFor(t, m, "running", func(p *corev1.Pod) bool { return running(p, "a") })
		got := waitFor(t, m, "failed for its deadline", func(p *corev1.Pod) bool {
			return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "DeadlineExceeded"
		})
		if d := got.Status.StartTime; d == nil || time.Since(d.Time) < 5*time.Second {
			t.Errorf("failed %s after its start, want 5s", time.Since(d.Time))
		}
		got = waitFor(t, m, "container killed", func(p *corev1.Pod) bool {
			return p.Status.ContainerStatuses[0].State.Terminated != nil
		})
		time.Sleep(time.Minute) // on the bubble's clock
		got = m.store.get("default/web")
		if cs := got.Status.ContainerStatuses[0]; cs.RestartCount != 0 || len(rt.running("-a-")) != 0 || got.Status.Phase != corev1.PodFailed {
			t.Errorf("after a minute: phase %s, restarts %d, running %v", got.Status.Phase, cs.RestartCount, rt.running("-a-"))
		}
		var found bool
		for _, e := range m.cfg.Events.List("default", "web") {
			found = found || e.Reason == "DeadlineExceeded" && e.Message == "Pod was active on the node longer than the specified deadline"
		}
		if !found {
			t.Error("no DeadlineExceeded event")
		}
	})
}
