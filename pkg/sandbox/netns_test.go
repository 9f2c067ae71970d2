package sandbox

import (
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNewNetNSLoopback checks that a namespace made by NewNetNS has its loopback up: the flag is
// set, and a TCP connection to 127.0.0.1 inside it goes through (it would not with lo down). It
// also checks that RemoveNetNS leaves nothing.
func TestNewNetNSLoopback(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	dir := t.TempDir()
	path, err := NewNetNS(dir, "lo-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNetNS(path); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s still there after RemoveNetNS: %v", path, err)
		}
	})
	if !NetNSAlive(path) {
		t.Fatalf("%s is not a pinned network namespace", path)
	}

	errc := make(chan error, 1)
	go func() {
		// As in NewNetNS: the thread goes back to the scheduler only in its own namespace.
		goruntime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		ns, err := os.Open(path)
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		checkErr := loopbackWorks()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("restore netns: %w", err)
			return // the thread stays locked and is discarded
		}
		goruntime.UnlockOSThread()
		errc <- checkErr
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// loopbackWorks runs in the namespace under test, on its locked thread: sockets made here
// belong to it. Accept and dial happen on this thread too, so the check needs no goroutine.
func loopbackWorks() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	if ifr.Uint16()&unix.IFF_UP == 0 {
		return fmt.Errorf("lo is down in the new namespace (flags %#x)", ifr.Uint16())
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1: %w", err)
	}
	defer l.Close()
	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		return fmt.Errorf("connect to 127.0.0.1: %w", err)
	}
	return c.Close()
}
