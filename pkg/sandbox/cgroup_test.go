package sandbox

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// mountedHierarchies returns the mount points of the cgroup hierarchies, skipping the test when
// there are none it may write to.
func mountedHierarchies(t testing.TB) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to make cgroups")
	}
	roots, err := cgroupMounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(roots) == 0 {
		t.Skip("no cgroup hierarchy mounted")
	}
	return roots
}

// makeCgroup makes parent (and child, when set, below it) in every hierarchy, and removes
// whatever is left of both when the test ends.
func makeCgroup(t testing.TB, roots []string, parent, child string) {
	t.Helper()
	for _, r := range roots {
		dir := filepath.Join(r, parent, child)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range roots {
			_ = syscall.Rmdir(filepath.Join(r, parent, child))
			_ = syscall.Rmdir(filepath.Join(r, parent))
			_ = syscall.Rmdir(filepath.Join(r, filepath.Dir(parent)))
		}
	})
}

func assertNoCgroup(t *testing.T, roots []string, parent string) {
	t.Helper()
	for _, r := range roots {
		if _, err := os.Stat(filepath.Join(r, parent)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (stat: %v)", filepath.Join(r, parent), err)
		}
	}
}

func TestRemoveCgroup(t *testing.T) {
	roots := mountedHierarchies(t)
	base := fmt.Sprintf("/minipod-test-%d", os.Getpid())

	for _, tc := range []struct{ name, child string }{
		{"empty", ""},
		// What a crash leaves when runc never removed a container's own cgroup.
		{"container cgroup left below it", "ctr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := base + "/pod" + tc.child
			makeCgroup(t, roots, parent, tc.child)
			if err := RemoveCgroup(parent); err != nil {
				t.Fatal(err)
			}
			assertNoCgroup(t, roots, parent)
			// Gone already is not an error.
			if err := RemoveCgroup(parent); err != nil {
				t.Fatalf("second removal: %v", err)
			}
		})
	}

	t.Run("process left in it", func(t *testing.T) {
		parent := base + "/podproc"
		makeCgroup(t, roots, parent, "ctr")
		cmd := exec.Command("sleep", "600")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
		})
		// Into the container cgroup of one hierarchy: RemoveCgroup has to find it there.
		procs := filepath.Join(roots[0], parent, "ctr", "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Skipf("cannot move a process into %s: %v", procs, err)
		}
		if err := RemoveCgroup(parent); err != nil {
			t.Fatal(err)
		}
		assertNoCgroup(t, roots, parent)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the process in the pod's cgroup was not killed")
		}
	})
	// Each subtest's clean-up removes base too.
}

// BenchmarkRemoveCgroup times the removal of an empty pod cgroup from every hierarchy, which
// is what a pod's teardown does once runc has removed its containers' own cgroups.
func BenchmarkRemoveCgroup(b *testing.B) {
	roots := mountedHierarchies(b)
	base := fmt.Sprintf("/minipod-bench-%d", os.Getpid())
	b.Cleanup(func() {
		for _, r := range roots {
			_ = syscall.Rmdir(filepath.Join(r, base))
		}
	})
	for i := 0; i < b.N; i++ {
		parent := fmt.Sprintf("%s/pod%d", base, i)
		b.StopTimer()
		for _, r := range roots {
			if err := os.MkdirAll(filepath.Join(r, parent), 0o755); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := RemoveCgroup(parent); err != nil {
			b.Fatal(err)
		}
	}
}
