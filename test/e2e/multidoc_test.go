package e2e

import (
	"strings"
	"testing"
	"time"
)

// multiPods is one file holding two pods, the second in a v1 List.
const multiPods = `apiVersion: v1
kind: Pod
metadata: {name: multi-a}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env: [{name: WHO, value: a}]
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: multi-b}
  spec:
    terminationGracePeriodSeconds: 1
    containers:
    - name: c
      image: minipod.local/busybox:1.35
      command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
      env: [{name: WHO, value: b}]
`

// A file of several documents runs each pod, each listed with the file; editing one pod of
// the file restarts that pod alone; a Deployment beside it is reported with the way out and
// changes nothing; removing the file removes both pods and leaves nothing behind.
func TestMultiDocumentManifest(t *testing.T) {
	d := newDaemon(t)
	d.start()
	path := d.writeManifest("multi.yaml", multiPods)
	for _, name := range []string{"multi-a", "multi-b"} {
		p := d.waitRunning(name, 60*time.Second)
		if got := p.Annotations["minipod.io/manifest"]; got != path {
			t.Fatalf("pod %s: minipod.io/manifest %q, want %q", name, got, path)
		}
		out, errOut, code := d.ctl("exec", name, "--", "sh", "-c", "echo $WHO")
		if want := strings.TrimPrefix(name, "multi-"); code != 0 || strings.TrimSpace(out) != want {
			t.Fatalf("exec %s: code %d out %q err %q, want %q", name, code, out, errOut, want)
		}
	}
	idsA := containerIDs(d.pod("multi-a"))

	// Editing the second pod replaces it and leaves the first alone.
	d.writeManifest("multi.yaml", strings.Replace(multiPods, "{name: WHO, value: b}", "{name: WHO, value: b2}", 1))
	d.eventually(60*time.Second, "multi-b runs its new version", func() (bool, string) {
		out, _, code := d.ctl("exec", "multi-b", "--", "sh", "-c", "echo $WHO")
		return code == 0 && strings.TrimSpace(out) == "b2", out
	})
	if got := containerIDs(d.pod("multi-a")); strings.Join(got, ",") != strings.Join(idsA, ",") {
		t.Fatalf("editing multi-b touched multi-a: %v -> %v", idsA, got)
	}

	// A Deployment is reported under its name with the way out; a Deployment added to the
	// running file keeps the file's last good version.
	deploy := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: deploy}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: busybox}]\n"
	dpath := d.writeManifest("deploy.yaml", deploy)
	d.writeManifest("multi.yaml", multiPods+"---\n"+deploy)
	d.eventually(30*time.Second, "the deployment reported", func() (bool, string) {
		p := d.pod("deploy")
		if p == nil {
			return false, "deploy not listed"
		}
		if p.Annotations["minipod.io/manifest"] != dpath || p.Status.Reason != "InvalidManifest" ||
			p.Status.Message != "kind: Deployment is not supported: minipod runs v1 Pods, ConfigMaps and Secrets; use the Deployment's pod template (spec.template) as a Pod" {
			return false, p.Status.Reason + ": " + p.Status.Message
		}
		a := d.pod("multi-a")
		if a == nil || !strings.Contains(a.Status.Message, "document 3 at line 26: kind: Deployment is not supported") {
			return false, "multi-a: no message about the deployment"
		}
		return true, ""
	})
	if got := containerIDs(d.pod("multi-a")); strings.Join(got, ",") != strings.Join(idsA, ",") {
		t.Fatalf("a bad edit touched multi-a: %v -> %v", idsA, got)
	}
	d.removeManifest("deploy.yaml")

	// Removing the file removes both pods, and nothing of them is left.
	ips := []string{d.pod("multi-a").Status.PodIP, d.pod("multi-b").Status.PodIP}
	d.removeManifest("multi.yaml")
	d.waitGone("multi-a", 30*time.Second)
	d.waitGone("multi-b", 30*time.Second)
	d.eventually(15*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(ips...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}
