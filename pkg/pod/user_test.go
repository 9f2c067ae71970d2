package pod

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/userns"
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

// hostUsers: false puts the pause and app containers in a user namespace of one range, the
// pod's own; another pod gets another; the range is recorded in the pod's directory and freed
// with it.
func TestHostUsersFalseRange(t *testing.T) {
	rt := newFakeRuntime()
	m := testManager(t, rt)
	no := false
	a := hostPod("userns-a", "uid-a", busybox("a"))
	a.Spec.HostUsers = &no
	b := hostPod("userns-b", "uid-b", busybox("b"))
	b.Spec.HostUsers = &no
	plain := hostPod("plain", "uid-plain", busybox("c"))
	m.Update([]*corev1.Pod{a, b, plain})
	waitFor(t, m, "a running", func(p *corev1.Pod) bool { return p.Name == "userns-a" && running(p, "a") })
	waitFor(t, m, "b running", func(p *corev1.Pod) bool { return p.Name == "userns-b" && running(p, "b") })
	waitFor(t, m, "plain running", func(p *corev1.Pod) bool { return p.Name == "plain" && running(p, "c") })

	ranges := map[string]userns.Range{}
	rt.mu.Lock()
	for id, c := range rt.containers {
		uid := c.cfg.Labels[runtime.LabelPodUID]
		if uid == "uid-plain" {
			if c.cfg.UserNS != nil {
				t.Errorf("container %s of a pod without hostUsers: false has user namespace %v", id, *c.cfg.UserNS)
			}
			continue
		}
		if c.cfg.UserNS == nil {
			t.Errorf("container %s of pod %s has no user namespace", id, uid)
			continue
		}
		if r, ok := ranges[uid]; ok && r != *c.cfg.UserNS {
			t.Errorf("pod %s's containers have ranges %v and %v", uid, r, *c.cfg.UserNS)
		}
		ranges[uid] = *c.cfg.UserNS
	}
	rt.mu.Unlock()
	if len(ranges) != 2 || ranges["uid-a"] == ranges["uid-b"] {
		t.Fatalf("ranges %v, want two different ones", ranges)
	}
	file := filepath.Join(m.dirs.podsDir(), "uid-a", userns.File)
	if _, err := os.Stat(file); err != nil {
		t.Errorf("range of pod a not recorded: %v", err)
	}
	if r, err := m.userns.Get("uid-a"); err != nil || r != ranges["uid-a"] {
		t.Errorf("allocator has %v, %v for pod a; want %v", r, err, ranges["uid-a"])
	}

	m.Update([]*corev1.Pod{b, plain})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(file); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("range file of pod a still there after it was removed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Freed: a daemon that starts now finds pod b's range alone.
	fresh, err := userns.New(m.dirs.podsDir(), sandbox.WriteFileAtomic)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := fresh.Get("uid-b"); err != nil || r != ranges["uid-b"] {
		t.Errorf("after a restart pod b has %v, %v; want %v", r, err, ranges["uid-b"])
	}
}
