package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// checkHostPath runs the kubelet's hostPath type check on the clean path p. It creates the
// path for DirectoryOrCreate (0755, with parents) and FileOrCreate (0644, empty; parents are
// not created, as on Kubernetes). Without allowed (the node policy's allowedHostPaths unset)
// the check follows symlinks wherever they go, as a kubelet's; with it, p is opened below the
// allowed directory that admits it (openHostPath), and a path that leaves it is refused with
// a message naming fieldPath. undo, when not nil, removes what it created, for rollback.
func checkHostPath(volName, fieldPath, p string, t corev1.HostPathType, allowed []string) (undo func(), err error) {
	if t == corev1.HostPathUnset {
		return nil, nil
	}
	if allowed != nil {
		if prefix, ok := allowedPrefix(allowed, p); !ok || prefix != p || t != corev1.HostPathFileOrCreate {
			return checkHostPathBelow(volName, fieldPath, p, t, allowed)
		}
		// FileOrCreate of an allowed path itself: its parent is above every allowed
		// directory, where no pod can plant anything, so the plain check is the same.
	}
	created, err := checkHostPathAnywhere(volName, p, t)
	if err != nil || created == "" {
		return nil, err
	}
	// Undo only what is still as we made it: empty directories, empty files.
	return func() {
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			_ = os.Remove(p)
			return
		}
		removeEmptyDirs(p, created)
	}, nil
}

// checkHostPathAnywhere is checkHostPath without a policy: it follows symlinks. created is
// the topmost path it made.
func checkHostPathAnywhere(volName, p string, t corev1.HostPathType) (created string, err error) {
	fail := func(what string) error {
		return failedMount(nil, "volume %q: hostPath type check failed: %s is not %s (type %s)", volName, p, what, t)
	}
	fi, statErr := os.Stat(p)
	exists := statErr == nil
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) {
		return "", failedMount(statErr, "volume %q: hostPath type check failed: %v", volName, statErr)
	}
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		if !exists {
			created, err := mkdirAllCreated(p, 0755)
			if err != nil {
				return "", failedMount(err, "volume %q: hostPath type %s: %v", volName, t, err)
			}
			return created, nil
		}
		fallthrough
	case corev1.HostPathDirectory:
		if !exists || !fi.IsDir() {
			return "", fail("a directory")
		}
	case corev1.HostPathFileOrCreate:
		if !exists {
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0644)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return "", failedMount(err, "volume %q: hostPath type %s: %v", volName, t, err)
			}
			if err == nil {
				f.Close()
				if err := os.Chmod(p, 0644); err != nil {
					return "", failedMount(err, "volume %q: hostPath type %s: %v", volName, t, err)
				}
				return p, nil
			}
			if fi, statErr = os.Stat(p); statErr != nil {
				return "", fail("a file")
			}
		}
		fallthrough
	case corev1.HostPathFile:
		if fi == nil || !fi.Mode().IsRegular() {
			return "", fail("a file")
		}
	case corev1.HostPathSocket:
		if !exists || fi.Mode().Type() != fs.ModeSocket {
			return "", fail("a socket file")
		}
	case corev1.HostPathCharDev:
		if !exists || fi.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice {
			return "", fail("a character device")
		}
	case corev1.HostPathBlockDev:
		if !exists || fi.Mode().Type() != fs.ModeDevice {
			return "", fail("a block device")
		}
	default:
		return "", failedMount(nil, "volume %q: unknown hostPath type %q", volName, t)
	}
	return "", nil
}

// mkdirAllCreated is os.MkdirAll that chmods every directory it creates to perm (whatever the
// umask) and returns the topmost one it created.
func mkdirAllCreated(p string, perm os.FileMode) (string, error) {
	p = filepath.Clean(p)
	var missing []string
	for d := p; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	if err := os.MkdirAll(p, perm); err != nil {
		return "", err
	}
	for _, d := range missing {
		if err := os.Chmod(d, perm); err != nil {
			return "", err
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	return missing[len(missing)-1], nil
}

// forbiddenPath is the policy refusing a host path, with the field it came from.
func forbiddenPath(reason, volName, fieldPath string, err error) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf("volume %q: %s: Forbidden: %v", volName, fieldPath, err), Err: err}
}

// checkHostPathBelow is checkHostPath under allowedHostPaths: every look at the path, and
// every directory or file it makes, goes through descriptors below the allowed directory.
func checkHostPathBelow(volName, fieldPath, p string, t corev1.HostPathType, allowed []string) (undo func(), err error) {
	fail := func(what string) error {
		return failedMount(nil, "volume %q: hostPath type check failed: %s is not %s (type %s)", volName, p, what, t)
	}
	opFail := func(err error, format string) error {
		if forbidden(err) {
			return forbiddenPath(ReasonFailedMount, volName, fieldPath, err)
		}
		return failedMount(err, format, volName, t, err)
	}
	var st unix.Stat_t
	exists := true
	switch t {
	case corev1.HostPathDirectoryOrCreate:
		h, err := openHostPath(allowed, p, true, 0o755)
		if err != nil {
			return nil, opFail(err, "volume %q: hostPath type %s: %v")
		}
		err = unix.Fstat(h.fd, &st)
		h.close()
		if len(h.created) > 0 || h.rootTop != "" {
			undo = h.undo
		}
		if err != nil {
			return undo, failedMount(err, "volume %q: hostPath type check failed: %v", volName, err)
		}
	case corev1.HostPathFileOrCreate:
		var err error
		if undo, err = createFileBelow(allowed, p, &st); err != nil {
			return undo, opFail(err, "volume %q: hostPath type %s: %v")
		}
	default:
		h, err := openHostPath(allowed, p, false, 0)
		switch {
		case errors.Is(err, unix.ENOENT):
			exists = false
		case err != nil:
			return nil, opFail(err, "volume %q: hostPath type check failed (type %s): %v")
		default:
			err = unix.Fstat(h.fd, &st)
			h.close()
			if err != nil {
				return nil, failedMount(err, "volume %q: hostPath type check failed: %v", volName, err)
			}
		}
	}
	typ := st.Mode & unix.S_IFMT
	var ok bool
	var what string
	switch t {
	case corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory:
		ok, what = typ == unix.S_IFDIR, "a directory"
	case corev1.HostPathFileOrCreate, corev1.HostPathFile:
		ok, what = typ == unix.S_IFREG, "a file"
	case corev1.HostPathSocket:
		ok, what = typ == unix.S_IFSOCK, "a socket file"
	case corev1.HostPathCharDev:
		ok, what = typ == unix.S_IFCHR, "a character device"
	case corev1.HostPathBlockDev:
		ok, what = typ == unix.S_IFBLK, "a block device"
	default:
		return undo, failedMount(nil, "volume %q: unknown hostPath type %q", volName, t)
	}
	if !exists || !ok {
		return undo, fail(what)
	}
	return undo, nil
}

// createFileBelow makes p an empty file (0644) unless something is there, through its parent
// opened below the allowed directory, and stats what is there into st. undo removes the file
// it made while it is still empty.
func createFileBelow(allowed []string, p string, st *unix.Stat_t) (undo func(), err error) {
	parent, name := filepath.Dir(p), filepath.Base(p)
	h, err := openHostPath(allowed, parent, false, 0)
	if err != nil {
		return nil, err
	}
	defer h.close()
	fd, err := unix.Openat(h.fd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if errors.Is(err, unix.EEXIST) {
		e, err := openHostPath(allowed, p, false, 0)
		if err != nil {
			return nil, err
		}
		defer e.close()
		return nil, unix.Fstat(e.fd, st)
	}
	if err != nil {
		return nil, &os.PathError{Op: "create", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, 0o644); err != nil {
		return nil, &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	undo = func() {
		h, err := openHostPath(allowed, parent, false, 0)
		if err != nil {
			return
		}
		defer h.close()
		var st unix.Stat_t
		if unix.Fstatat(h.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == 0 {
			_ = unix.Unlinkat(h.fd, name, 0)
		}
	}
	return undo, unix.Fstat(fd, st)
}
