package apparmor

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func profile(t corev1.AppArmorProfileType, name ...string) *corev1.AppArmorProfile {
	p := &corev1.AppArmorProfile{Type: t}
	if len(name) > 0 {
		p.LocalhostProfile = &name[0]
	}
	return p
}

var (
	runtimeDefault = profile(corev1.AppArmorProfileTypeRuntimeDefault)
	unconfined     = profile(corev1.AppArmorProfileTypeUnconfined)
)

// testPod has an init container "init" and an app container "app"; ann are annotations by
// container name (the legacy prefix added).
func testPod(podP, initP, appP *corev1.AppArmorProfile, ann map[string]string) *corev1.Pod {
	p := &corev1.Pod{}
	p.Name, p.Namespace = "p", "default"
	if podP != nil {
		p.Spec.SecurityContext = &corev1.PodSecurityContext{AppArmorProfile: podP}
	}
	ctr := func(name string, prof *corev1.AppArmorProfile) corev1.Container {
		c := corev1.Container{Name: name}
		if prof != nil {
			c.SecurityContext = &corev1.SecurityContext{AppArmorProfile: prof}
		}
		return c
	}
	p.Spec.InitContainers = []corev1.Container{ctr("init", initP)}
	p.Spec.Containers = []corev1.Container{ctr("app", appP)}
	for c, v := range ann {
		if p.Annotations == nil {
			p.Annotations = map[string]string{}
		}
		p.Annotations[annotationPrefix+c] = v
	}
	return p
}

func TestProfile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		podP      *corev1.AppArmorProfile
		appP      *corev1.AppArmorProfile
		ann       map[string]string
		want      string // Request.String of the app container's profile; "" none
		wantLocal string
	}{
		{name: "nothing set"},
		{name: "pod field", podP: runtimeDefault, want: "runtime/default"},
		{name: "container field wins over pod field", podP: runtimeDefault, appP: unconfined, want: "unconfined"},
		{name: "container field wins over annotation", appP: profile(corev1.AppArmorProfileTypeLocalhost, "field"),
			ann: map[string]string{"app": "localhost/annotation"}, want: "localhost/field"},
		{name: "annotation wins over pod field", podP: runtimeDefault, ann: map[string]string{"app": "localhost/foo"}, want: "localhost/foo"},
		{name: "annotation unconfined wins over pod field", podP: runtimeDefault, ann: map[string]string{"app": "unconfined"}, want: "unconfined"},
		{name: "annotation runtime/default", ann: map[string]string{"app": "runtime/default"}, want: "runtime/default"},
		{name: "annotation of another container", podP: unconfined, ann: map[string]string{"init": "runtime/default"}, want: "unconfined"},
		{name: "invalid annotation ignored", podP: runtimeDefault, ann: map[string]string{"app": "docker/default"}, want: "runtime/default"},
		{name: "invalid annotation alone", ann: map[string]string{"app": "foo"}},
		{name: "empty localhost annotation", ann: map[string]string{"app": "localhost/"}, want: "localhost/"},
	} {
		p := testPod(tc.podP, nil, tc.appP, tc.ann)
		r := RequestFor(p, &p.Spec.Containers[0])
		if got := r.String(); got != tc.want {
			t.Errorf("%s: profile %q, want %q", tc.name, got, tc.want)
		}
		if got := Profile(p, &p.Spec.Containers[0]); (got == nil) != (tc.want == "") {
			t.Errorf("%s: Profile = %+v, want nil: %t", tc.name, got, tc.want == "")
		}
	}
}

func TestAdmit(t *testing.T) {
	const notEnabled = "Cannot enforce AppArmor: AppArmor is not enabled on the host"
	for _, tc := range []struct {
		name             string
		podP, initP, app *corev1.AppArmorProfile
		ann              map[string]string
		wantDisabled     string // the error on a host without AppArmor; "" admitted
		wantEnabled      string // the error on a host with it
	}{
		{name: "no profile"},
		{name: "unconfined everywhere", podP: unconfined, initP: unconfined, app: unconfined, ann: map[string]string{"app": "unconfined"}},
		{name: "pod RuntimeDefault", podP: runtimeDefault, wantDisabled: notEnabled},
		{name: "init container RuntimeDefault", initP: runtimeDefault, wantDisabled: notEnabled},
		{name: "app container Localhost", app: profile(corev1.AppArmorProfileTypeLocalhost, "foo"), wantDisabled: notEnabled},
		// The kubelet's isRequired looks at the pod's field even when every container overrides it.
		{name: "pod RuntimeDefault, containers Unconfined", podP: runtimeDefault, initP: unconfined, app: unconfined, wantDisabled: notEnabled},
		{name: "legacy annotation localhost", ann: map[string]string{"app": "localhost/foo"}, wantDisabled: notEnabled},
		{name: "legacy annotation runtime/default", ann: map[string]string{"init": "runtime/default"}, wantDisabled: notEnabled},
		{name: "one unconfined annotation, one not", ann: map[string]string{"init": "unconfined", "app": "runtime/default"}, wantDisabled: notEnabled},
		{name: "invalid annotation value", ann: map[string]string{"app": "foo"}, wantDisabled: notEnabled},
		{name: "localhost without a name", app: profile(corev1.AppArmorProfileTypeLocalhost), wantDisabled: notEnabled,
			wantEnabled: `Cannot enforce AppArmor: invalid empty AppArmor profile name for container "app"`},
		{name: "localhost with a blank name", podP: profile(corev1.AppArmorProfileTypeLocalhost, " "), wantDisabled: notEnabled,
			wantEnabled: `Cannot enforce AppArmor: invalid empty AppArmor profile name for container "init"`},
		{name: "empty localhost annotation", ann: map[string]string{"app": "localhost/"}, wantDisabled: notEnabled,
			wantEnabled: `Cannot enforce AppArmor: invalid empty AppArmor profile name for container "app"`},
		// Loaded or not is the runtime's check, at creation (Spec).
		{name: "localhost not loaded", app: profile(corev1.AppArmorProfileTypeLocalhost, "absent"), wantDisabled: notEnabled},
	} {
		p := testPod(tc.podP, tc.initP, tc.app, tc.ann)
		for _, h := range []struct {
			host Host
			want string
		}{
			{Host{}, tc.wantDisabled},
			{Host{Enabled: true, Supported: true}, tc.wantEnabled},
		} {
			err := h.host.Admit(p)
			if got := errString(err); got != h.want {
				t.Errorf("%s, enabled %t: Admit = %q, want %q", tc.name, h.host.Enabled, got, h.want)
			}
			var ae *Error
			if err != nil && !errors.As(err, &ae) {
				t.Errorf("%s: Admit returned %T, want *Error", tc.name, err)
			}
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestSpec(t *testing.T) {
	loaded := func(names ...string) func(string) (bool, error) {
		return func(n string) (bool, error) {
			for _, l := range names {
				if l == n {
					return true, nil
				}
			}
			return false, nil
		}
	}
	var (
		none        = Host{}
		kernelOnly  = Host{Enabled: true, Loaded: loaded("foo")} // no apparmor_parser
		supported   = Host{Enabled: true, Supported: true, Loaded: loaded("foo", "ns://bar")}
		unreadable  = Host{Enabled: true, Supported: true, Loaded: func(string) (bool, error) { return false, os.ErrPermission }}
		local       = func(n string) Request { return Request{Type: corev1.AppArmorProfileTypeLocalhost, Localhost: n} }
		defaultSpec = Spec{Profile: DefaultProfile, Default: true}
		rtDefault   = Request{Type: corev1.AppArmorProfileTypeRuntimeDefault}
		unconf      = Request{Type: corev1.AppArmorProfileTypeUnconfined}
	)
	for _, tc := range []struct {
		name       string
		host       Host
		req        Request
		privileged bool
		want       Spec
		wantErr    string
	}{
		{name: "no AppArmor, nothing asked", host: none},
		{name: "no AppArmor, unconfined", host: none, req: unconf},
		{name: "no AppArmor, RuntimeDefault", host: none, req: rtDefault, wantErr: "apparmor is not supported"},
		{name: "no AppArmor, localhost", host: none, req: local("foo"), wantErr: "apparmor is not supported"},
		{name: "kernel without parser, nothing asked", host: kernelOnly},
		{name: "kernel without parser, loaded localhost", host: kernelOnly, req: local("foo"), wantErr: "apparmor is not supported"},
		{name: "nothing asked: the runtime default", host: supported, want: defaultSpec},
		{name: "RuntimeDefault", host: supported, req: rtDefault, want: defaultSpec},
		{name: "nothing asked, privileged", host: supported, privileged: true},
		{name: "RuntimeDefault, privileged", host: supported, req: rtDefault, privileged: true},
		{name: "unconfined", host: supported, req: unconf},
		{name: "localhost loaded", host: supported, req: local("foo"), want: Spec{Profile: "foo"}},
		{name: "localhost loaded, privileged", host: supported, req: local("foo"), privileged: true, want: Spec{Profile: "foo"}},
		{name: "localhost namespaced", host: supported, req: local("ns://bar"), want: Spec{Profile: "ns://bar"}},
		{name: "localhost with the annotation's prefix", host: supported, req: local("localhost/foo"), want: Spec{Profile: "foo"}},
		{name: "localhost not loaded", host: supported, req: local("foobar"), wantErr: "apparmor profile not found foobar"},
		{name: "localhost, nothing loaded", host: Host{Enabled: true, Supported: true}, req: local("foo"), wantErr: "apparmor profile not found foo"},
		{name: "localhost without a name", host: supported, req: local(""), wantErr: "apparmor profile name is empty"},
		{name: "profiles unreadable", host: unreadable, req: local("foo"), wantErr: "read loaded apparmor profiles: permission denied"},
		{name: "unknown type", host: supported, req: Request{Type: "Foo"}, wantErr: `unknown apparmor profile type "Foo"`},
	} {
		got, err := tc.host.Spec(tc.req, tc.privileged)
		if errString(err) != tc.wantErr || got != tc.want {
			t.Errorf("%s: Spec = %+v, %v; want %+v, %q", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestDetect(t *testing.T) {
	type files map[string]string
	const profiles = "cri-containerd.apparmor.d (enforce)\nfoo (complain)\nns://bar (enforce)\nfoo-bar (enforce)\n"
	for _, tc := range []struct {
		name                   string
		files                  files
		container              string
		wantEnabled, wantSuppd bool
	}{
		{name: "no apparmor (this machine)", files: files{}},
		{name: "module says N", files: files{enabledFile: "N\n", profilesFile: "", parserFile: ""}},
		{name: "module says Y, no securityfs", files: files{enabledFile: "Y\n", parserFile: ""}},
		{name: "enabled, no parser", files: files{enabledFile: "Y\n", profilesFile: profiles}, wantEnabled: true},
		{name: "enabled and supported", files: files{enabledFile: "Y\n", profilesFile: profiles, parserFile: ""}, wantEnabled: true, wantSuppd: true},
		{name: "enabled, in a container", files: files{enabledFile: "Y\n", profilesFile: profiles, parserFile: ""}, container: "docker", wantEnabled: true},
	} {
		root := t.TempDir()
		for name, content := range tc.files {
			p := filepath.Join(root, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("container", tc.container)
		h := Detect(root)
		if h.Enabled != tc.wantEnabled || h.Supported != tc.wantSuppd {
			t.Errorf("%s: enabled %t supported %t, want %t %t", tc.name, h.Enabled, h.Supported, tc.wantEnabled, tc.wantSuppd)
		}
		if _, ok := tc.files[profilesFile]; !ok {
			if _, err := h.Loaded("foo"); err == nil {
				t.Errorf("%s: Loaded without a profiles file gave no error", tc.name)
			}
			continue
		}
		for name, want := range map[string]bool{"foo": tc.files[profilesFile] != "", "ns://bar": tc.files[profilesFile] != "",
			"fo": false, "bar": false, "foo-ba": false, "absent": false} {
			got, err := h.Loaded(name)
			if err != nil || got != want {
				t.Errorf("%s: Loaded(%q) = %t, %v; want %t", tc.name, name, got, err, want)
			}
		}
	}
}

// The host this runs on has a state, whatever it is, and System reads it once.
func TestSystem(t *testing.T) {
	a, b := System(), System()
	if a.Enabled != b.Enabled || a.Supported != b.Supported || a.Supported && !a.Enabled {
		t.Errorf("System: %+v then %+v", a, b)
	}
	if _, err := os.Stat("/sys/module/apparmor/parameters/enabled"); err != nil && a.Enabled {
		t.Errorf("System says enabled without /sys/module/apparmor: %v", err)
	}
	if !strings.HasPrefix(DefaultProfile, "cri-containerd") {
		t.Errorf("DefaultProfile %q is not containerd's", DefaultProfile)
	}
}
