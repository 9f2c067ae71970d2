package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A pod directory in the state dir whose sandbox record cannot be read is removed at start, but
// never through a mount: host data bound into it survives, and the mount goes (issue 20, item 9).
func TestUnreadableRecordKeepsHostData(t *testing.T) {
	d := newDaemon(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	pod := filepath.Join(d.state, "pods", "0123456789abcdef-corrupt")
	mnt := filepath.Join(pod, "volumes", "kubernetes.io~host-path", "data")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pod, "sandbox.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(host, mnt, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, syscall.MNT_DETACH) })
	d.start() // returns once the daemon is ready: what an earlier run left is dealt with
	if b, err := os.ReadFile(filepath.Join(host, "precious")); err != nil || string(b) != "keep me" {
		t.Errorf("host data behind the bind mount: %q, %v", b, err)
	}
	d.eventually(30*time.Second, "the pod directory without a record removed", func() (bool, string) {
		_, err := os.Stat(pod)
		return os.IsNotExist(err), "still there"
	})
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), pod) {
		t.Errorf("a mount under %s is left", pod)
	}
}
