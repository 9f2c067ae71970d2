package sandbox

import (
	"fmt"
	"net"
	"os"
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
