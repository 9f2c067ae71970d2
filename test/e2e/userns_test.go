package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A pod with hostUsers: false beyond what the conformance scenarios look at: root inside owns
// its root filesystem, emptyDir and pod files and can write them; exec and a restarted
// container join the pod's user namespace, also after a daemon restart that adopted the pod;
// the range stays the pod's across that restart; nothing is left once it is gone, its range
// file included.
const usernsPod = `apiVersion: v1
kind: Pod
metadata: {name: userns}
spec:
  hostUsers: false
  terminationGracePeriodSeconds: 2
  volumes: [{name: scratch, emptyDir: {}}]
  containers:
  - name: a
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "touch /etc/made && echo x > /scratch/f && echo ok >> /etc/hosts && trap 'exit 0' TERM; while [ ! -e /scratch/crash ]; do sleep 0.2; done; rm /scratch/crash; exit 3"]
    volumeMounts: [{name: scratch, mountPath: /scratch}]
`

func TestUserNamespace(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("userns.yaml", usernsPod)
	p := d.waitRunning("userns", 60*time.Second)
	uidMap := func() string {
		out, _, code := d.ctl("exec", "userns", "-c", "a", "--", "cat", "/proc/self/uid_map")
		if code != 0 {
			t.Fatalf("exec: exit %d", code)
		}
		return strings.Join(strings.Fields(out), " ")
	}
	m := uidMap()
	f := strings.Fields(m)
	if len(f) != 3 || f[0] != "0" || f[2] != "65536" || f[1] == "0" {
		t.Fatalf("uid_map %q, want 0 <range> 65536", m)
	}
	for _, c := range []struct{ cmd, want string }{
		{"stat -c %u:%g / /etc/made /scratch /scratch/f /etc/hosts /etc/resolv.conf /etc/hostname /dev/termination-log", strings.Repeat("0:0\n", 8)},
		{"tail -n 1 /etc/hosts", "ok\n"},
		{"id -u", "0\n"},
	} {
		out, _, code := d.ctl("exec", "userns", "-c", "a", "--", "sh", "-c", c.cmd)
		if code != 0 || out != c.want {
			t.Errorf("%s: %q (exit %d), want %q", c.cmd, out, code, c.want)
		}
	}
	uid := string(p.UID)
	rangeFile := filepath.Join(d.state, "pods", uid, "userns")
	if b, err := os.ReadFile(rangeFile); err != nil || !strings.Contains(string(b), `"hostId":`+f[1]) {
		t.Errorf("range file %s: %s, %v; want host ID %s", rangeFile, b, err, f[1])
	}

	crash := func(wantRestarts int32) {
		t.Helper()
		if _, _, code := d.ctl("exec", "userns", "-c", "a", "--", "touch", "/scratch/crash"); code != 0 {
			t.Fatalf("exec touch: exit %d", code)
		}
		d.eventually(60*time.Second, fmt.Sprintf("restart %d running", wantRestarts), func() (bool, string) {
			p := d.pod("userns")
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, "no status"
			}
			cs := p.Status.ContainerStatuses[0]
			return cs.RestartCount == wantRestarts && cs.State.Running != nil, fmt.Sprintf("%+v", cs)
		})
		if got := uidMap(); got != m {
			t.Errorf("after restart %d uid_map %q, want %q", wantRestarts, got, m)
		}
	}
	crash(1)

	// A daemon restart adopts the pod; its range and namespace stay, and a container started
	// afterwards joins it.
	d.stop(syscall.SIGTERM)
	d.start()
	d.waitRunning("userns", 60*time.Second)
	if got := uidMap(); got != m {
		t.Errorf("after daemon restart uid_map %q, want %q", got, m)
	}
	crash(2)

	d.removeAndCheck("userns")
	if _, err := os.Stat(rangeFile); !os.IsNotExist(err) {
		t.Errorf("range file after the pod is gone: %v", err)
	}
	// The root filesystems' copies owned by the range go with the last snapshot made on them
	// (containerd's garbage collector).
	d.eventually(30*time.Second, "no remapped snapshot left", func() (bool, string) {
		out := d.ctr(t, "snapshots", "ls")
		return !strings.Contains(out, "userns-"), out
	})
}
