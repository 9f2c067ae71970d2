package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) metav1.Time { return metav1.NewTime(now.Add(-d)) }

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}
func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}
func terminated(reason string, code, signal int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}
}

// cs is a container status; ready is only meaningful for running containers.
func cs(name string, state corev1.ContainerState, ready bool, restarts int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: state, Ready: ready, RestartCount: restarts}
}

// mkPod builds a pod with app containers named after statuses (and init containers likewise).
func mkPod(phase corev1.PodPhase, app []corev1.ContainerStatus, init []corev1.ContainerStatus) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
	p.Status.Phase = phase
	for _, s := range app {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: s.Name})
	}
	for _, s := range init {
		p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: s.Name})
	}
	p.Status.ContainerStatuses = app
	p.Status.InitContainerStatuses = init
	return p
}

func TestSummarizePod(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	yes := true
	readyCond := []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	deleted := metav1.NewTime(now)

	tests := []struct {
		name     string
		pod      *corev1.Pod
		mutate   func(*corev1.Pod)
		status   string
		ready    string
		restarts int
	}{
		{name: "running", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", running(), true, 0)}, nil),
			status: "Running", ready: "1/1"},
		{name: "running not ready", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", running(), false, 0)}, nil),
			status: "Running", ready: "0/1"},
		{name: "pending without statuses", pod: mkPod(corev1.PodPending, nil, nil),
			mutate: func(p *corev1.Pod) { p.Spec.Containers = []corev1.Container{{Name: "a"}} },
			status: "Pending", ready: "0/1"},
		{name: "status reason wins over phase", pod: mkPod(corev1.PodFailed, nil, nil),
			mutate: func(p *corev1.Pod) { p.Status.Reason = "InvalidManifest" },
			status: "InvalidManifest", ready: "0/0"},
		{name: "container creating", pod: mkPod(corev1.PodPending, []corev1.ContainerStatus{cs("a", waiting("ContainerCreating"), false, 0)}, nil),
			status: "ContainerCreating", ready: "0/1"},
		{name: "crash loop", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", waiting("CrashLoopBackOff"), false, 5)}, nil),
			status: "CrashLoopBackOff", ready: "0/1", restarts: 5},
		{name: "terminated with reason", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", terminated("Error", 1, 0), false, 2)}, nil),
			status: "Error", ready: "0/1", restarts: 2},
		{name: "terminated exit code", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", terminated("", 2, 0), false, 0)}, nil),
			status: "ExitCode:2", ready: "0/1"},
		{name: "terminated by signal", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", terminated("", 137, 9), false, 0)}, nil),
			status: "Signal:9", ready: "0/1"},
		{name: "completed", pod: mkPod(corev1.PodSucceeded, []corev1.ContainerStatus{cs("a", terminated("Completed", 0, 0), false, 0)}, nil),
			status: "Completed", ready: "0/1"},
		{name: "first container's reason wins", pod: mkPod(corev1.PodPending, []corev1.ContainerStatus{
			cs("a", waiting("ImagePullBackOff"), false, 0), cs("b", waiting("ContainerCreating"), false, 0), cs("c", running(), true, 1)}, nil),
			status: "ImagePullBackOff", ready: "1/3", restarts: 1},
		{name: "completed with a running container and Ready", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{
			cs("a", running(), true, 0), cs("b", terminated("Completed", 0, 0), false, 0)}, nil),
			mutate: func(p *corev1.Pod) { p.Status.Conditions = readyCond },
			status: "Running", ready: "1/2"},
		{name: "completed with a running container, not Ready", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{
			cs("a", running(), true, 0), cs("b", terminated("Completed", 0, 0), false, 0)}, nil),
			status: "NotReady", ready: "1/2"},
		{name: "init pending", pod: mkPod(corev1.PodPending,
			[]corev1.ContainerStatus{cs("a", waiting("PodInitializing"), false, 0)},
			[]corev1.ContainerStatus{cs("i1", waiting("PodInitializing"), false, 0), cs("i2", waiting(""), false, 0)}),
			status: "Init:0/2", ready: "0/1"},
		{name: "init running second", pod: mkPod(corev1.PodPending,
			[]corev1.ContainerStatus{cs("a", waiting("PodInitializing"), false, 0)},
			[]corev1.ContainerStatus{cs("i1", terminated("Completed", 0, 0), false, 0), cs("i2", running(), false, 0)}),
			status: "Init:1/2", ready: "0/1"},
		{name: "init crash loop counts init restarts", pod: mkPod(corev1.PodPending,
			[]corev1.ContainerStatus{cs("a", waiting("PodInitializing"), false, 0)},
			[]corev1.ContainerStatus{cs("i1", waiting("CrashLoopBackOff"), false, 4)}),
			status: "Init:CrashLoopBackOff", ready: "0/1", restarts: 4},
		{name: "init error", pod: mkPod(corev1.PodFailed, nil, []corev1.ContainerStatus{cs("i1", terminated("Error", 1, 0), false, 0)}),
			status: "Init:Error", ready: "0/0"},
		{name: "init exit code", pod: mkPod(corev1.PodPending, nil, []corev1.ContainerStatus{cs("i1", terminated("", 3, 0), false, 0)}),
			status: "Init:ExitCode:3", ready: "0/0"},
		{name: "init signal", pod: mkPod(corev1.PodPending, nil, []corev1.ContainerStatus{cs("i1", terminated("", 143, 15), false, 0)}),
			status: "Init:Signal:15", ready: "0/0"},
		{name: "init done, app running", pod: mkPod(corev1.PodRunning,
			[]corev1.ContainerStatus{cs("a", running(), true, 1)},
			[]corev1.ContainerStatus{cs("i1", terminated("Completed", 0, 0), false, 0)}),
			status: "Running", ready: "1/1", restarts: 1},
		{name: "started sidecar does not block and counts", pod: mkPod(corev1.PodRunning,
			[]corev1.ContainerStatus{cs("a", running(), true, 0)},
			[]corev1.ContainerStatus{cs("side", running(), true, 2)}),
			mutate: func(p *corev1.Pod) {
				p.Spec.InitContainers[0].RestartPolicy = &always
				p.Status.InitContainerStatuses[0].Started = &yes
			},
			status: "Running", ready: "2/2", restarts: 2},
		{name: "terminating", pod: mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", running(), true, 0)}, nil),
			mutate: func(p *corev1.Pod) { p.DeletionTimestamp = &deleted },
			status: "Terminating", ready: "1/1"},
		{name: "terminal phase is not terminating", pod: mkPod(corev1.PodSucceeded, []corev1.ContainerStatus{cs("a", terminated("Completed", 0, 0), false, 0)}, nil),
			mutate: func(p *corev1.Pod) { p.DeletionTimestamp = &deleted },
			status: "Completed", ready: "0/1"},
		{name: "node lost", pod: mkPod(corev1.PodRunning, nil, nil),
			mutate: func(p *corev1.Pod) { p.DeletionTimestamp = &deleted; p.Status.Reason = "NodeLost" },
			status: "Unknown", ready: "0/0"},
		{name: "scheduling gated", pod: mkPod(corev1.PodPending, nil, nil),
			mutate: func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Reason: corev1.PodReasonSchedulingGated}}
			},
			status: "SchedulingGated", ready: "0/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mutate != nil {
				tc.mutate(tc.pod)
			}
			s := summarizePod(tc.pod)
			if s.Status != tc.status {
				t.Errorf("status = %q, want %q", s.Status, tc.status)
			}
			if got := podStatus(tc.pod); got != tc.status {
				t.Errorf("podStatus = %q, want %q", got, tc.status)
			}
			if got := makeRow(tc.pod, now).Ready; got != tc.ready {
				t.Errorf("ready = %q, want %q", got, tc.ready)
			}
			if s.Restarts != tc.restarts {
				t.Errorf("restarts = %d, want %d", s.Restarts, tc.restarts)
			}
		})
	}
}

func TestFormatAge(t *testing.T) {
	tests := []struct {
		t    metav1.Time
		want string
	}{
		{metav1.Time{}, "<unknown>"},
		{ago(0), "0s"},
		{ago(5 * time.Second), "5s"},
		{ago(90 * time.Second), "90s"},
		{ago(3*time.Minute + 12*time.Second), "3m12s"},
		{ago(5 * time.Minute), "5m"},
		{ago(45*time.Minute + 30*time.Second), "45m"},
		{ago(4*time.Hour + 20*time.Minute), "4h20m"},
		{ago(26 * time.Hour), "26h"},
		{ago(51 * time.Hour), "2d3h"},
		{ago(72 * time.Hour), "3d"},
		{ago(40 * 24 * time.Hour), "40d"},
		{ago(3*365*24*time.Hour + 10*24*time.Hour), "3y10d"},
		{ago(-500 * time.Millisecond), "0s"},
		{ago(-time.Minute), "<invalid>"},
	}
	for _, tc := range tests {
		if got := formatAge(tc.t, now); got != tc.want {
			t.Errorf("formatAge(%v ago) = %q, want %q", now.Sub(tc.t.Time), got, tc.want)
		}
	}
}

func TestMakeRow(t *testing.T) {
	finished := func(d time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: ago(d)}}
	}
	start := ago(2*time.Hour + 5*time.Minute)

	p := mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", running(), true, 3), cs("b", running(), true, 2)}, nil)
	p.Status.ContainerStatuses[0].LastTerminationState = finished(10 * time.Minute)
	p.Status.ContainerStatuses[1].LastTerminationState = finished(4 * time.Minute) // most recent
	p.Namespace = "kube-system"
	p.CreationTimestamp = ago(3 * time.Hour)
	p.Status.StartTime = &start
	p.Status.PodIP = "10.88.0.7"
	p.Annotations = map[string]string{manifestAnnotation: "/etc/minipod/manifests/p.yaml", revisionAnnotation: "3f2a9c0d1e"}
	want := podRow{Name: "kube-system/p", Ready: "2/2", Status: "Running", Restarts: "5 (4m ago)",
		Age: "125m", IP: "10.88.0.7", Manifest: "/etc/minipod/manifests/p.yaml", Revision: "3f2a9c0d1e"}
	if got := makeRow(p, now); got != want {
		t.Errorf("row = %+v\nwant  %+v", got, want)
	}

	// Default namespace, no start time, restarts without a known time, nothing for wide.
	q := mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", waiting("CrashLoopBackOff"), false, 7)}, nil)
	q.CreationTimestamp = ago(51 * time.Hour)
	want = podRow{Name: "p", Ready: "0/1", Status: "CrashLoopBackOff", Restarts: "7", Age: "2d3h", IP: "<none>", Manifest: "<none>", Revision: "<none>"}
	if got := makeRow(q, now); got != want {
		t.Errorf("row = %+v\nwant  %+v", got, want)
	}

	// Init containers' restarts do not count once the pod is initialized.
	r := mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", running(), true, 0)},
		[]corev1.ContainerStatus{cs("i", terminated("Completed", 0, 0), false, 2)})
	if got := makeRow(r, now).Restarts; got != "0" {
		t.Errorf("restarts = %q, want 0", got)
	}
}

func TestPrintTable(t *testing.T) {
	a := mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", running(), true, 0)}, nil)
	a.Name = "web"
	a.CreationTimestamp = ago(5 * time.Second)
	b := mkPod(corev1.PodRunning, []corev1.ContainerStatus{cs("a", waiting("CrashLoopBackOff"), false, 12)}, nil)
	b.Name, b.Namespace = "database-primary", "prod"
	b.CreationTimestamp = ago(51 * time.Hour)
	var buf bytes.Buffer
	if err := printTable(&buf, []corev1.Pod{*a, *b}, false, now); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"NAME                    READY   STATUS             RESTARTS   AGE",
		"web                     1/1     Running            0          5s",
		"prod/database-primary   0/1     CrashLoopBackOff   12         2d3h",
		"",
	}, "\n")
	if buf.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), want)
	}
}
