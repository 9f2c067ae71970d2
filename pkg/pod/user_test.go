package pod

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
)

// A container's status reports the identity its process runs with, as the kubelet's
// containerStatuses[].user.linux; an adopted container's comes from its label (issue 23).
func TestContainerStatusUser(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	uid, gid := int64(1000), int64(3000)
	p := hostPod("web", "uid-web", busybox("a"))
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &gid, SupplementalGroups: []int64{4000}}
	m.Update([]*corev1.Pod{p})
	got := waitFor(t, m, "running with a user", func(p *corev1.Pod) bool {
		return running(p, "a") && p.Status.ContainerStatuses[0].User != nil
	})
	u := got.Status.ContainerStatuses[0].User.Linux
	if u == nil || u.UID != 1000 || u.GID != 3000 || fmt.Sprint(u.SupplementalGroups) != "[3000 4000]" {
		t.Errorf("user %+v, want uid 1000 gid 3000 groups [3000 4000]", u)
	}

	// The label written at creation reads back the same.
	want := runtime.ProcessUser{UID: 1000, GID: 3000, Groups: []int64{3000, 4000}}
	if back, ok := runtime.ParseProcessUser(want.String()); !ok || fmt.Sprint(back) != fmt.Sprint(want) {
		t.Errorf("label round trip: %+v %v", back, ok)
	}
}

// hostUsers: false is refused at the sandbox, as the kubelet refuses it on a runtime without
// user namespaces, and nothing runs in the host's user namespace in its place.
func TestHostUsersFalseRefused(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	no := false
	p := hostPod("userns", "uid-userns", busybox("a"))
	p.Spec.HostUsers = &no
	m.Update([]*corev1.Pod{p})
	got := waitFor(t, m, "sandbox refused", func(p *corev1.Pod) bool {
		return strings.Contains(p.Status.Message, "FailedCreatePodSandBox: can't set `spec.hostUsers: false`, runtime does not support user namespaces")
	})
	if got.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s, want Pending", got.Status.Phase)
	}
	if n, _ := rt.count(); n != 0 {
		t.Errorf("%d containers made", n)
	}
}
