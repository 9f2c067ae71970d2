package pod

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/apparmor"
)

func i64(v int64) *int64 { return &v }
func yes() *bool         { b := true; return &b }
func no() *bool          { b := false; return &b }

func TestSecurity(t *testing.T) {
	pod := func(psc *corev1.PodSecurityContext) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: psc}}
		p.Name, p.Namespace = "p", "default"
		return p
	}
	t.Run("container wins over pod", func(t *testing.T) {
		sec, err := Security(pod(&corev1.PodSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(2000), FSGroup: i64(3000), SupplementalGroups: []int64{4000}}),
			&corev1.Container{Name: "c", SecurityContext: &corev1.SecurityContext{RunAsUser: i64(1001)}}, "", "/s")
		if err != nil {
			t.Fatal(err)
		}
		if *sec.UID != 1001 || *sec.GID != 2000 || !slices.Equal(sec.SupplementalGroups, []int64{4000, 3000}) {
			t.Errorf("got uid %d gid %d groups %v", *sec.UID, *sec.GID, sec.SupplementalGroups)
		}
	})
	for _, tc := range []struct {
		name      string
		psc       *corev1.PodSecurityContext
		csc       *corev1.SecurityContext
		imageUser string
		wantErr   string
	}{
		{"nonroot with root image", &corev1.PodSecurityContext{RunAsNonRoot: yes()}, nil, "", "image will run as root"},
		{"nonroot with uid 0", nil, &corev1.SecurityContext{RunAsNonRoot: yes(), RunAsUser: i64(0)}, "", "image will run as root"},
		{"nonroot with named image user", &corev1.PodSecurityContext{RunAsNonRoot: yes()}, nil, "nobody", "non-numeric user"},
		{"nonroot with numeric image user", &corev1.PodSecurityContext{RunAsNonRoot: yes()}, nil, "65534:65534", ""},
		{"nonroot with runAsUser", &corev1.PodSecurityContext{RunAsNonRoot: yes(), RunAsUser: i64(5)}, nil, "", ""},
		{"container says nonroot false", &corev1.PodSecurityContext{RunAsNonRoot: yes()}, &corev1.SecurityContext{RunAsNonRoot: no()}, "", ""},
		{"localhost profile without path", &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost}}, nil, "", "localhostProfile"},
	} {
		_, err := Security(pod(tc.psc), &corev1.Container{Name: "c", SecurityContext: tc.csc}, tc.imageUser, "/s")
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	t.Run("caps, seccomp, escalation", func(t *testing.T) {
		lp := "../../etc/profile.json"
		sec, err := Security(pod(&corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &lp},
			Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}}),
			&corev1.Container{Name: "c", SecurityContext: &corev1.SecurityContext{
				Capabilities:             &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}, Drop: []corev1.Capability{"ALL"}},
				AllowPrivilegeEscalation: no(), ReadOnlyRootFilesystem: yes()}}, "", "/var/lib/minipod/seccomp")
		if err != nil {
			t.Fatal(err)
		}
		if sec.Seccomp != "/var/lib/minipod/seccomp/etc/profile.json" {
			t.Errorf("a Localhost profile must stay inside the seccomp dir: %q", sec.Seccomp)
		}
		if !sec.NoNewPrivileges || !sec.ReadOnlyRootfs || sec.Sysctls["net.ipv4.ip_unprivileged_port_start"] != "0" ||
			!slices.Equal(sec.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(sec.CapDrop, []string{"ALL"}) {
			t.Errorf("got %+v", sec)
		}
	})
}

// Each container carries its AppArmor request to the runtime: its own field, else its legacy
// annotation, else the pod's field; a container with none still carries an empty request (the
// runtime's default applies where AppArmor is supported), unlike the pause container.
func TestSecurityAppArmor(t *testing.T) {
	foo := "foo"
	for _, tc := range []struct {
		name string
		psc  *corev1.PodSecurityContext
		csc  *corev1.SecurityContext
		ann  map[string]string
		want apparmor.Request
	}{
		{name: "none", want: apparmor.Request{}},
		{name: "pod field", psc: &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}},
			want: apparmor.Request{Type: corev1.AppArmorProfileTypeRuntimeDefault}},
		{name: "annotation over pod field", psc: &corev1.PodSecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeRuntimeDefault}},
			ann:  map[string]string{"container.apparmor.security.beta.kubernetes.io/c": "localhost/foo"},
			want: apparmor.Request{Type: corev1.AppArmorProfileTypeLocalhost, Localhost: "foo"}},
		{name: "container field over annotation", csc: &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined}},
			ann:  map[string]string{"container.apparmor.security.beta.kubernetes.io/c": "localhost/foo"},
			want: apparmor.Request{Type: corev1.AppArmorProfileTypeUnconfined}},
		{name: "container field localhost", csc: &corev1.SecurityContext{AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeLocalhost, LocalhostProfile: &foo}},
			want: apparmor.Request{Type: corev1.AppArmorProfileTypeLocalhost, Localhost: "foo"}},
	} {
		p := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: tc.psc}}
		p.Name, p.Namespace, p.Annotations = "p", "default", tc.ann
		sec, err := Security(p, &corev1.Container{Name: "c", SecurityContext: tc.csc}, "", "/s")
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if sec.AppArmor == nil || *sec.AppArmor != tc.want {
			t.Errorf("%s: AppArmor = %+v, want %+v", tc.name, sec.AppArmor, tc.want)
		}
	}
}
