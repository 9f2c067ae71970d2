package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// PodCgroupLimits are the limits of a pod's own cgroup, from its pod-level resources
// (spec.resources): zero fields are left as they are.
type PodCgroupLimits struct {
	CPUShares   uint64 // cgroup v1 cpu.shares; converted to cpu.weight on v2
	CPUQuota    int64  // µs per CPUPeriod
	CPUPeriod   uint64
	MemoryLimit int64 // bytes
}

// cgroupRoot is where the cgroup hierarchies are mounted; a variable for the tests.
var cgroupRoot = "/sys/fs/cgroup"

// SetPodCgroup makes the pod's cgroup (parent, such as /minipod/pod<uid>, under which runc puts
// each container's) and sets its limits, before the first container is made: the containers
// then share them, as under the kubelet's pod cgroup. On cgroup v2 the controllers are enabled
// on the way down, as runc does for the cgroups it makes.
func SetPodCgroup(parent string, l PodCgroupLimits) error {
	if parent == "" || l == (PodCgroupLimits{}) {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cgroupRoot, &st); err != nil {
		return fmt.Errorf("pod cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return setPodCgroupV2(parent, l)
	}
	return setPodCgroupV1(parent, l)
}

func setPodCgroupV1(parent string, l PodCgroupLimits) error {
	var errs []error
	if l.CPUShares > 0 || l.CPUQuota > 0 {
		dir := filepath.Join(cgroupRoot, "cpu", parent)
		errs = append(errs, os.MkdirAll(dir, 0o755))
		if l.CPUShares > 0 {
			errs = append(errs, writeCgroup(dir, "cpu.shares", strconv.FormatUint(l.CPUShares, 10)))
		}
		if l.CPUQuota > 0 {
			errs = append(errs, writeCgroup(dir, "cpu.cfs_period_us", strconv.FormatUint(l.CPUPeriod, 10)),
				writeCgroup(dir, "cpu.cfs_quota_us", strconv.FormatInt(l.CPUQuota, 10)))
		}
	}
	if l.MemoryLimit > 0 {
		dir := filepath.Join(cgroupRoot, "memory", parent)
		errs = append(errs, os.MkdirAll(dir, 0o755),
			writeCgroup(dir, "memory.limit_in_bytes", strconv.FormatInt(l.MemoryLimit, 10)))
	}
	return errors.Join(errs...)
}

func setPodCgroupV2(parent string, l PodCgroupLimits) error {
	dir := cgroupRoot
	for _, part := range strings.Split(strings.Trim(parent, "/"), "/") {
		// A controller's files exist in a cgroup only when its parent hands the controller
		// down.
		if err := writeCgroup(dir, "cgroup.subtree_control", "+cpu +memory"); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pod cgroup: %w", err)
		}
	}
	var errs []error
	if l.CPUShares > 0 {
		errs = append(errs, writeCgroup(dir, "cpu.weight", strconv.FormatUint(sharesToWeight(l.CPUShares), 10)))
	}
	if l.CPUQuota > 0 {
		errs = append(errs, writeCgroup(dir, "cpu.max", fmt.Sprintf("%d %d", l.CPUQuota, l.CPUPeriod)))
	}
	if l.MemoryLimit > 0 {
		errs = append(errs, writeCgroup(dir, "memory.max", strconv.FormatInt(l.MemoryLimit, 10)))
	}
	return errors.Join(errs...)
}

// sharesToWeight maps cgroup v1 shares [2, 262144] onto v2 weights [1, 10000] as runc and the
// kubelet do.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	return 1 + ((shares-2)*9999)/262142
}

func writeCgroup(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("pod cgroup: %w", err)
	}
	return nil
}
