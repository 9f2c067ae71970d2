package sandbox

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// rmdirTree removes an empty cgroup and the empty cgroups below it, deepest first: after a
// crash, runc may not have removed a container's own cgroup. A cgroup that still has processes
// is left, and reported.
func rmdirTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, syscall.ENOENT) {
		errs = append(errs, &os.PathError{Op: "rmdir", Path: dir, Err: err})
	}
	return errors.Join(errs...)
}

// RemoveCgroup removes a pod's parent cgroup (a path such as /minipod/pod<uid>) from every
// mounted hierarchy, cgroup v1 controllers and the v2 unified tree alike. runc removes each
// container's own cgroup when the container is deleted, but not the parent that minipod asked
// it to create. Missing directories are not an error; a non-empty one is.
func RemoveCgroup(parent string) error {
	if parent == "" || parent == "/" {
		return nil
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var errs []error
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// mountinfo: ID parent major:minor root mountpoint options ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, fl := range fields {
			if fl == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) || len(fields) < 5 {
			continue
		}
		if t := fields[sep+1]; t != "cgroup" && t != "cgroup2" {
			continue
		}
		dir := filepath.Join(fields[4], parent)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := rmdirTree(dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
