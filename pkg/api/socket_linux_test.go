package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialAs connects to the unix socket at path as uid and gid without supplementary groups and
// returns the error of connect(2). It runs on an OS thread of its own whose credentials it
// changes with raw system calls: Linux credentials belong to a thread, and raw calls do not
// make the Go runtime change the other threads' too. The thread stays locked, so it ends with
// its goroutine and no other goroutine ever runs with those credentials.
func dialAs(path string, uid, gid int) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is thrown away
		for _, c := range []struct {
			name    string
			trap    uintptr
			a, b, c uintptr
		}{
			{"setgroups", syscall.SYS_SETGROUPS, 0, 0, 0},
			{"setresgid", syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)},
			{"setresuid", syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)},
		} {
			if _, _, e := syscall.RawSyscall(c.trap, c.a, c.b, c.c); e != 0 {
				errc <- fmt.Errorf("%s: %w", c.name, e)
				return
			}
		}
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer syscall.Close(fd)
		errc <- syscall.Connect(fd, &syscall.SockaddrUnix{Name: path})
	}()
	return <-errc
}

// The socket is never reachable with more than its final permissions: right after bind, before
// its mode is set, it has no group or other bits and a user other than root cannot connect,
// whatever the umask. The long path is one whose private temporary name would not fit in a
// socket address (108 bytes): the path the server used to bind directly under the umask and
// chmod after, leaving a moment in which anyone could connect and, once accepted, keep a
// root-equivalent connection.
func TestSocketNeverLooserThanItsMode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: connects as another user")
	}
	old := syscall.Umask(0) // the worst umask: a file created under it is open to all
	defer syscall.Umask(old)

	base := t.TempDir()
	// Other users must be able to reach the socket's directory, or the connect test proves
	// nothing.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const maxSocketPath = 107 // sun_path is 108 bytes with the terminating NUL
	long := filepath.Join(base, strings.Repeat("d", maxSocketPath-len(base)-len("//x/minipod.sock")), "x", "minipod.sock")
	if len(long) != maxSocketPath {
		t.Fatalf("long path is %d bytes, want %d", len(long), maxSocketPath)
	}

	for _, tc := range []struct {
		name     string
		path     string
		gid      int
		wantMode os.FileMode
	}{
		{"short path", filepath.Join(base, "s", "minipod.sock"), -1, 0o600},
		{"long path", long, -1, 0o600},
		{"long path with group", long, os.Getgid(), 0o660},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var atBind os.FileMode
			var dialErr error
			boundHook = func(p string) {
				fi, err := os.Lstat(p)
				if err != nil {
					t.Errorf("stat right after bind: %v", err)
					return
				}
				atBind = fi.Mode().Perm()
				dialErr = dialAs(p, 65534, 65534)
			}
			defer func() { boundHook = nil }()

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- NewServer(&fakeStore{}, &fakeRuntime{}, nil).ServeUnix(ctx, tc.path, 0, tc.gid) }()
			waitForAnswer(t, tc.path)
			fi, err := os.Lstat(tc.path)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("ServeUnix: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}

			if atBind&0o077 != 0 {
				t.Errorf("socket mode right after bind = %#o: open to group or others before its mode was set", atBind)
			}
			if !errors.Is(dialErr, syscall.EACCES) {
				t.Errorf("connect as uid 65534 right after bind: %v, want %v", dialErr, syscall.EACCES)
			}
			if got := fi.Mode().Perm(); got != tc.wantMode {
				t.Errorf("socket mode when serving = %#o, want %#o", got, tc.wantMode)
			}
		})
	}
}

// waitForAnswer waits until the server at sock answers a request: unlike a connect, which
// succeeds as soon as the socket is bound, an answer means that listenUnix has returned.
func waitForAnswer(t *testing.T, sock string) {
	t.Helper()
	c := &Client{Socket: sock}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := c.Health(context.Background())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server at %s never answered: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
