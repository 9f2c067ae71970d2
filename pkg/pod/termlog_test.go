package pod

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The termination message file is writable by every user, whatever the daemon's umask: a
// container running as a non-root user writes its message there too, as on a kubelet.
func TestTermLogWritableByAll(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "0.termination-log")
	if err := os.WriteFile(p, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := createTermLog(p); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o666 || st.Size() != 0 {
		t.Errorf("mode %v size %d, want -rw-rw-rw- and empty", st.Mode().Perm(), st.Size())
	}
	// A link planted in its place is not followed.
	link := filepath.Join(dir, "1.termination-log")
	if err := os.Symlink("/etc/passwd", link); err != nil {
		t.Fatal(err)
	}
	if err := createTermLog(link); err == nil {
		t.Error("a symbolic link was opened")
	}
}
