package policy

import (
	"strings"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
	corev1 "k8s.io/api/core/v1"
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
