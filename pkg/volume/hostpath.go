package volume

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
)

// checkHostPath runs the kubelet's hostPath type check. It creates the path for
// DirectoryOrCreate (0755, with parents) and FileOrCreate (0644, empty; parents are not
// created, as on Kubernetes). The check follows symlinks. created is what it made, for
// rollback.
func checkHostPath(volName, p string, t corev1.HostPathType) (created string, err error) {
	if t == corev1.HostPathUnset {
		return "", nil
	}
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
