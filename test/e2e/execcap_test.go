package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// An exec probe whose command writes without end does not fill the state dir's disk: the
// shim writes its output into a file there, whose blocks past the head the prober reads are
// freed while it runs (issue 20, item 4).
func TestExecProbeOutputCapped(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("chatty.yaml", `apiVersion: v1
kind: Pod
metadata: {name: chatty}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    readinessProbe:
      exec: {command: ["sh", "-c", "head -c 67108864 /dev/zero; touch /tmp/wrote; sleep 3600"]}
      periodSeconds: 5
      timeoutSeconds: 3600
`)
	// Never ready: its readiness probe is still running.
	d.eventually(60*time.Second, "chatty running", func() (bool, string) {
		p := d.pod("chatty")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		s := p.Status.ContainerStatuses[0].State
		return s.Running != nil, fmt.Sprintf("%+v", s)
	})
	d.eventually(60*time.Second, "the probe's 64 MiB written", func() (bool, string) {
		_, _, code := d.ctl("exec", "chatty", "--", "test", "-f", "/tmp/wrote")
		return code == 0, fmt.Sprintf("exit %d", code)
	})
	// The probe (its first attempt comes on the pod's first 5 s tick; no second one runs while
	// it does) now sleeps for the rest of the test with its output file open: what it wrote
	// must not stay on disk.
	d.eventually(5*time.Second, "the exec output's disk use under 4 MiB", func() (bool, string) {
		used := diskUse(filepath.Join(d.state, "exec"))
		return used < 4<<20, fmt.Sprintf("%d bytes in use", used)
	})
	d.removeAndCheck("chatty")
}

// diskUse is the sum of the blocks the files in dir occupy.
func diskUse(dir string) int64 {
	var used int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join(dir, e.Name()), &st) == nil {
			used += st.Blocks * 512
		}
	}
	return used
}
