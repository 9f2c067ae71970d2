package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Pod-level resources (spec.resources) bound the pod's cgroup, under which runc puts every
// container's: a container with no limit of its own is held by the pod's, and reads it through
// the downward API (issue 23). The cgroup files are read on the host, where the kernel keeps
// them; this machine's cgroup v1 hierarchies, or the v2 tree.
func TestPodLevelResources(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("podres.yaml", `apiVersion: v1
kind: Pod
metadata: {name: podres}
spec:
  terminationGracePeriodSeconds: 1
  resources:
    requests: {cpu: 250m, memory: 32Mi}
    limits: {cpu: 1250m, memory: 64Mi}
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env:
    - {name: MEM_LIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory}}}
`)
	p := d.waitRunning("podres", 60*time.Second)
	parent := "/" + d.namespace + "/pod" + string(p.UID)
	read := func(parts ...string) string {
		b, err := os.ReadFile(filepath.Join(append([]string{"/sys/fs/cgroup"}, parts...)...))
		if err != nil {
			t.Errorf("%v", err)
		}
		return strings.TrimSpace(string(b))
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		if got := read(parent, "memory.max"); got != "67108864" {
			t.Errorf("pod memory.max %q, want 67108864", got)
		}
		if got := read(parent, "cpu.max"); got != "125000 100000" {
			t.Errorf("pod cpu.max %q, want 125000 100000", got)
		}
	} else {
		if got := read("memory", parent, "memory.limit_in_bytes"); got != "67108864" {
			t.Errorf("pod memory.limit_in_bytes %q, want 67108864", got)
		}
		if got := read("cpu", parent, "cpu.cfs_quota_us"); got != "125000" {
			t.Errorf("pod cpu.cfs_quota_us %q, want 125000", got)
		}
		if got := read("cpu", parent, "cpu.shares"); got != "256" {
			t.Errorf("pod cpu.shares %q, want 256", got)
		}
	}
	out, errOut, code := d.ctl("exec", "podres", "--", "sh", "-c", "echo $MEM_LIMIT")
	if code != 0 || strings.TrimSpace(out) != "67108864" {
		t.Errorf("MEM_LIMIT %q (exit %d %s), want the pod's 67108864", out, code, errOut)
	}
	d.removeAndCheck("podres")
}
