package source

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// loadWithin runs s.Load, failing the test when it does not return within d: a read that
// waits on a FIFO would hang for good.
func loadWithin(t *testing.T, s *Source, d time.Duration) Snapshot {
	t.Helper()
	done := make(chan Snapshot, 1)
	go func() { done <- s.Load() }()
	select {
	case snap := <-done:
		return snap
	case <-time.After(d):
		t.Fatalf("Load did not return within %s", d)
		return Snapshot{}
	}
}

// A file that is not a regular file (issue 20) is a problem with a reason, read without
// waiting, whether it is in the directory or behind a symlink; the good file beside it
// still gives its pod.
func TestLoadNotRegular(t *testing.T) {
	for _, tt := range []struct {
		name  string
		root  bool // mknod needs root
		setup func(t *testing.T, dir string) string
		want  string // in the problem's message
	}{
		{"fifo", false, func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "fifo.yaml")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a named pipe (FIFO), not a regular file"},
		{"symlink to a fifo", false, func(t *testing.T, dir string) string {
			target := filepath.Join(t.TempDir(), "fifo")
			if err := syscall.Mkfifo(target, 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, "link.yaml")
			mustSymlink(t, target, p)
			return p
		}, "is a named pipe (FIFO), not a regular file"},
		{"socket", false, func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "sock.yaml")
			l, err := net.Listen("unix", p)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			if err := os.Chmod(p, 0o644); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a socket, not a regular file"},
		{"symlink to /dev/zero", false, func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "zero.yaml")
			mustSymlink(t, "/dev/zero", p)
			return p
		}, "is a character device, not a regular file"},
		{"character device", true, func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "null.yaml")
			if err := unix.Mknod(p, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a character device, not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.root && !isRoot {
				t.Skip("needs root")
			}
			s, dir := newSource(t)
			writeFile(t, dir, "m.yaml", podYAML("good", "busybox"))
			path := tt.setup(t, dir)
			for _, step := range []string{"first load", "unchanged"} {
				snap := loadWithin(t, s, 5*time.Second)
				if got := pods(snap); !slices.Equal(got, []string{"default/good<-m.yaml busybox"}) {
					t.Errorf("%s: pods %q, want the good file's", step, got)
				}
				if len(snap.Problems) != 1 {
					t.Fatalf("%s: problems %q, want one", step, problems(snap))
				}
				pr := snap.Problems[0]
				if pr.Path != path || pr.Name != filepath.Base(path) || pr.Reason != ReasonUnreadable || !strings.Contains(pr.Message, path+" "+tt.want) {
					t.Errorf("%s: problem %+v, want %s %s with %q", step, pr, path, ReasonUnreadable, tt.want)
				}
			}
		})
	}
}

// A file turned into a FIFO after its stat is refused on the opened file, not waited on.
func TestLoadSwappedForFIFO(t *testing.T) {
	s, dir := newSource(t)
	p := writeFile(t, dir, "m.yaml", podYAML("good", "busybox"))
	info, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan *fileState, 1)
	go func() { done <- s.loadFile(p, info, nil) }()
	select {
	case f := <-done:
		if f == nil || f.err == nil || !strings.Contains(f.err.Error(), "named pipe") {
			t.Errorf("loadFile of a swapped-in FIFO: %+v", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loadFile waits on the FIFO")
	}
}

// A FIFO dropped in the directory while Run watches it is reported, and a manifest written
// afterwards is read: the source goes on.
func TestRunFIFO(t *testing.T) {
	dir := newDir(t)
	r := run(t, Config{Dir: dir})
	r.waitCount(t, 1)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	r.waitFor(t, "the FIFO as a problem", func(s Snapshot) bool {
		return slices.Equal(problems(s), []string{"fifo.yaml: /fifo.yaml UnreadableManifest running=false"})
	})
	renameIn(t, dir, "after.yaml", podYAML("after", "busybox"))
	r.waitFor(t, "the pod written after the FIFO", hasPods("after"))
}

// Alive holds while Run's loop turns, also when nothing happens, and fails while the loop is
// stuck (here in out); it holds again once the loop goes on.
func TestAlive(t *testing.T) {
	dir := newDir(t)
	s := New(Config{Dir: dir, InsecurePerms: !isRoot})
	if s.Alive(time.Hour) {
		t.Error("alive before Run")
	}
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, r.add) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	r.waitCount(t, 1)
	// Nothing happens in the directory: the loop still turns every heartbeatPeriod.
	time.Sleep(2*heartbeatPeriod + 200*time.Millisecond)
	if !s.Alive(heartbeatPeriod + 500*time.Millisecond) {
		t.Error("not alive while idle")
	}
	held, release := r.holdNext()
	defer release()
	renameIn(t, dir, "a.yaml", podYAML("a", "busybox"))
	<-held
	time.Sleep(time.Second)
	if s.Alive(500 * time.Millisecond) {
		t.Error("alive while stuck in out for a second")
	}
	release()
	r.waitFor(t, "pod a", hasPods("a"))
	deadline := time.Now().Add(5 * time.Second)
	for !s.Alive(500*time.Millisecond) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !s.Alive(500 * time.Millisecond) {
		t.Error("not alive again after the loop went on")
	}
}
