package pod

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/events"
)

func withUID(p *corev1.Pod, uid string) bool { return string(p.UID) == uid }

// An update whose image must be pulled leaves the running version alone until the image is
// present; then the pod is replaced.
func TestUpdatePullsFirst(t *testing.T) {
	rt := newFakeRuntime()
	release := rt.hold("app:2")
	defer release()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-1", busybox("app"), busybox("side"))})
	waitFor(t, m, "v1 running", func(p *corev1.Pod) bool { return withUID(p, "uid-1") && running(p, "app") && running(p, "side") })
	before := rt.running("uid-1-")
	slices.Sort(before)

	m.Update([]*corev1.Pod{hostPod("web", "uid-2", corev1.Container{Name: "app", Image: "app:2"}, busybox("side"))})
	p := waitFor(t, m, "update pending", func(p *corev1.Pod) bool {
		return strings.HasPrefix(p.Status.Message, "update pending: pulling image \"app:2\"")
	})
	if !withUID(p, "uid-1") || p.Annotations[AnnotationRevisionPending] != "uid-2" || p.Annotations[AnnotationRevision] != "uid-1" {
		t.Errorf("while pulling, published %s with annotations %v", p.UID, p.Annotations)
	}
	if ro, err := m.Rollout("default", "web"); err != nil || ro.Pending != "uid-2" || ro.Current != "uid-1" || ro.Desired != "uid-2" {
		t.Errorf("rollout while pulling: %+v %v", ro, err)
	}
	// Still the same containers, running, a while into the pull.
	time.Sleep(100 * time.Millisecond)
	if now := rt.running("uid-1-"); !slices.Equal(slices.Sorted(slices.Values(now)), before) || len(now) != 3 {
		t.Errorf("running during the pull: %v, before %v", now, before)
	}
	release()
	p = waitFor(t, m, "v2 running", func(p *corev1.Pod) bool { return withUID(p, "uid-2") && running(p, "app") && running(p, "side") })
	if p.Status.Message != "" || p.Annotations[AnnotationRevisionPending] != "" {
		t.Errorf("after the update: message %q, annotations %v", p.Status.Message, p.Annotations)
	}
	if n := len(rt.running("uid-1-")); n != 0 {
		t.Errorf("%d containers of v1 still run", n)
	}
	if inFlight, _ := rt.pulls("app:2"); inFlight != 0 {
		t.Errorf("%d pulls of app:2 in flight", inFlight)
	}
}

// A second edit during the pull abandons the first one's pull; removing the file removes the
// pod at once, abandoning the second's.
func TestUpdateSupersededThenRemoved(t *testing.T) {
	rt := newFakeRuntime()
	r2, r3 := rt.hold("app:2"), rt.hold("app:3")
	defer r2()
	defer r3()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-1", busybox("app"))})
	waitFor(t, m, "v1 running", func(p *corev1.Pod) bool { return running(p, "app") })
	m.Update([]*corev1.Pod{hostPod("web", "uid-2", corev1.Container{Name: "app", Image: "app:2"})})
	waitFor(t, m, "v2 pending", func(p *corev1.Pod) bool { return p.Annotations[AnnotationRevisionPending] == "uid-2" })
	m.Update([]*corev1.Pod{hostPod("web", "uid-3", corev1.Container{Name: "app", Image: "app:3"})})
	p := waitFor(t, m, "v3 pending", func(p *corev1.Pod) bool {
		return p.Annotations[AnnotationRevisionPending] == "uid-3" && strings.Contains(p.Status.Message, `"app:3"`)
	})
	if !withUID(p, "uid-1") || !running(p, "app") {
		t.Errorf("v1 not running while v3 pulls: %s", describePods(m))
	}
	if inFlight, cancelled := rt.pulls("app:2"); inFlight != 0 || cancelled != 1 {
		t.Errorf("app:2's pull: %d in flight, %d cancelled; want 0 and 1", inFlight, cancelled)
	}
	m.Update(nil)
	waitGone(t, m, "web")
	if n, leases := rt.count(); n != 0 || leases != 0 {
		t.Errorf("left behind: %d containers, %d leases", n, leases)
	}
	if _, cancelled := rt.pulls("app:3"); cancelled != 1 {
		t.Errorf("app:3's pull not abandoned")
	}
	if _, err := m.Rollout("default", "web"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("rollout of a removed pod: %v", err)
	}
}

// An update whose image cannot be pulled keeps the running version, says why, tries again
// with the image backoff, and is replaced by a fixed file.
func TestUpdatePullFails(t *testing.T) {
	rt := newFakeRuntime()
	rt.pullErrs["app:typo"] = errors.New("manifest unknown")
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-1", busybox("app"))})
	waitFor(t, m, "v1 running", func(p *corev1.Pod) bool { return running(p, "app") })
	m.Update([]*corev1.Pod{hostPod("web", "uid-2", corev1.Container{Name: "app", Image: "app:typo"})})
	p := waitFor(t, m, "the pull error", func(p *corev1.Pod) bool {
		return strings.HasPrefix(p.Status.Message, "update pending: ErrImagePull: ") && strings.Contains(p.Status.Message, "manifest unknown")
	})
	if !withUID(p, "uid-1") || !running(p, "app") {
		t.Errorf("v1 not running after the failed pull: %s", describePods(m))
	}
	// The test manager's backoff starts at 1 s: the retry comes, and fails the same way.
	waitFor(t, m, "the retry", func(p *corev1.Pod) bool {
		return strings.HasPrefix(p.Status.Message, "update pending: ImagePullBackOff: ")
	})
	m.Update([]*corev1.Pod{hostPod("web", "uid-3", busybox("app"))})
	waitFor(t, m, "the fix running", func(p *corev1.Pod) bool { return withUID(p, "uid-3") && running(p, "app") && p.Status.Message == "" })
}

// A version that serves nothing is replaced at once, as on a kubelet: there is nothing to keep.
func TestUpdateOfBrokenVersionIsImmediate(t *testing.T) {
	rt := newFakeRuntime()
	release := rt.hold("app:2")
	defer release()
	rt.imageErrs["broken"] = errors.New("exec: no such file")
	rt.images["broken"] = rt.images["busybox"]
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{hostPod("web", "uid-1", corev1.Container{Name: "app", Image: "broken"})})
	waitFor(t, m, "v1 failing", func(p *corev1.Pod) bool { return strings.Contains(waitingMessage(p, "app"), "no such file") })
	m.Update([]*corev1.Pod{hostPod("web", "uid-2", corev1.Container{Name: "app", Image: "app:2"})})
	waitFor(t, m, "v2 pulling as a start", func(p *corev1.Pod) bool {
		return withUID(p, "uid-2") && strings.Contains(waitingMessage(p, "app"), "Pulling image")
	})
}

func rollbackPod(name, uid string, ctrs ...corev1.Container) *corev1.Pod {
	p := hostPod(name, uid, ctrs...)
	p.Annotations = map[string]string{AnnotationRollback: "true", AnnotationProgressDeadline: "2s"}
	return p
}

// A version Ready for a moment before it crashes does not become the good one: it must stay
// Ready for stableFor (here the 2 s deadline), so the crash is rolled back.
func TestRollbackReadyForAMoment(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{rollbackPod("web", "uid-1", busybox("web"), busybox("app"))})
	waitFor(t, m, "v1 good", func(p *corev1.Pod) bool { return p.Annotations[AnnotationRevisionGood] == "uid-1" })
	m.Update([]*corev1.Pod{rollbackPod("web", "uid-2", busybox("web"), busybox("app"))})
	waitFor(t, m, "v2 ready", func(p *corev1.Pod) bool { return withUID(p, "uid-2") && isReady(p) })
	for _, id := range rt.running("uid-2-app") {
		rt.exit(id, 1)
	}
	waitFor(t, m, "v2 app running again", func(p *corev1.Pod) bool {
		return withUID(p, "uid-2") && running(p, "app") && p.Status.ContainerStatuses[1].RestartCount == 1
	})
	for _, id := range rt.running("uid-2-app") {
		rt.exit(id, 1)
	}
	p := waitFor(t, m, "rolled back", func(p *corev1.Pod) bool { return withUID(p, "uid-1") && p.Status.Reason == ReasonRolledBack })
	if !strings.Contains(p.Status.Message, "CrashLoopBackOff") || p.Annotations[AnnotationRevisionGood] != "uid-1" {
		t.Errorf("message %q, annotations %v", p.Status.Message, p.Annotations)
	}
}

// With rollback on, an update whose container cannot run is replaced by the last good version,
// which is reported; the failed content is not tried again until the file changes or a retry.
func TestRollbackOnFailure(t *testing.T) {
	rt := newFakeRuntime()
	rt.imageErrs["crash"] = errors.New("exit status 1")
	rt.images["crash"] = rt.images["busybox"]
	m := testManager(t, rt)
	m.Update([]*corev1.Pod{rollbackPod("web", "uid-1", busybox("app"))})
	waitFor(t, m, "v1 ready", func(p *corev1.Pod) bool { return isReady(p) && p.Annotations[AnnotationRevisionGood] == "uid-1" })

	m.Update([]*corev1.Pod{rollbackPod("web", "uid-2", corev1.Container{Name: "app", Image: "crash"})})
	p := waitFor(t, m, "rolled back", func(p *corev1.Pod) bool {
		return withUID(p, "uid-1") && p.Status.Reason == ReasonRolledBack && running(p, "app")
	})
	if !strings.Contains(p.Status.Message, "revision uid-2 failed: RunContainerError") || p.Annotations[AnnotationRevisionFailed] != "uid-2: RunContainerError" {
		t.Errorf("rolled back: message %q, annotations %v", p.Status.Message, p.Annotations)
	}
	// The good version's image is kept from garbage collection though the file names another.
	if refs, _ := m.ImagesInUse(); !slices.Equal(refs["busybox"], []string{"default/web"}) || !slices.Equal(refs["crash"], []string{"default/web"}) {
		t.Errorf("images in use %v: want busybox (the good version) and crash (the file's)", refs)
	}
	ro, err := m.Rollout("default", "web")
	if err != nil || ro.Current != "uid-1" || ro.Good != "uid-1" || ro.Failed != "uid-2" || ro.Desired != "uid-2" {
		t.Fatalf("rollout: %+v %v", ro, err)
	}
	var outcomes []string
	for _, h := range ro.History {
		outcomes = append(outcomes, h.Revision+" "+h.Outcome)
	}
	if want := []string{"uid-1 replaced", "uid-2 failed", "uid-1 rolled back to"}; !slices.Equal(outcomes, want) {
		t.Errorf("history %q, want %q", outcomes, want)
	}
	// It stays rolled back: the failed version is not started again.
	time.Sleep(300 * time.Millisecond)
	if n := len(rt.running("uid-2-")); n != 0 {
		t.Errorf("the failed version runs again")
	}
	// A retry tries it again, and it fails again.
	if err := m.RetryRollout("default", "web"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, m, "retried", func(p *corev1.Pod) bool { return withUID(p, "uid-2") })
	waitFor(t, m, "rolled back again", func(p *corev1.Pod) bool { return withUID(p, "uid-1") && p.Status.Reason == ReasonRolledBack })
	if got := m.cfg.Events.List("default", "web"); countReason(got, ReasonRolledBack) != 2 {
		t.Errorf("%d RolledBack events, want 2", countReason(got, ReasonRolledBack))
	}
	// A fixed file runs.
	m.Update([]*corev1.Pod{rollbackPod("web", "uid-3", busybox("app"))})
	p = waitFor(t, m, "the fix ready", func(p *corev1.Pod) bool { return withUID(p, "uid-3") && isReady(p) })
	if p.Status.Reason != "" || p.Annotations[AnnotationRevisionFailed] != "" {
		t.Errorf("after the fix: reason %q, annotations %v", p.Status.Reason, p.Annotations)
	}
	if err := m.RetryRollout("default", "web"); !errors.Is(err, api.ErrNoRollback) {
		t.Errorf("retry without a rollback: %v", err)
	}
}

// With rollback on, an update that runs but never gets Ready goes back after its deadline;
// with rollback off the same update stays, as on a kubelet.
func TestRollbackAfterDeadline(t *testing.T) {
	for _, on := range []bool{true, false} {
		rt := newFakeRuntime()
		rt.execHook = func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
			if strings.HasPrefix(id, "uid-2-") {
				return 1, []byte("not ready"), nil
			}
			return 0, nil, nil
		}
		m := testManager(t, rt)
		pod := func(uid string) *corev1.Pod {
			app := busybox("app")
			app.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}},
				PeriodSeconds: 1, FailureThreshold: 1, TimeoutSeconds: 1, SuccessThreshold: 1}
			p := rollbackPod("web", uid, app)
			if !on {
				p.Annotations[AnnotationRollback] = "false"
			}
			return p
		}
		m.Update([]*corev1.Pod{pod("uid-1")})
		waitFor(t, m, "v1 good", func(p *corev1.Pod) bool { return isReady(p) && p.Annotations[AnnotationRevisionGood] == "uid-1" })
		start := time.Now()
		m.Update([]*corev1.Pod{pod("uid-2")})
		waitFor(t, m, "v2 running", func(p *corev1.Pod) bool { return withUID(p, "uid-2") && running(p, "app") })
		if !on {
			time.Sleep(3 * time.Second) // past the deadline the annotation names
			if p := m.store.get(Key("default", "web")); !withUID(p, "uid-2") || p.Status.Reason != "" {
				t.Errorf("rollback off: %s reason %q", p.UID, p.Status.Reason)
			}
			continue
		}
		p := waitFor(t, m, "rolled back", func(p *corev1.Pod) bool { return withUID(p, "uid-1") && p.Status.Reason == ReasonRolledBack })
		if took := time.Since(start); took < 2*time.Second {
			t.Errorf("rolled back after %s, before the 2 s deadline", took)
		}
		if !strings.Contains(p.Status.Message, "ProgressDeadlineExceeded: not Ready within 2s") {
			t.Errorf("message %q", p.Status.Message)
		}
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func countReason(evs []events.Event, reason string) int {
	n := 0
	for _, e := range evs {
		if e.Reason == reason {
			n += int(e.Count) // repeated events are counted in one, as by the kubelet
		}
	}
	return n
}

// Rollout records of pods whose files went away while the daemon was stopped are removed at
// start; those of desired pods stay.
func TestPruneRollouts(t *testing.T) {
	dir := t.TempDir()
	m := NewManager(Config{StateDir: dir})
	if err := os.MkdirAll(filepath.Join(dir, "rollouts"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"default_web.json", "default_gone.json", "prod_api.json"} {
		if err := os.WriteFile(filepath.Join(dir, "rollouts", name), []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m.found = map[string][]found{"prod/api": nil}
	m.pruneRollouts(map[string]*corev1.Pod{"default/web": hostPod("web", "uid-1")})
	entries, _ := os.ReadDir(filepath.Join(dir, "rollouts"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"default_web.json", "prod_api.json"}; !slices.Equal(names, want) {
		t.Errorf("records %v, want %v", names, want)
	}
}
