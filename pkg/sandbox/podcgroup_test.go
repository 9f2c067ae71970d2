package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readCg(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// The pod cgroup's files get the pod-level limits, in the v1 hierarchies or the v2 tree, and
// a pod that asks for nothing gets no cgroup made ahead of runc (issue 23). The files here are
// plain files in a temporary directory: what is written where, not what the kernel does.
func TestSetPodCgroup(t *testing.T) {
	defer func(r string) { cgroupRoot = r }(cgroupRoot)
	l := PodCgroupLimits{CPUShares: 256, CPUQuota: 125000, CPUPeriod: 100000, MemoryLimit: 64 << 20}

	cgroupRoot = t.TempDir()
	if err := setPodCgroupV1("/minipod/pod1", l); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cpu/minipod/pod1/cpu.shares":               "256",
		"cpu/minipod/pod1/cpu.cfs_period_us":        "100000",
		"cpu/minipod/pod1/cpu.cfs_quota_us":         "125000",
		"memory/minipod/pod1/memory.limit_in_bytes": "67108864",
	} {
		if got := readCg(t, filepath.Join(cgroupRoot, file)); got != want {
			t.Errorf("v1 %s = %q, want %q", file, got, want)
		}
	}

	cgroupRoot = t.TempDir()
	if err := setPodCgroupV2("/minipod/pod1", l); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"cgroup.subtree_control":         "+cpu +memory",
		"minipod/cgroup.subtree_control": "+cpu +memory",
		"minipod/pod1/cpu.weight":        "10",
		"minipod/pod1/cpu.max":           "125000 100000",
		"minipod/pod1/memory.max":        "67108864",
	} {
		if got := readCg(t, filepath.Join(cgroupRoot, file)); got != want {
			t.Errorf("v2 %s = %q, want %q", file, got, want)
		}
	}

	cgroupRoot = t.TempDir()
	if err := SetPodCgroup("/minipod/pod2", PodCgroupLimits{}); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(cgroupRoot); len(entries) != 0 {
		t.Errorf("nothing asked, yet %d entries made", len(entries))
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("shares %d: weight %d, want %d", shares, got, want)
		}
	}
}
