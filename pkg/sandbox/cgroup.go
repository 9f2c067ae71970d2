package sandbox

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// killCgroupProcs sends SIGKILL to every process in the cgroup tree at dir and waits, up to
// two seconds, for them to be gone.
func killCgroupProcs(dir string) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		var pids []int
		_ = filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() || e.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
					pids = append(pids, pid)
				}
			}
			return nil
		})
		if len(pids) == 0 || time.Now().After(deadline) {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond) // the kernel needs a moment to reap them
	}
}

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
	roots, err := cgroupMounts()
	if err != nil {
		return err
	}
	var errs []error
	for _, root := range roots {
		dir := filepath.Join(root, parent)
		if err := removeCgroupDir(dir); err != nil {
			// Processes are left in the pod's cgroup: a task whose creation a crash of the
			// daemon interrupted can outlive its container record. They are this pod's and
			// nobody else's: kill them, as the kubelet does with a pod cgroup's leftovers,
			// and try again once they are gone.
			killCgroupProcs(dir)
			if err := rmdirTree(dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroupDir removes one hierarchy's pod cgroup. After a normal teardown runc has removed
// the containers' cgroups and the pod's is empty: one rmdir. Only a cgroup that still has
// cgroups below it (EBUSY) is read, which is a crash's leftover.
func removeCgroupDir(dir string) error {
	err := syscall.Rmdir(dir)
	if err == nil || errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return rmdirTree(dir)
}

// cgroupRoots caches the mount points of the cgroup hierarchies. They are mounted at boot
// and stay; reading them from mountinfo for each pod cost more than the removal itself, and
// mountinfo grows by a line per running pod (its netns) and per container (its root
// filesystem).
var cgroupRoots struct {
	sync.Mutex
	dirs []string // nil: not read yet, or no hierarchy was mounted then
}

func cgroupMounts() ([]string, error) {
	cgroupRoots.Lock()
	defer cgroupRoots.Unlock()
	if cgroupRoots.dirs != nil {
		return cgroupRoots.dirs, nil
	}
	dirs, err := readCgroupMounts()
	if err != nil || len(dirs) == 0 {
		// Nothing mounted yet is not remembered: it is read again next time.
		return dirs, err
	}
	cgroupRoots.dirs = dirs
	return dirs, nil
}

// readCgroupMounts returns the mount point of every cgroup hierarchy, v1 and v2, once each.
func readCgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var roots []string
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
		if !seen[fields[4]] {
			seen[fields[4]] = true
			roots = append(roots, fields[4])
		}
	}
	return roots, sc.Err()
}
