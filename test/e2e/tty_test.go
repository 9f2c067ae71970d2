package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A container with stdin and tty (the docs' shared process namespace example) runs with a
// terminal, and exec works in it (issue 23, deviation 2).
func TestStdinTTY(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("tty.yaml", `apiVersion: v1
kind: Pod
metadata: {name: tty}
spec:
  terminationGracePeriodSeconds: 1
  shareProcessNamespace: true
  containers:
  - name: web
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
  - name: shell
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "tty; exec sh"]
    stdin: true
    tty: true
`)
	d.waitRunning("tty", 60*time.Second)
	out, errOut, code := d.ctl("exec", "tty", "-c", "shell", "--", "sh", "-c", "ps")
	if code != 0 || !strings.Contains(out, "sleep") {
		t.Errorf("ps in the shell container: exit %d, %q %q; want the web container's processes", code, out, errOut)
	}
	// Its terminal's name went to the log: a terminal, not "not a tty".
	d.eventually(10*time.Second, "the shell's tty in its log", func() (bool, string) {
		out, errOut, _ := d.ctl("logs", "tty", "-c", "shell")
		return strings.Contains(out, "/dev/pts/"), fmt.Sprintf("log %q %s", out, errOut)
	})
	if p := d.pod("tty"); p.Status.ContainerStatuses[1].RestartCount != 0 {
		t.Errorf("the shell container restarted %d times", p.Status.ContainerStatuses[1].RestartCount)
	}
	d.removeAndCheck("tty")
}
