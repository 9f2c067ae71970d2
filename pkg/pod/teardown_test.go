package pod

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
)

func TestStopOrder(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{
			{Name: "s1", RestartPolicy: &always},
			{Name: "setup"},
			{Name: "s2", RestartPolicy: &always},
			{Name: "s3", RestartPolicy: &always},
		},
		Containers: []corev1.Container{{Name: "a"}, {Name: "b"}},
	}}
	ctr := func(id, name string, init, sidecar bool) runtime.Container {
		l := map[string]string{runtime.LabelRole: runtime.RoleApp, runtime.LabelContainer: name}
		if init {
			l[runtime.LabelInit] = "true"
		}
		if sidecar {
			l[runtime.LabelSidecar] = "true"
		}
		return runtime.Container{ID: id, Labels: l}
	}
	list := []runtime.Container{
		{ID: "pause", Labels: map[string]string{runtime.LabelRole: runtime.RoleSandbox}},
		ctr("s1-0", "s1", true, true),
		ctr("setup-0", "setup", true, false),
		ctr("s2-0", "s2", true, true),
		ctr("s2-1", "s2", true, true), // a later attempt beside the exited one
		ctr("s3-0", "s3", true, true),
		ctr("a-0", "a", false, false),
		ctr("b-0", "b", false, false),
	}
	tests := []struct {
		name string
		pod  *corev1.Pod
		list []runtime.Container
		want map[string][]string
	}{
		{"sidecars in reverse order, after the regular containers", pod, list, map[string][]string{
			"s1-0": {"a-0", "b-0", "s2-0", "s2-1"},
			"s2-0": {"a-0", "b-0", "s3-0"},
			"s2-1": {"a-0", "b-0", "s3-0"},
			"s3-0": {"a-0", "b-0"},
		}},
		{"a later sidecar not running is no one to wait for", pod, []runtime.Container{list[1], list[6]}, map[string][]string{
			"s1-0": {"a-0"},
		}},
		// As the kubelet's terminationOrdering: a sidecar waits for the next one in the spec
		// only, which is not running here, and not for those after that.
		{"no regular container, the next sidecar not running", pod, []runtime.Container{list[1], list[5]}, map[string][]string{}},
		{"no spec: sidecars after the regular containers, side by side", nil, list, map[string][]string{
			"s1-0": {"a-0", "b-0"},
			"s2-0": {"a-0", "b-0"},
			"s2-1": {"a-0", "b-0"},
			"s3-0": {"a-0", "b-0"},
		}},
		{"no sidecars", pod, []runtime.Container{list[2], list[6], list[7]}, map[string][]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stopOrder(tt.pod, tt.list)
			for _, ids := range got {
				slices.Sort(ids)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// signalLog is the fake runtime, with a record of the stop signals sent and the hooks run.
type signalLog struct {
	*fakeRuntime
	mu  sync.Mutex
	log []string
}

func (l *signalLog) add(s string) {
	l.mu.Lock()
	l.log = append(l.log, s)
	l.mu.Unlock()
}

func (l *signalLog) entries() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.log)
}

func (l *signalLog) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	cfg, _ := l.config(id)
	l.add("signal " + cfg.Labels[runtime.LabelContainer])
	return l.fakeRuntime.Signal(ctx, id, sig)
}

// sidecarPod is hostPod with the given sidecars (restartable init containers) before its
// containers.
func sidecarPod(name, uid string, sidecars []corev1.Container, ctrs ...corev1.Container) *corev1.Pod {
	p := hostPod(name, uid, ctrs...)
	always := corev1.ContainerRestartPolicyAlways
	for _, c := range sidecars {
		c.RestartPolicy = &always
		c.ImagePullPolicy = corev1.PullIfNotPresent
		if len(c.Command) == 0 {
			c.Command = []string{"sleep", "1000"}
		}
		p.Spec.InitContainers = append(p.Spec.InitContainers, c)
	}
	return p
}

// When a pod goes, its regular containers stop first, then its sidecars one by one in reverse
// order, as on a kubelet; a sidecar's preStop hook runs at once, and the sidecars before it
// (here s1, which would serve the hook's request) stop only once it has stopped.
func TestWorkerStopsSidecarsInReverseOrder(t *testing.T) {
	rt := &signalLog{fakeRuntime: newFakeRuntime()}
	rt.execHook = func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
		if strings.Join(cmd, " ") == "prestop s2" {
			rt.add("hook s2")
			time.Sleep(300 * time.Millisecond)
			rt.add("hook s2 done")
		}
		return 0, nil, nil
	}
	m := managerOn(t, rt)
	s2 := busybox("s2")
	s2.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"prestop", "s2"}}}}
	p := sidecarPod("web", "uid-web", []corev1.Container{busybox("s1"), s2}, busybox("main"))
	grace := int64(10)
	p.Spec.TerminationGracePeriodSeconds = &grace
	m.Update([]*corev1.Pod{p})
	waitFor(t, m, "main running", func(p *corev1.Pod) bool { return running(p, "main") })
	m.Update(nil)
	waitGone(t, m, "web")
	got := rt.entries()
	at := func(s string) int {
		i := slices.Index(got, s)
		if i < 0 {
			t.Fatalf("no %q in %q", s, got)
		}
		return i
	}
	if !(at("signal main") < at("signal s2") && at("hook s2 done") < at("signal s2") && at("signal s2") < at("signal s1")) {
		t.Errorf("stop order %q: want main, then s2 after its hook, then s1", got)
	}
	if at("hook s2") > at("signal main") {
		t.Logf("s2's hook began after main's signal: %q", got)
	}
}

// stubborn is the fake runtime whose container "a" does not exit on its stop signal, only on
// SIGKILL, as a server finishing its requests: until then it answers its probes as sick.
type stubborn struct {
	*fakeRuntime
	termed atomic.Bool
}

func (r *stubborn) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	if cfg, _ := r.config(id); cfg.Labels[runtime.LabelContainer] == "a" && sig != syscall.SIGKILL {
		r.termed.Store(true)
		return nil
	}
	return r.fakeRuntime.Signal(ctx, id, sig)
}

// While a pod terminates, its readiness probes run on and its containers' exits are reported,
// so it is seen not ready before it is gone; its liveness probes stop, so a container that
// answers them as sick while it stops is not killed for it. As container_probe.go's "should
// mark readiness on pods to false [and disable liveness probes] while pod is in progress of
// terminating".
func TestWorkerReadinessWhileTerminating(t *testing.T) {
	rt := &stubborn{fakeRuntime: newFakeRuntime()}
	rt.execHook = func(ctx context.Context, id string, cmd []string) (int, []byte, error) {
		if rt.termed.Load() {
			return 1, []byte("sick"), nil
		}
		return 0, nil, nil
	}
	m := managerOn(t, rt)
	a := busybox("a")
	a.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ready"}}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	a.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"live"}}},
		PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	p := hostPod("web", "uid-web", a, busybox("b"))
	grace := int64(5)
	p.Spec.TerminationGracePeriodSeconds = &grace
	m.Update([]*corev1.Pod{p})
	podReady := func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady {
				return c.Status == corev1.ConditionTrue
			}
		}
		return false
	}
	waitFor(t, m, "ready", podReady)
	m.Update(nil)
	p = waitFor(t, m, "not ready while terminating", func(p *corev1.Pod) bool {
		return p.DeletionTimestamp != nil && !podReady(p) && !p.Status.ContainerStatuses[0].Ready
	})
	if !rt.termed.Load() {
		t.Errorf("not ready before a got its stop signal")
	}
	if len(rt.running("-a-")) != 1 {
		t.Errorf("a no longer running when seen not ready")
	}
	waitFor(t, m, "b terminated while terminating", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[1]
		return p.DeletionTimestamp != nil && cs.State.Terminated != nil && cs.State.Waiting == nil && !cs.Ready
	})
	waitGone(t, m, "web")
	var readinessFailed bool
	for _, e := range m.cfg.Events.List("default", "web") {
		if strings.Contains(e.Message, "Liveness probe failed") || strings.Contains(e.Message, "failed liveness probe") {
			t.Errorf("liveness acted on while terminating: %s: %s", e.Reason, e.Message)
		}
		if e.Reason == events.ReasonUnhealthy && strings.HasPrefix(e.Message, "Readiness probe failed: sick") {
			readinessFailed = true
		}
	}
	if !readinessFailed {
		t.Errorf("no Unhealthy event for the readiness probe that failed while terminating")
	}
}
