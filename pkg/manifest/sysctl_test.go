package manifest

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// Sysctl names are checked as the API server checks them on create; which sysctls a pod may
// set at all is the node policy's business, not validation's.
func TestValidateSysctls(t *testing.T) {
	long := strings.Repeat("a", 250) + ".bcd" // 254 characters
	sysctls := func(names ...string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{}
			for _, n := range names {
				p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
			}
		}
	}
	const format = `must have at most 253 characters and match regex ^([a-z0-9]([-_a-z0-9]*[a-z0-9])?[./])*[a-z0-9]([-_a-z0-9]*[a-z0-9])?$`
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []string // every error, in order; none: valid
	}{
		{"safe and unsafe names alike are valid", sysctls("net.ipv4.ip_unprivileged_port_start", "net.core.somaxconn", "kernel.msgmax", "vm.swappiness"), nil},
		{"slash as separator", sysctls("net/ipv4/ip_local_port_range", "net.ipv4.conf.eth0/100.rp_filter"), nil},
		{"digits, dashes and underscores inside segments", sysctls("net.ipv6.conf.veth-a_1.disable_ipv6", "a.0"), nil},
		{"a name of 253 characters", sysctls(long[1:]), nil},
		{"empty name", sysctls(""), []string{"spec.securityContext.sysctls[0].name: Required value"}},
		{"upper case", sysctls("net.core.SOMAXCONN"), []string{`spec.securityContext.sysctls[0].name: Invalid value: "net.core.SOMAXCONN": ` + format}},
		{"trailing dot", sysctls("kernel.shm_rmid_forced."), []string{`sysctls[0].name: Invalid value: "kernel.shm_rmid_forced."`}},
		{"leading dot", sysctls(".net.core.somaxconn"), []string{`sysctls[0].name: Invalid value`}},
		{"empty segment", sysctls("net..core"), []string{`sysctls[0].name: Invalid value: "net..core"`}},
		{"segment ending in a dash", sysctls("net.core-.x"), []string{`sysctls[0].name: Invalid value`}},
		{"segment starting with an underscore", sysctls("net._core"), []string{`sysctls[0].name: Invalid value`}},
		{"a wildcard is no name", sysctls("kernel.msg*"), []string{`sysctls[0].name: Invalid value: "kernel.msg*"`}},
		{"a space", sysctls("net.core. somaxconn"), []string{`sysctls[0].name: Invalid value`}},
		{"an equals sign", sysctls("net.core.somaxconn=1"), []string{`sysctls[0].name: Invalid value`}},
		{"254 characters", sysctls(long), []string{`sysctls[0].name: Invalid value`}},
		{"duplicate", sysctls("kernel.shm_rmid_forced", "net.core.somaxconn", "kernel.shm_rmid_forced"),
			[]string{`spec.securityContext.sysctls[2].name: Duplicate value: "kernel.shm_rmid_forced"`}},
		{"every bad name is listed", sysctls("ok.name", "", "Bad", "ok.name"), []string{
			"sysctls[1].name: Required value", `sysctls[2].name: Invalid value: "Bad"`, `sysctls[3].name: Duplicate value: "ok.name"`}},

		// A sysctl of a namespace the pod shares with the host would change the node.
		{"net sysctl with hostNetwork", func(p *corev1.Pod) {
			sysctls("kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range")(p)
			p.Spec.HostNetwork = true
		}, []string{`spec.securityContext.sysctls[1].name: Invalid value: "net.ipv4.ip_local_port_range": may not be specified when 'hostNetwork' is true`}},
		{"net sysctl with slashes and hostNetwork", func(p *corev1.Pod) {
			sysctls("net/core/somaxconn")(p)
			p.Spec.HostNetwork = true
		}, []string{`sysctls[0].name: Invalid value: "net/core/somaxconn": may not be specified when 'hostNetwork' is true`}},
		{"ipc sysctls with hostIPC", func(p *corev1.Pod) {
			sysctls("kernel.shm_rmid_forced", "kernel.msgmax", "fs.mqueue.msg_max", "kernel.sem", "net.core.somaxconn")(p)
			p.Spec.HostIPC = true
		}, []string{
			`sysctls[0].name: Invalid value: "kernel.shm_rmid_forced": may not be specified when 'hostIPC' is true`,
			`sysctls[1].name: Invalid value: "kernel.msgmax": may not be specified when 'hostIPC' is true`,
			`sysctls[2].name: Invalid value: "fs.mqueue.msg_max": may not be specified when 'hostIPC' is true`,
			`sysctls[3].name: Invalid value: "kernel.sem": may not be specified when 'hostIPC' is true`,
		}},
		{"ipc sysctl with hostNetwork only", func(p *corev1.Pod) {
			sysctls("kernel.shm_rmid_forced")(p)
			p.Spec.HostNetwork = true
		}, nil},
		{"a sysctl of no namespace with both", func(p *corev1.Pod) {
			sysctls("vm.swappiness")(p)
			p.Spec.HostNetwork, p.Spec.HostIPC = true, true
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := minimalPod()
			tt.mutate(pod)
			SetDefaults(pod)
			errs := Validate(pod)
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
		})
	}
}

func TestSysctlNamespace(t *testing.T) {
	for name, want := range map[string]string{
		"net.core.somaxconn":       NetNamespace,
		"net.ipv4.tcp_rmem":        NetNamespace,
		"net/ipv4/tcp_rmem":        NetNamespace,
		"net.":                     NetNamespace, // the prefix of the pattern net.*
		"net":                      "",
		"network.x":                "",
		"kernel.shm_rmid_forced":   IPCNamespace,
		"kernel.shmmax":            IPCNamespace,
		"kernel.shm":               IPCNamespace, // the prefix of kernel.shm*
		"kernel.msg":               IPCNamespace,
		"kernel.msgmnb":            IPCNamespace,
		"kernel.sem":               IPCNamespace,
		"kernel/sem":               IPCNamespace,
		"fs.mqueue.queues_max":     IPCNamespace,
		"fs.mqueue.":               IPCNamespace,
		"fs.mqueue":                "",
		"kernel.shm_next_id":       "",
		"kernel.hostname":          "",
		"kernel.core_pattern":      "",
		"vm.overcommit_memory":     "",
		"fs.file-max":              "",
		"user.max_user_namespaces": "",
	} {
		if got := SysctlNamespace(name); got != want {
			t.Errorf("SysctlNamespace(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestNormalizeSysctl(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"kernel.shm_rmid_forced":           "kernel.shm_rmid_forced",
		"kernel/shm_rmid_forced":           "kernel.shm_rmid_forced",
		"net/ipv4/conf/eno2.100/rp_filter": "net.ipv4.conf.eno2/100.rp_filter",
		"net.ipv4.conf.eno2/100.rp_filter": "net.ipv4.conf.eno2/100.rp_filter", // first separator '.': as it is
		"kernel":                           "kernel",
		"kernel.msg*":                      "kernel.msg*",
		"kernel/msg*":                      "kernel.msg*",
	} {
		if got := NormalizeSysctl(in); got != want {
			t.Errorf("NormalizeSysctl(%q) = %q, want %q", in, got, want)
		}
	}
}
