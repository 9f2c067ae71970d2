package policy

import (
	"encoding/json"
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
}

// What --print-config and the flag print must read back as the same policy; above all an
// empty list (nothing allowed) must not come out as a missing key (everything allowed).
func TestMarshalRoundTrip(t *testing.T) {
	for _, p := range []Policy{
		{},
		{AllowedHostPaths: []string{}, AllowedCapabilities: []string{}},
		{AllowedHostPaths: []string{"/srv"}},
		{AllowPrivileged: ptr(false), AllowHostNetwork: ptr(true), AllowHostPID: ptr(false), AllowHostIPC: ptr(false),
			AllowedHostPaths: []string{"/a", "/b"}, AllowedCapabilities: []string{"CHOWN"}, AllowPrivilegeEscalation: ptr(false)},
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
}
