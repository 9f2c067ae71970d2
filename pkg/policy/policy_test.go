package policy

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func ptr[T any](v T) *T { return &v }

func pod(mut func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Image: "busybox"}},
	}}
	if mut != nil {
		mut(p)
	}
	return p
}

func hostPath(path string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}})
	}
}

func hostPort(ctr string, ports ...int32) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		if ctr == "init" {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: "init"})
			c = &p.Spec.InitContainers[len(p.Spec.InitContainers)-1]
		}
		for _, hp := range ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: 8080 + hp%100, HostPort: hp, Protocol: corev1.ProtocolTCP})
		}
	}
}

func sysctls(names ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{}
		for _, n := range names {
			p.Spec.SecurityContext.Sysctls = append(p.Spec.SecurityContext.Sysctls, corev1.Sysctl{Name: n, Value: "1"})
		}
	}
}

func TestCheck(t *testing.T) {
	strict := Policy{
		AllowPrivileged:     ptr(false),
		AllowHostNetwork:    ptr(false),
		AllowHostPID:        ptr(false),
		AllowHostIPC:        ptr(false),
		AllowedHostPaths:    []string{"/srv/data", "/var/log/app"},
		AllowedCapabilities: []string{"NET_BIND_SERVICE", "CAP_CHOWN"},
	}
	cases := []struct {
		name string
		pol  Policy
		pod  *corev1.Pod
		want []string // substrings of the errors, in order; none: admitted
	}{
		{"zero policy allows a privileged hostNetwork pod", Policy{}, pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork, p.Spec.HostPID = true, true
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
		}), nil},
		{"plain pod passes a strict policy", strict, pod(nil), nil},
		{"explicitly unprivileged passes", strict, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(false)}
		}), nil},
		{"privileged app container", strict, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
		}), []string{"spec.containers[0].securityContext.privileged: Forbidden: a privileged container"}},
		{"privileged init container", strict, pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}
		}), []string{"spec.initContainers[0].securityContext.privileged"}},
		{"host namespaces", strict, pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork, p.Spec.HostPID, p.Spec.HostIPC = true, true, true
		}), []string{"spec.hostNetwork: Forbidden", "spec.hostPID: Forbidden", "spec.hostIPC: Forbidden"}},
		{"only hostNetwork forbidden", Policy{AllowHostNetwork: ptr(false)}, pod(func(p *corev1.Pod) {
			p.Spec.HostPID = true
		}), nil},
		{"allowed: true is the same as unset", Policy{AllowHostNetwork: ptr(true)}, pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
		}), nil},
		{"host path equal to a prefix", strict, pod(hostPath("/srv/data")), nil},
		{"host path below a prefix", strict, pod(hostPath("/var/log/app/x/y.log")), nil},
		{"host path with a trailing slash", strict, pod(hostPath("/srv/data/")), nil},
		{"host path outside", strict, pod(hostPath("/etc")), []string{"spec.volumes[0].hostPath.path: Forbidden: host path /etc is not under"}},
		{"prefix of a component is not a directory", strict, pod(hostPath("/srv/database")), []string{"/srv/database"}},
		{"dot-dot leaves the prefix", strict, pod(hostPath("/srv/data/../../etc/shadow")), []string{"/srv/data/../../etc/shadow"}},
		{"parent of a prefix", strict, pod(hostPath("/srv")), []string{"host path /srv is not under"}},
		{"empty list allows no host path", Policy{AllowedHostPaths: []string{}}, pod(hostPath("/tmp")), []string{"(none)"}},
		{"root prefix allows every path", Policy{AllowedHostPaths: []string{"/"}}, pod(hostPath("/etc")), nil},
		{"emptyDir is not a host path", strict, pod(func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "e", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}), nil},
		{"allowed capabilities, with or without CAP_", strict, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CAP_NET_BIND_SERVICE", "chown"}}}
		}), nil},
		{"a capability not allowed", strict, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE", "SYS_ADMIN"}}}
		}), []string{"spec.containers[0].securityContext.capabilities.add[1]: Forbidden: capability SYS_ADMIN"}},
		{"dropping is always allowed", strict, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}
		}), nil},
		{"ALL is a capability like any other", strict, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"ALL"}}}
		}), []string{"capabilities.add[0]: Forbidden: capability ALL"}},
		{"ALL in the policy allows any capability", Policy{AllowedCapabilities: []string{"all"}}, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_ADMIN"}}}
		}), nil},
		{"empty capability list allows adding none", Policy{AllowedCapabilities: []string{}}, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CHOWN"}}}
		}), []string{"capability CHOWN is not allowed by this node's policy (allowed: none)"}},
		{"privileged sidecar", strict, pod(func(p *corev1.Pod) {
			always := corev1.ContainerRestartPolicyAlways
			p.Spec.InitContainers = []corev1.Container{{Name: "init"}, {Name: "side", RestartPolicy: &always,
				SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}
		}), []string{"spec.initContainers[1].securityContext.privileged"}},
		{"privileged ephemeral container", strict, pod(func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debug", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}}
		}), []string{"spec.ephemeralContainers[0].securityContext.privileged"}},
		{"every broken rule is listed, in order", strict, pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.InitContainers = []corev1.Container{{Name: "i", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}}}
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)}})
			hostPath("/etc")(p)
			hostPath("/srv/data/x")(p)
			hostPath("/root")(p)
		}), []string{"spec.hostNetwork", "spec.initContainers[0].securityContext.privileged", "spec.containers[1].securityContext.privileged",
			"spec.volumes[0].hostPath.path", "spec.volumes[2].hostPath.path"}},

		// Host paths: cleaned, then compared on whole components.
		{"dot-dot back into the prefix", strict, pod(hostPath("/srv/data/../data/x")), nil},
		{"dot-dot to the prefix's parent", strict, pod(hostPath("/srv/data/..")), []string{"host path /srv/data/.. is not under"}},
		{"dot-dot past the root", strict, pod(hostPath("/../../srv/data")), nil},
		{"dot-dot past the root to elsewhere", strict, pod(hostPath("/../etc")), []string{"/../etc"}},
		{"doubled slashes", strict, pod(hostPath("//srv//data///x")), nil},
		{"dot components", strict, pod(hostPath("/srv/./data/./x")), nil},
		{"a relative path is under no prefix", strict, pod(hostPath("srv/data")), []string{"host path srv/data is not under"}},
		{"a relative path climbing up", strict, pod(hostPath("../srv/data")), []string{"../srv/data"}},
		{"a longer component sharing the prefix", strict, pod(hostPath("/srv/data-other/x")), []string{"/srv/data-other/x"}},
		{"the second prefix", strict, pod(hostPath("/var/log/app")), nil},
		{"a sibling of the second prefix", strict, pod(hostPath("/var/log/apple")), []string{"/var/log/apple"}},
		{"root is not under a prefix", strict, pod(hostPath("/")), []string{"host path / is not under"}},

		// allowPrivilegeEscalation: false needs every container to say false.
		{"escalation: unset is refused", Policy{AllowPrivilegeEscalation: ptr(false)}, pod(nil),
			[]string{"spec.containers[0].securityContext.allowPrivilegeEscalation: Forbidden: must be set to false"}},
		{"escalation: true is refused", Policy{AllowPrivilegeEscalation: ptr(false)}, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(true)}
		}), []string{"spec.containers[0].securityContext.allowPrivilegeEscalation"}},
		{"escalation: false in every container passes", Policy{AllowPrivilegeEscalation: ptr(false)}, pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i", SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}}}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}
		}), nil},
		{"escalation: an init container that does not say false", Policy{AllowPrivilegeEscalation: ptr(false)}, pod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "i"}}
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr(false)}
		}), []string{"spec.initContainers[0].securityContext.allowPrivilegeEscalation"}},
		{"escalation allowed: unset passes", Policy{AllowPrivilegeEscalation: ptr(true)}, pod(nil), nil},

		// allowedHostPorts: single ports and inclusive ranges; unset allows any, [] none.
		{"ports: unset allows the node's SSH port", Policy{AllowHostNetwork: ptr(false)}, pod(hostPort("app", 22)), nil},
		{"ports: SSH outside the range", Policy{AllowedHostPorts: []string{"8000-8999"}}, pod(hostPort("app", 22)),
			[]string{"spec.containers[0].ports[0].hostPort: Forbidden: host port 22 is not allowed by this node's policy (allowed: 8000-8999)"}},
		{"ports: the range's ends and inside", Policy{AllowedHostPorts: []string{"8000-8999"}}, pod(hostPort("app", 8000, 8500, 8999)), nil},
		{"ports: just outside the range", Policy{AllowedHostPorts: []string{"8000-8999"}}, pod(hostPort("app", 7999, 9000)),
			[]string{"ports[0].hostPort: Forbidden: host port 7999", "ports[1].hostPort: Forbidden: host port 9000"}},
		{"ports: a single port and a range", Policy{AllowedHostPorts: []string{"8000-8999", "443"}}, pod(hostPort("app", 443, 8080, 444)),
			[]string{"spec.containers[0].ports[2].hostPort: Forbidden: host port 444 is not allowed by this node's policy (allowed: 8000-8999, 443)"}},
		{"ports: empty list allows none", Policy{AllowedHostPorts: []string{}}, pod(hostPort("app", 8080)),
			[]string{"host port 8080 is not allowed by this node's policy (allowed: none)"}},
		{"ports: empty list, no hostPort", Policy{AllowedHostPorts: []string{}}, pod(func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8080}}
		}), nil},
		{"ports: init containers too", Policy{AllowedHostPorts: []string{"8000-8999"}}, pod(hostPort("init", 22)),
			[]string{"spec.initContainers[0].ports[0].hostPort: Forbidden: host port 22"}},
		{"ports: a hostNetwork pod's declared port", Policy{AllowedHostPorts: []string{"8000-8999"}}, pod(func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 22, HostPort: 22}}
		}), []string{"spec.containers[0].ports[0].hostPort: Forbidden: host port 22"}},
		{"ports: the whole range", Policy{AllowedHostPorts: []string{"1-65535"}}, pod(hostPort("app", 1, 22, 65535)), nil},

		// Sysctls: the safe set always, others only as allowedUnsafeSysctls says, as a kubelet.
		{"sysctls: the safe set with no policy", Policy{}, pod(sysctls("kernel.shm_rmid_forced", "net.ipv4.ip_unprivileged_port_start",
			"net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range")), nil},
		{"sysctls: safe, written with slashes", Policy{}, pod(sysctls("net/ipv4/ip_unprivileged_port_start")), nil},
		{"sysctls: unsafe with no policy", Policy{}, pod(sysctls("net.ipv4.ip_unprivileged_port_start", "net.core.somaxconn")),
			[]string{"spec.securityContext.sysctls[1].name: Forbidden: unsafe sysctl net.core.somaxconn is not allowed by this node's policy (allowedUnsafeSysctls: none)"}},
		{"sysctls: an exact name allowed", Policy{AllowedUnsafeSysctls: []string{"net.core.somaxconn"}}, pod(sysctls("net.core.somaxconn")), nil},
		{"sysctls: an exact name is not a prefix", Policy{AllowedUnsafeSysctls: []string{"net.core.somaxconn"}}, pod(sysctls("net.core.somaxconn2")),
			[]string{"sysctls[0].name: Forbidden: unsafe sysctl net.core.somaxconn2 is not allowed by this node's policy (allowedUnsafeSysctls: net.core.somaxconn)"}},
		{"sysctls: a prefix pattern", Policy{AllowedUnsafeSysctls: []string{"kernel.msg*", "net.ipv6.*"}},
			pod(sysctls("kernel.msgmax", "kernel.msgmnb", "net.ipv6.conf.all.disable_ipv6", "kernel.sem", "net.ipv4.tcp_tw_reuse")),
			[]string{"sysctls[3].name: Forbidden: unsafe sysctl kernel.sem", "sysctls[4].name: Forbidden: unsafe sysctl net.ipv4.tcp_tw_reuse"}},
		{"sysctls: slashes in the pod and the pattern", Policy{AllowedUnsafeSysctls: []string{"net/core/*"}}, pod(sysctls("net/core/somaxconn", "net.core.rmem_max")), nil},
		{"sysctls: an empty list allows only the safe set", Policy{AllowedUnsafeSysctls: []string{}}, pod(sysctls("kernel.shm_rmid_forced", "kernel.shmmax")),
			[]string{"sysctls[1].name: Forbidden: unsafe sysctl kernel.shmmax"}},
		{"sysctls: a strict policy without the key", strict, pod(sysctls("net.core.somaxconn")), []string{"sysctls[0].name: Forbidden"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := c.pol.Check(c.pod)
			if len(errs) != len(c.want) {
				t.Fatalf("got %d errors %v, want %d %v", len(errs), errs, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
			if err := c.pol.Admit(c.pod); (err != nil) != (len(c.want) > 0) {
				t.Errorf("Admit = %v, want an error: %v", err, len(c.want) > 0)
			}
		})
	}
}

func TestUnmarshalYAML(t *testing.T) {
	var v struct {
		P Policy `yaml:"policy"`
	}
	good := "policy:\n  allowPrivileged: false\n  allowedHostPaths: [/srv]\n  allowedCapabilities: []\n"
	if err := yaml2.Unmarshal([]byte(good), &v); err != nil {
		t.Fatal(err)
	}
	if v.P.AllowPrivileged == nil || *v.P.AllowPrivileged || len(v.P.AllowedHostPaths) != 1 || v.P.AllowedCapabilities == nil || v.P.AllowHostNetwork != nil {
		t.Errorf("decoded %+v", v.P)
	}
	for doc, want := range map[string]string{
		"policy:\n  allowPrivilegd: false\n":          "unknown policy key allowPrivilegd",
		"policy:\n  allowedHostPaths: [srv]\n":        "must be an absolute, clean path",
		"policy:\n  allowedHostPaths: [/srv/../x]\n":  "must be an absolute, clean path",
		"policy:\n  allowHostPID: maybe\n":            "!!str",
		"policy:\n  allowedCapabilities: [\"\"]\n":    "not a capability name",
		"policy:\n  allowedHostPaths: /srv\n":         "!!str",
		"policy:\n  allowPrivileged: false\n  x: 1\n": "unknown policy key x",
		"policy:\n  allowPrivilegeEscalation: 1\n":    "!!int",
		"policy:\n  allowedHostPaths: [/srv/]\n":      "must be an absolute, clean path",
		"policy:\n  allowedHostPorts: 22\n":           "!!int",
		"policy:\n  allowedHostPorts: [ssh]\n":        `allowedHostPorts: "ssh" is not a port (1-65535) or a range of ports like "8000-8999"`,
		"policy:\n  allowedHostPorts: [0]\n":          `allowedHostPorts: "0": port 0 is not between 1 and 65535`,
		"policy:\n  allowedHostPorts: [9000-8000]\n":  `allowedHostPorts: "9000-8000": the range ends before it starts (write "8000-9000")`,
		"policy:\n  allowedUnsafeSysctls: [vm.*]\n":   `allowedUnsafeSysctls: "vm.*": not known to be namespaced`,
		"policy:\n  allowedUnsafeSysctls: [\"*\"]\n":  `allowedUnsafeSysctls: "*": not known to be namespaced`,
		"policy:\n  allowedUnsafeSysctls: [Net.*]\n":  `allowedUnsafeSysctls: "Net.*" is not a sysctl name or a prefix ending in *`,
	} {
		var v struct {
			P Policy `yaml:"policy"`
		}
		err := yaml2.Unmarshal([]byte(doc), &v)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", doc, err, want)
		}
	}
}

func TestFlag(t *testing.T) {
	var p Policy
	if p.String() != "" {
		t.Errorf("zero policy prints %q", p.String())
	}
	if err := p.Set(`{"allowHostNetwork":false,"allowedHostPaths":["/srv"]}`); err != nil {
		t.Fatal(err)
	}
	if p.AllowHostNetwork == nil || *p.AllowHostNetwork || p.String() != `{"allowHostNetwork":false,"allowedHostPaths":["/srv"]}` {
		t.Errorf("got %+v, %s", p, p.String())
	}
	if err := p.Set(`{"allowHostNetwrk":false}`); err == nil {
		t.Error("an unknown key was accepted")
	}
	if err := p.Set(`{"allowedHostPaths":["relative"]}`); err == nil {
		t.Error("a relative path was accepted")
	}
	if err := p.Set(`{"allowedHostPorts":["8000-8999","443"],"allowedUnsafeSysctls":["kernel.msg*"]}`); err != nil ||
		!reflect.DeepEqual(p.AllowedHostPorts, []string{"8000-8999", "443"}) || !reflect.DeepEqual(p.AllowedUnsafeSysctls, []string{"kernel.msg*"}) {
		t.Errorf("host ports and sysctls: %v, %+v", err, p)
	}
	for _, bad := range []string{`{"allowedHostPorts":["8000-"]}`, `{"allowedHostPorts":["65536"]}`, `{"allowedUnsafeSysctls":["kernel.panic"]}`} {
		if err := p.Set(bad); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}

// Every entry of allowedHostPorts, good and bad, with the message that says why.
func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in      string
		lo, hi  int
		wantErr string
	}{
		{"443", 443, 443, ""},
		{"1", 1, 1, ""},
		{"65535", 65535, 65535, ""},
		{"8000-8999", 8000, 8999, ""},
		{"22-22", 22, 22, ""},
		{"1-65535", 1, 65535, ""},
		{"", 0, 0, `"" is not a port (1-65535) or a range of ports like "8000-8999"`},
		{"0", 0, 0, `"0": port 0 is not between 1 and 65535`},
		{"65536", 0, 0, `"65536": port 65536 is not between 1 and 65535`},
		{"-1", 0, 0, "is not a port"},
		{"8000-", 0, 0, `"8000-" is not a port`},
		{"-8000", 0, 0, `"-8000" is not a port`},
		{"8000-8999-9999", 0, 0, "is not a port"},
		{"9000-8000", 0, 0, `the range ends before it starts (write "8000-9000")`},
		{"8000 - 8999", 0, 0, "is not a port"},
		{" 443", 0, 0, "is not a port"},
		{"+443", 0, 0, "is not a port"},
		{"0443", 0, 0, "is not a port"},
		{"0x1bb", 0, 0, "is not a port"},
		{"ssh", 0, 0, "is not a port"},
		{"8000:8999", 0, 0, "is not a port"},
		{"1-70000", 0, 0, "port 70000 is not between 1 and 65535"},
	} {
		r, err := parsePortRange(tc.in)
		if tc.wantErr == "" {
			if err != nil || r != (portRange{tc.lo, tc.hi}) {
				t.Errorf("parsePortRange(%q) = %v, %v; want %d-%d", tc.in, r, err, tc.lo, tc.hi)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("parsePortRange(%q) error %v, want %q", tc.in, err, tc.wantErr)
		}
	}
}

// The kubelet's rules for --allowed-unsafe-sysctls: a name or a prefix ending in *, of a
// namespaced sysctl only.
func TestCheckSysctlPattern(t *testing.T) {
	for pat, wantErr := range map[string]string{
		"net.core.somaxconn":     "",
		"net.*":                  "",
		"net.core.*":             "",
		"net.ipv4.tcp_*":         "",
		"kernel.msg*":            "",
		"kernel.shm*":            "",
		"kernel.sem":             "",
		"kernel.shmmax":          "",
		"fs.mqueue.*":            "",
		"net/core/somaxconn":     "",
		"net/ipv4/*":             "",
		"*":                      "not known to be namespaced",
		"net*":                   "not known to be namespaced",
		"vm.swappiness":          "not known to be namespaced",
		"kernel.*":               "not known to be namespaced",
		"kernel.panic":           "not known to be namespaced",
		"fs.mqueue*":             "not known to be namespaced",
		"kernel.shm_next_id":     "not known to be namespaced",
		"":                       "is not a sysctl name or a prefix ending in *",
		"net.*.somaxconn":        "is not a sysctl name",
		"net.core.somaxconn*x":   "is not a sysctl name",
		"NET.core":               "is not a sysctl name",
		"net..core":              "is not a sysctl name",
		"net.core.somaxconn=1":   "is not a sysctl name",
		"net.core.**":            "is not a sysctl name",
		strings.Repeat("n", 254): "is not a sysctl name",
	} {
		err := checkSysctlPattern(pat)
		if (wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), wantErr) {
			t.Errorf("checkSysctlPattern(%q) = %v, want %q", pat, err, wantErr)
		}
	}
}

// The safe set depends on the kernel, as the kubelet's does: a sysctl namespaced only from
// some version on is left out below it, and when the version cannot be read.
func TestSafeSysctls(t *testing.T) {
	always := []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
		"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}
	all := append(append([]string(nil), always...), "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
		"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes",
		"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat")
	for _, tc := range []struct {
		release string
		want    []string
	}{
		{"", always},
		{"garbage", always},
		{"6", always},
		{"3.10.0-1160.el7.x86_64", always},
		{"3.16.0", append(append([]string(nil), always...), "net.ipv4.ip_local_reserved_ports")},
		{"4.5.7", append(append([]string(nil), always...), "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
			"net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes")},
		{"4.14.336", append(append([]string(nil), always...), "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
			"net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_notsent_lowat")},
		{"4.15", all},
		{"5.4.0-42-generic", all},
		{"6.18.44-fc-v1272", all},
		{"10.0.1", all},
	} {
		if got := SafeSysctls(tc.release); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SafeSysctls(%q) =\n %v\nwant\n %v", tc.release, got, tc.want)
		}
	}
}

// The zero policy still checks pods (the safe sysctls), so IsZero never lets a caller skip
// Admit; Unset says whether a key is set.
func TestUnset(t *testing.T) {
	var zero Policy
	if !zero.Unset() || zero.String() != "" {
		t.Errorf("zero policy: Unset %v, String %q", zero.Unset(), zero.String())
	}
	for _, p := range []Policy{{AllowedHostPorts: []string{}}, {AllowedUnsafeSysctls: []string{}}, {AllowHostIPC: ptr(true)}} {
		if p.Unset() {
			t.Errorf("%+v: Unset %v", p, p.Unset())
		}
	}
	if err := zero.Admit(pod(sysctls("net.core.somaxconn"))); err == nil {
		t.Error("the zero policy admits an unsafe sysctl")
	}
}

// What --print-config and the flag print must read back as the same policy; above all an
// empty list (nothing allowed) must not come out as a missing key (everything allowed).
func TestMarshalRoundTrip(t *testing.T) {
	for _, p := range []Policy{
		{},
		{AllowedHostPaths: []string{}, AllowedCapabilities: []string{}},
		{AllowedHostPaths: []string{"/srv"}},
		{AllowPrivileged: ptr(false), AllowHostNetwork: ptr(true), AllowHostPID: ptr(false), AllowHostIPC: ptr(false),
			AllowedHostPaths: []string{"/a", "/b"}, AllowedCapabilities: []string{"CHOWN"}, AllowPrivilegeEscalation: ptr(false),
			AllowedHostPorts: []string{"8000-8999", "443"}, AllowedUnsafeSysctls: []string{"kernel.msg*", "net.core.somaxconn"}},
		{AllowedHostPorts: []string{}, AllowedUnsafeSysctls: []string{}},
	} {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var back Policy
		if err := back.Set(string(b)); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(p, back) {
			t.Errorf("%s read back as %+v, want %+v", b, back, p)
		}
		var fromYAML struct {
			P Policy `yaml:"policy"`
		}
		y, _ := yaml.Marshal(map[string]Policy{"policy": p})
		if err := yaml2.Unmarshal(y, &fromYAML); err != nil {
			t.Fatalf("%s: %v", y, err)
		}
		if !reflect.DeepEqual(p, fromYAML.P) {
			t.Errorf("YAML %s read back as %+v, want %+v", y, fromYAML.P, p)
		}
	}
	if b, _ := json.Marshal(Policy{AllowedHostPaths: []string{}}); string(b) != `{"allowedHostPaths":[]}` {
		t.Errorf("an empty host path list marshals as %s", b)
	}
	if b, _ := json.Marshal(Policy{AllowedHostPorts: []string{}}); string(b) != `{"allowedHostPorts":[]}` {
		t.Errorf("an empty host port list marshals as %s", b)
	}
}

// A pod refused for its sysctls alone has the kubelet's reason, SysctlForbidden; anything else
// it breaks makes it a PolicyViolation (issue 23).
func TestReasonOf(t *testing.T) {
	unsafe := []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}}
	no := false
	for _, tc := range []struct {
		name string
		pol  Policy
		pod  func(*corev1.Pod)
		want string
	}{
		{"unsafe sysctl", Policy{}, func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: unsafe} }, SysctlForbiddenReason},
		{"unsafe sysctl and host network", Policy{AllowHostNetwork: &no}, func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: unsafe}
			p.Spec.HostNetwork = true
		}, Reason},
		{"host network", Policy{AllowHostNetwork: &no}, func(p *corev1.Pod) { p.Spec.HostNetwork = true }, Reason},
	} {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		tc.pod(p)
		err := tc.pol.Admit(p)
		if err == nil {
			t.Fatalf("%s: admitted", tc.name)
		}
		if got := ReasonOf(err); got != tc.want {
			t.Errorf("%s: reason %s, want %s (%v)", tc.name, got, tc.want, err)
		}
	}
	if got := ReasonOf(errors.New("other")); got != Reason {
		t.Errorf("another error: %s", got)
	}
}

// allowedDevices: globs over the device's path; unset allows every device allowedHostPaths
// admits; a hostPath typed as a device is refused by name with its field path (issue 22).
func TestAllowedDevices(t *testing.T) {
	pol := Policy{AllowedDevices: []string{"/dev/ttyUSB*", "/dev/gpiochip0"}}
	for path, want := range map[string]bool{"/dev/ttyUSB0": true, "/dev/ttyUSB12": true, "/dev/gpiochip0": true, "/dev/gpiochip1": false, "/dev/sda": false} {
		if got := CheckDevice(pol.AllowedDevices, path) == nil; got != want {
			t.Errorf("%s: allowed %v, want %v", path, got, want)
		}
	}
	if err := CheckDevice(nil, "/dev/sda"); err != nil {
		t.Errorf("unset allowedDevices refused a device: %v", err)
	}
	if CheckDevice([]string{}, "/dev/ttyUSB0") == nil {
		t.Error("allowedDevices: [] allowed a device")
	}
	chr := corev1.HostPathCharDev
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "c", Image: "busybox"}},
		Volumes: []corev1.Volume{
			{Name: "ok", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/dev/ttyUSB0", Type: &chr}}},
			{Name: "no", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/dev/sda", Type: &chr}}},
		},
	}}
	errs := pol.Check(pod)
	if len(errs) != 1 || errs[0].Error() != "spec.volumes[1].hostPath.path: Forbidden: device /dev/sda is not allowed by this node's policy (allowedDevices: /dev/ttyUSB*, /dev/gpiochip0)" {
		t.Errorf("errors %v", errs)
	}
	if err := (&Policy{AllowedDevices: []string{"dev/tty*"}}).Validate(); err == nil {
		t.Error("a relative pattern was accepted")
	}
	if err := (&Policy{AllowedDevices: []string{"/dev/[tty"}}).Validate(); err == nil {
		t.Error("a bad pattern was accepted")
	}
}
