package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A hostPath volume that is a character device gives the container that mounts it that device
// and no other, without privileged: the device cgroup has a rule for exactly its numbers. The
// node is one the default device list does not allow (c 1 11, /dev/kmsg's), made by the test in
// a directory of its own. A container of the same pod without the volume that makes the same
// node itself is refused it; a readOnly mount refuses writes; allowedDevices refuses what it
// does not match, on the node as mounted (issue 22).
func TestHostPathDevice(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "kmsg0")
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 11))); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("policy:\n  allowedDevices: [%s/kmsg*]\n", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "--config", cfg)
	d.start()
	loop := `command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1; done"]`
	d.writeManifest("dev.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: dev}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: dev, hostPath: {path: %s, type: CharDevice}}
  containers:
  - name: writer
    image: minipod.local/busybox:1.35
    %s
    volumeMounts: [{name: dev, mountPath: /dev/mine}]
  - name: reader
    image: minipod.local/busybox:1.35
    %s
    volumeMounts: [{name: dev, mountPath: /dev/mine, readOnly: true}]
  - name: other
    image: minipod.local/busybox:1.35
    %s
`, node, loop, loop, loop))
	d.writeManifest("refused.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: refused}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: devnull, hostPath: {path: /dev/null, type: CharDevice}}
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    %s
    volumeMounts: [{name: devnull, mountPath: /dev/x}]
`, loop))
	late := filepath.Join(dir, "kmsg-late")
	d.writeManifest("late.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - {name: dev, hostPath: {path: %s, type: CharDevice}}
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    %s
    volumeMounts: [{name: dev, mountPath: /dev/mine}]
`, late, loop))
	d.waitRunning("dev", 60*time.Second)
	// A device not there yet: the kubelet's hostPath type error, until it is plugged in.
	d.eventually(30*time.Second, "late waits for its device", func() (bool, string) {
		p := d.pod("late")
		if p == nil {
			return false, "late not listed"
		}
		for _, c := range p.Status.ContainerStatuses {
			if w := c.State.Waiting; w != nil && strings.Contains(w.Message, "FailedMount") && strings.Contains(w.Message, "is not a character device") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", p.Status.ContainerStatuses)
	})
	if err := unix.Mknod(late, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 11))); err != nil {
		t.Fatal(err)
	}
	d.waitRunning("late", 60*time.Second)
	sh := func(ctr, script string) (string, int) {
		out, errOut, code := d.ctl("exec", "dev", "-c", ctr, "--", "sh", "-c", script)
		return out + errOut, code
	}
	if out, code := sh("writer", "echo minipod e2e device test > /dev/mine"); code != 0 {
		t.Errorf("writer: the mounted device refused: exit %d %s", code, out)
	}
	if out, code := sh("reader", "echo minipod e2e device test > /dev/mine"); code == 0 {
		t.Errorf("reader: a readOnly device mount took a write: %s", out)
	}
	out, code := sh("other", "mknod /tmp/k c 1 11 && echo minipod e2e device test > /tmp/k")
	if code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("other container: the device it made itself was not refused by its cgroup: exit %d %s", code, out)
	}
	waitRefused(d, "refused", "PolicyViolation",
		"spec.volumes[0].hostPath.path: Forbidden: device /dev/null is not allowed by this node's policy (allowedDevices: "+dir+"/kmsg*)")
	d.removeAndCheck("dev", "late", "refused")
}
