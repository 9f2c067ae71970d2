package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minipod/minipod/pkg/sandbox"
)

// networkMasqueradeLine is the built-in network's masquerade rule for the test subnet, as
// iptables-save prints it.
var networkMasqueradeLine = fmt.Sprintf(`-A POSTROUTING -s %s ! -d %s -m comment --comment "%s" -j MASQUERADE`,
	testSubnet, testSubnet, sandbox.MasqueradeComment(testBridge))

// leftovers lists what is left of pods in this daemon's namespace and network: containers,
// tasks, leases, container snapshots, pinned netns files and their mounts, veths on the test bridge,
// IPAM reservations, and iptables rules of the given pod IPs (an address ending in "." stands
// for the whole test subnet; the subnet's one masquerade rule is not a leftover). Empty means
// clean.
func (d *daemon) leftovers(podIPs ...string) []string {
	var left []string
	ctr := func(args ...string) []string {
		out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).Output()
		if err != nil {
			left = append(left, "ctr "+strings.Join(args, " ")+": "+err.Error())
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	for _, id := range ctr("containers", "ls", "-q") {
		if id != "" {
			left = append(left, "container "+id)
		}
	}
	for i, line := range ctr("tasks", "ls") {
		if i > 0 && strings.TrimSpace(line) != "" {
			left = append(left, "task "+line)
		}
	}
	// A sandbox's lease ends once its first containers exist (pkg/pod/rootfs.go); pulls and
	// imports end theirs when they are done.
	for i, line := range ctr("leases", "ls") {
		if i > 0 && strings.TrimSpace(line) != "" {
			left = append(left, "lease "+line)
		}
	}
	// Image layers are committed snapshots; a container's own snapshot is active.
	for _, line := range ctr("snapshots", "ls") {
		if strings.Contains(line, "Active") {
			left = append(left, "snapshot "+line)
		}
	}
	if entries, err := os.ReadDir(d.netns); err == nil {
		for _, e := range entries {
			left = append(left, "netns file "+e.Name())
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(mi), "\n") {
			if strings.Contains(line, d.netns) {
				left = append(left, "netns mount "+line)
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show", "master", testBridge).Output(); err == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				left = append(left, "veth "+line)
			}
		}
	}
	for _, p := range ipamReservations(d.state) {
		left = append(left, "IPAM reservation "+p)
	}
	for _, pattern := range []string{"/sys/fs/cgroup/*/" + d.namespace + "/pod*", "/sys/fs/cgroup/" + d.namespace + "/pod*"} {
		dirs, _ := filepath.Glob(pattern)
		for _, dir := range dirs {
			left = append(left, "cgroup "+dir)
		}
	}
	if len(podIPs) > 0 {
		out, err := exec.Command("iptables-save").Output()
		if err != nil {
			left = append(left, "iptables-save: "+err.Error())
		}
		masq := 0
		for _, line := range strings.Split(string(out), "\n") {
			// The built-in network's one masquerade rule for the whole subnet belongs to the
			// network, not to a pod: it stays after pods and daemons are gone, as the bridge
			// does, and the harness removes both at the end of the run (cleanNetwork). Only
			// this exact rule is exempt: per-pod chains (CNI-xxxx, CNI-DN-xxxx) and their
			// jumps are leaks, and so is a second copy of the rule.
			if line == networkMasqueradeLine {
				if masq++; masq > 1 {
					left = append(left, "duplicate masquerade rule "+line)
				}
				continue
			}
			for _, ip := range podIPs {
				// An address ending in "." is a prefix: any address of that subnet.
				prefix := strings.HasSuffix(ip, ".") && strings.Contains(line, ip)
				if ip != "" && (prefix || strings.Contains(line, ip+"/") || strings.Contains(line, ip+":")) {
					left = append(left, "iptables rule "+line)
				}
			}
		}
	}
	return left
}

// removeAndCheck removes the pods' manifests (<name>.yaml), waits until the pods are gone, and
// then until nothing of them is left (their pod IPs included; a host-network pod's IP is the
// host's and is not checked).
func (d *daemon) removeAndCheck(names ...string) {
	d.t.Helper()
	var ips []string
	for _, n := range names {
		if p := d.pod(n); p != nil && p.Status.PodIP != "" && !p.Spec.HostNetwork {
			ips = append(ips, p.Status.PodIP)
		}
	}
	for _, n := range names {
		d.removeManifest(n + ".yaml")
	}
	for _, n := range names {
		d.waitGone(n, 30*time.Second)
	}
	d.eventually(15*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(ips...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}

// ipamReservations lists the files of the addresses host-local IPAM holds under a daemon's
// state directory (its lock and last-reserved files left out).
func ipamReservations(stateDir string) []string {
	var files []string
	filepath.WalkDir(filepath.Join(stateDir, "cni", "networks"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() != "lock" && !strings.HasPrefix(e.Name(), "last_reserved_ip") {
			files = append(files, p)
		}
		return nil
	})
	return files
}
