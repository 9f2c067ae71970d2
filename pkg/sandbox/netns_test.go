package sandbox

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
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

	if err := InNetNS(path, loopbackWorks); err != nil {
		t.Fatal(err)
	}
}

// loopbackWorks runs in the namespace under test, on InNetNS's locked thread: sockets made here
// belong to it. Accept and dial happen on this thread too, so the check needs no goroutine.
func loopbackWorks() error {
	flags, err := linkFlags("lo", 0)
	if err != nil {
		return err
	}
	if flags&unix.IFF_UP == 0 {
		return fmt.Errorf("lo is down in the new namespace (flags %#x)", flags)
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

// PinNetNS pins the network namespace a process made (a user namespace pod's pause container),
// brings its loopback up, and leaves nothing when the process is gone.
func TestPinNetNS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	dir := t.TempDir()
	path, err := PinNetNS(uint32(cmd.Process.Pid), dir, "pinned")
	if err != nil {
		t.Fatal(err)
	}
	if !NetNSAlive(path) {
		t.Fatalf("%s is no pinned network namespace", path)
	}
	var flags uint16
	if err := InNetNS(path, func() (err error) { flags, err = linkFlags("lo", 0); return err }); err != nil || flags&unix.IFF_UP == 0 {
		t.Errorf("lo flags %#x, %v; want up", flags, err)
	}
	if err := RemoveNetNS(path); err != nil {
		t.Fatal(err)
	}
	// A process that is gone: nothing is left.
	if _, err := PinNetNS(1<<30, dir, "gone"); err == nil {
		t.Error("PinNetNS of no process: no error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("left in %s: %v", dir, entries)
	}
}
