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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create netns dir: %w", err)
	}
	path := filepath.Join(dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return "", fmt.Errorf("create netns file: %w", err)
	}
	f.Close()

	errc := make(chan error, 1)
	go func() {
		// unshare changes the namespace of this OS thread only. The thread is returned to the
		// scheduler only if it is back in the original namespace; otherwise it stays locked and
		// dies with this goroutine, so no other goroutine ever runs in the wrong namespace.
		goruntime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			goruntime.UnlockOSThread()
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		var setupErr error
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			setupErr = fmt.Errorf("pin netns: %w", err)
		} else if err := loopbackUp(); err != nil {
			// Still in the new namespace: its loopback comes up here. That is all CNI's
			// loopback plugin would do, and it spares a plugin process per pod.
			setupErr = fmt.Errorf("bring up lo: %w", err)
		}
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(setupErr, fmt.Errorf("restore netns: %w", err))
			return // thread stays locked and is discarded
		}
		goruntime.UnlockOSThread()
		errc <- setupErr
	}()
	if err := <-errc; err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

// loopbackUp sets the "lo" interface of the calling thread's network namespace up.
func loopbackUp() error {
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
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
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
