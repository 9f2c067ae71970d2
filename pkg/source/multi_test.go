package source

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/manifest"
)

// A file of several documents gives each of its pods, whole or not at all; a conflict with
// another file costs only the pod in conflict.
func TestLoadSeveralPods(t *testing.T) {
	s, dir := newSource(t)
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:1")+"---\n"+podYAML("db", "postgres:1"))
	first := s.Load()
	checkSnap(t, "two pods", first, []string{"default/web<-a.yaml nginx:1", "default/db<-a.yaml postgres:1"}, nil)

	// Editing one pod of the file changes that pod alone.
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:1")+"---\n"+podYAML("db", "postgres:2"))
	edited := s.Load()
	checkSnap(t, "second edited", edited, []string{"default/web<-a.yaml nginx:1", "default/db<-a.yaml postgres:2"}, nil)
	if len(edited.Pods) == 2 && edited.Pods[0].UID != first.Pods[0].UID {
		t.Errorf("editing db changed web's uid %s -> %s", first.Pods[0].UID, edited.Pods[0].UID)
	}

	// One bad document: the file's last good version keeps running, each pod says why.
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:3")+"---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: db\n")
	bad := s.Load()
	checkSnap(t, "a deployment", bad, []string{"default/web<-a.yaml nginx:1", "default/db<-a.yaml postgres:2"},
		[]string{"a.yaml: default/web InvalidManifest running=true", "a.yaml: default/db InvalidManifest running=true"})
	for _, p := range bad.Problems {
		if !strings.Contains(p.Message, "document 2 at line 10: kind: Deployment is not supported") || !strings.Contains(p.Message, "last good version") {
			t.Errorf("problem of %s: message %q", p.Name, p.Message)
		}
	}

	// Another file defining one of the pods conflicts on that pod only; its other pod runs.
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:1")+"---\n"+podYAML("db", "postgres:2"))
	writeFile(t, dir, "b.yaml", podYAML("cache", "redis")+"---\n"+podYAML("db", "mysql"))
	checkSnap(t, "conflict", s.Load(),
		[]string{"default/web<-a.yaml nginx:1", "default/db<-a.yaml postgres:2", "default/cache<-b.yaml redis"},
		[]string{"b.yaml: default/db NameConflict running=false"})

	// Removing the file removes its pods; the other file takes db over.
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	checkSnap(t, "removed", s.Load(), []string{"default/cache<-b.yaml redis", "default/db<-b.yaml mysql"}, nil)
}

// A new file with a bad document is listed under the name of the object at fault.
func TestLoadSeveralNewBad(t *testing.T) {
	s, dir := newSource(t)
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:1")+"---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n")
	writeFile(t, dir, "b.yaml", "apiVersion: v1\nkind: List\nitems:\n- "+strings.ReplaceAll(podJSON("ops", "x"), "\n", "")+"\n- {apiVersion: v1, kind: Pod, metadata: {name: why, namespace: ops}, spec: {containers: []}}\n")
	snap := s.Load()
	checkSnap(t, "new bad", snap, nil,
		[]string{"a.yaml: /svc InvalidManifest running=false", "b.yaml: ops/why InvalidManifest running=false"})
	if len(snap.Problems) == 2 {
		if m := snap.Problems[1].Message; m != "items[1]: spec.containers: Required value" {
			t.Errorf("list problem: message %q", m)
		}
	}
}

// The node's policy refuses a file whole when it refuses one of its pods.
func TestLoadSeveralAdmit(t *testing.T) {
	s, dir := newSource(t)
	s.cfg.Admit = func(p *corev1.Pod) error {
		if strings.HasPrefix(p.Spec.Containers[0].Image, "evil") {
			return &manifest.Error{Reason: "PolicyViolation", Message: "spec.containers[0].image: Forbidden: no evil"}
		}
		return nil
	}
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx:1")+"---\n"+podYAML("x", "evil:1"))
	checkSnap(t, "refused", s.Load(), nil, []string{"a.yaml: default/x PolicyViolation running=false"})
}
