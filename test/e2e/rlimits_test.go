package e2e

import (
	"strings"
	"testing"
	"time"
)

// Containers inherit the runtime's open-files limit, as under containerd's CRI, not the
// default spec's 1024:1024 (issue 23, deviation 8).
func TestOpenFilesLimitInherited(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("nofile.yaml", `apiVersion: v1
kind: Pod
metadata: {name: nofile}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	d.waitRunning("nofile", 60*time.Second)
	out, errOut, code := d.ctl("exec", "nofile", "--", "sh", "-c", "ulimit -Hn")
	if code != 0 {
		t.Fatalf("exec: %d %s", code, errOut)
	}
	if got := strings.TrimSpace(out); got == "1024" {
		t.Errorf("hard open-files limit %s: the default spec's, not the runtime's", got)
	}
	d.removeAndCheck("nofile")
}
