package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// NewNetNS creates a network namespace and pins it with a bind mount at dir/name, so that it
// outlives every process in it and CNI can work on it before the pause container starts.
// On failure nothing is left behind.
func NewNetNS(dir, name string) (string, error) {
	path, err := pinFile(dir, name)
	if err != nil {
		return "", err
	}
	unshare := func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare netns: %w", err)
		}
		return nil
	}
	err = inOtherNetNS(unshare, func() error {
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pin netns: %w", err)
		}
		// Still in the new namespace: its loopback comes up here. That is all CNI's loopback
		// plugin would do, and it spares a plugin process per pod.
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("bring up lo: %w", err)
		}
		return nil
	})
	if err != nil {
		unpin(path)
		return "", err
	}
	return path, nil
}

// pinFile creates the empty file dir/name that a network namespace is bind mounted on.
func pinFile(dir, name string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create netns dir: %w", err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("create netns file: %w", err)
	}
	f.Close()
	return path, nil
}

// unpin undoes a pin that failed half way.
func unpin(path string) {
	_ = unix.Unmount(path, unix.MNT_DETACH)
	_ = os.Remove(path)
}

// PinNetNS pins the network namespace of process pid with a bind mount at dir/name, as
// NewNetNS pins a new one, and brings its loopback up. It is for a namespace that the pod's
// pause container made in its own user namespace (hostUsers: false): the kernel mounts sysfs
// only for the user namespace that owns the network namespace. On failure nothing is left
// behind.
func PinNetNS(pid uint32, dir, name string) (string, error) {
	path, err := pinFile(dir, name)
	if err != nil {
		return "", err
	}
	err = unix.Mount(fmt.Sprintf("/proc/%d/ns/net", pid), path, "none", unix.MS_BIND, "")
	if err != nil {
		err = fmt.Errorf("pin netns of process %d: %w", pid, err)
	} else if err = InNetNS(path, loopbackUp); err != nil {
		err = fmt.Errorf("bring up lo: %w", err)
	}
	if err != nil {
		unpin(path)
		return "", err
	}
	return path, nil
}

// loopbackUp sets the "lo" interface of the calling thread's network namespace up.
func loopbackUp() error {
	_, err := linkFlags("lo", unix.IFF_UP)
	return err
}

// linkFlags adds the flags set (none: 0) to an interface of the calling thread's network
// namespace, and returns its flags.
func linkFlags(name string, set uint16) (uint16, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return 0, err
	}
	if ifr.Uint16()&set == set {
		return ifr.Uint16(), nil
	}
	ifr.SetUint16(ifr.Uint16() | set)
	return ifr.Uint16(), unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// InNetNS runs fn on an OS thread that has entered the network namespace at path: sockets fn
// makes belong to that namespace, and stay in it afterwards.
func InNetNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer target.Close()
	return inOtherNetNS(func() error {
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter netns %s: %w", path, err)
		}
		return nil
	}, fn)
}

// inOtherNetNS runs fn on a locked OS thread that enter has moved to another network namespace
// (setns and unshare change the calling thread's only). The thread goes back to the scheduler
// only once it is back in its own namespace; otherwise it stays locked and ends with this
// call's goroutine, so no other goroutine ever runs in the wrong namespace.
func inOtherNetNS(enter, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			// A failed setns or unshare leaves the thread where it was.
			goruntime.UnlockOSThread()
			errc <- err
			return
		}
		fnErr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("restore netns: %w", err))
			return // thread stays locked and is discarded
		}
		goruntime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}

// RemoveNetNS unpins and removes a network namespace made by NewNetNS. A missing one is not an
// error.
func RemoveNetNS(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// NetNSAlive reports whether path is still a pinned network namespace (it is not after a reboot
// wiped /run, or after someone unmounted it).
func NetNSAlive(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
