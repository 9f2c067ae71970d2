package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The root filesystems of the containers that start right after the sandbox are made while the
// pause container starts (pkg/pod/rootfs.go), under one lease per sandbox. These pods cover what
// can happen to such a snapshot: taken by its container, never made (the image is missing), made
// but not taken (the container's config fails), and made for the first init container only.
const aheadPods = `apiVersion: v1
kind: Pod
metadata: {name: twin}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - {name: a, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]}
  - {name: b, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: staged}
spec:
  terminationGracePeriodSeconds: 5
  initContainers:
  - {name: first, image: minipod.local/busybox:1.35, command: ["true"]}
  - {name: second, image: minipod.local/busybox:1.35, command: ["true"]}
  containers:
  - {name: main, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]}
---
apiVersion: v1
kind: Pod
metadata: {name: partial}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - {name: ok, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]}
  - {name: absent, image: minipod.local/nothing:1, imagePullPolicy: Never}
  - name: unset
    image: minipod.local/busybox:1.35
    env: [{name: X, valueFrom: {configMapKeyRef: {name: nosuchmap, key: k}}}]
`

func TestRootfsAhead(t *testing.T) {
	d := newDaemon(t)
	d.start()
	for i, doc := range strings.Split(aheadPods, "---\n") {
		d.writeManifest([]string{"twin", "staged", "partial"}[i]+".yaml", doc)
	}
	d.waitRunning("twin", 60*time.Second)
	d.waitRunning("staged", 60*time.Second)
	d.eventually(60*time.Second, "partial: ok running, absent and unset waiting", func() (bool, string) {
		p := d.pod("partial")
		if p == nil {
			return false, "not listed"
		}
		want := map[string]string{"ok": "", "absent": "ErrImageNeverPull", "unset": "CreateContainerConfigError"}
		for _, c := range p.Status.ContainerStatuses {
			w, ok := want[c.Name]
			switch {
			case !ok:
				continue
			case w == "" && c.State.Running == nil:
				return false, fmt.Sprintf("%s: %+v", c.Name, c.State)
			case w != "" && (c.State.Waiting == nil || c.State.Waiting.Reason != w):
				return false, fmt.Sprintf("%s: %+v", c.Name, c.State)
			}
			delete(want, c.Name)
		}
		return len(want) == 0, fmt.Sprintf("no status for %v", want)
	})

	// Made ahead: both of twin's containers, staged's first init container only, and partial's
	// two containers whose image is here (absent's image is not, so nothing was made for it).
	for pod, want := range map[string]int{"twin": 2, "staged": 1, "partial": 2} {
		if got, ok := rootfsAhead(t, d, pod); !ok || got != want {
			t.Errorf("pod %s: %d root filesystems made ahead (logged: %v), want %d", pod, got, ok, want)
		}
	}

	// The leases end once the containers exist, and unset's snapshot, made but never taken by
	// a container, is gone while its pod lives on: what is left is one snapshot per container
	// record.
	d.eventually(15*time.Second, "no lease, no snapshot without a container", func() (bool, string) {
		leases := ctrLines(t, d, "leases", "ls")
		if len(leases) > 1 {
			return false, "leases: " + strings.Join(leases[1:], "; ")
		}
		ids := map[string]bool{}
		for _, id := range ctrLines(t, d, "containers", "ls", "-q") {
			ids[id] = true
		}
		var stray []string
		for _, line := range ctrLines(t, d, "snapshots", "ls") {
			if f := strings.Fields(line); len(f) > 0 && strings.Contains(line, "Active") && !ids[f[0]] {
				stray = append(stray, f[0])
			}
		}
		return len(stray) == 0, fmt.Sprintf("active snapshots without a container: %v", stray)
	})
	d.removeAndCheck("twin", "staged", "partial")
}

// rootfsAhead reads from the daemon's log how many root filesystems were made ahead for the
// pod's sandbox (the "sandbox ready" line's rootfsAhead).
func rootfsAhead(t *testing.T, d *daemon, pod string) (int, bool) {
	t.Helper()
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, `msg="sandbox ready"`) || !strings.Contains(line, " pod=default/"+pod+" ") {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "rootfsAhead="); ok {
				n, err := strconv.Atoi(v)
				return n, err == nil
			}
		}
	}
	return 0, false
}

// ctrLines runs ctr in the daemon's namespace and returns its output's non-empty lines.
func ctrLines(t *testing.T, d *daemon, args ...string) []string {
	t.Helper()
	out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).Output()
	if err != nil {
		t.Fatalf("ctr %s: %v", strings.Join(args, " "), err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
