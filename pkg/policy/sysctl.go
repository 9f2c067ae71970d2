package policy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/minipod/minipod/pkg/manifest"
)

// SysctlForbiddenReason is the reason a kubelet gives a pod whose sysctl is neither in the
// safe set nor allowed by its --allowed-unsafe-sysctls; it refuses the pod at admission.
// minipod refuses such a pod as any other policy violation (Reason) and names the kubelet's
// reason in the message.
const SysctlForbiddenReason = "SysctlForbidden"

// safeSysctls is the kubelet's safe set (pkg/kubelet/sysctl/safe_sysctls.go, Kubernetes
// 1.37, the version of k8s.io/api in go.mod): sysctls of the pod's own network or IPC
// namespace whose setting cannot hurt other pods or the node. A pod may set them without the
// node allowing anything. Some are namespaced only from a kernel version on; on an older
// kernel (or one whose version cannot be read) the kubelet leaves them out, and so does
// minipod: there, setting one would change the whole node.
var safeSysctls = []struct {
	name   string
	kernel [2]int // the first kernel (major, minor) where it is namespaced; zero: all
}{
	{"kernel.shm_rmid_forced", [2]int{}},
	{"net.ipv4.ip_local_port_range", [2]int{}},
	{"net.ipv4.tcp_syncookies", [2]int{}},
	{"net.ipv4.ping_group_range", [2]int{}},
	{"net.ipv4.ip_unprivileged_port_start", [2]int{}},
	{"net.ipv4.ip_local_reserved_ports", [2]int{3, 16}},
	{"net.ipv4.tcp_keepalive_time", [2]int{4, 5}},
	{"net.ipv4.tcp_fin_timeout", [2]int{4, 6}},
	{"net.ipv4.tcp_keepalive_intvl", [2]int{4, 5}},
	{"net.ipv4.tcp_keepalive_probes", [2]int{4, 5}},
	{"net.ipv4.tcp_rmem", [2]int{4, 15}},
	{"net.ipv4.tcp_wmem", [2]int{4, 15}},
	// Kubernetes 1.37 (kubernetes/kubernetes#138389).
	{"net.ipv4.tcp_slow_start_after_idle", [2]int{4, 15}},
	{"net.ipv4.tcp_notsent_lowat", [2]int{4, 6}},
}

// SafeSysctls is the safe set on a kernel of the given release (uname -r, e.g.
// "6.8.0-45-generic"; "" or unreadable: only the sysctls namespaced on every kernel).
func SafeSysctls(kernelRelease string) []string {
	major, minor, ok := kernelVersion(kernelRelease)
	var out []string
	for _, s := range safeSysctls {
		if s.kernel == [2]int{} || ok && (major > s.kernel[0] || major == s.kernel[0] && minor >= s.kernel[1]) {
			out = append(out, s.name)
		}
	}
	return out
}

// kernelVersion reads the major and minor version of a kernel release.
func kernelVersion(release string) (major, minor int, ok bool) {
	f := strings.SplitN(release, ".", 3)
	if len(f) < 2 {
		return 0, 0, false
	}
	digits := func(s string) (int, bool) {
		end := strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' })
		if end >= 0 {
			s = s[:end]
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	major, ok1 := digits(f[0])
	minor, ok2 := digits(f[1])
	return major, minor, ok1 && ok2
}

// nodeSafeSysctls is the safe set on this machine's kernel, read once.
var nodeSafeSysctls = sync.OnceValue(func() []string {
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return SafeSysctls(strings.TrimSpace(string(release)))
})

// sysctlPatternRE is the kubelet's rule for an entry of --allowed-unsafe-sysctls
// (IsValidSysctlPattern): a sysctl name, or one whose last segment ends in '*'.
var sysctlPatternRE = regexp.MustCompile(`^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*([a-z0-9][-_a-z0-9]*)?[a-z0-9*]$`)

// checkSysctlPattern refuses what the kubelet refuses in --allowed-unsafe-sysctls: a malformed
// pattern, and one whose sysctls are not namespaced (setting them in one pod would change the
// whole node).
func checkSysctlPattern(pat string) error {
	if len(pat) > manifest.SysctlMaxLength || !sysctlPatternRE.MatchString(pat) {
		return fmt.Errorf("%q is not a sysctl name or a prefix ending in * (like net.core.somaxconn or kernel.msg*)", pat)
	}
	prefix, _, _ := strings.Cut(manifest.NormalizeSysctl(pat), "*")
	if manifest.SysctlNamespace(prefix) == "" {
		return fmt.Errorf("%q: not known to be namespaced, a pod's setting would change the whole node (namespaced: kernel.sem, kernel.shm*, kernel.msg*, fs.mqueue.*, net.*)", pat)
	}
	return nil
}

// sysctlAllowed reports whether the sysctl name (with '.' separators) is the safe set's or
// matches one of the patterns: an exact name, or a prefix ending in '*'.
func sysctlAllowed(safe, patterns []string, name string) bool {
	if slices.Contains(safe, name) {
		return true
	}
	for _, pat := range patterns {
		pat = manifest.NormalizeSysctl(pat)
		if prefix, ok := strings.CutSuffix(pat, "*"); (ok && strings.HasPrefix(name, prefix)) || pat == name {
			return true
		}
	}
	return false
}
