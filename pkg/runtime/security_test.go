package runtime

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/apparmor"
)

// The container's spec gets the profile apparmor.Host.Spec decides for the host in effect
// when it is made; the runtime's default profile is loaded first; the pause container (no
// request) gets none, even where the runtime would apply its default.
func TestAppArmorOpts(t *testing.T) {
	host := apparmor.Host{Enabled: true, Supported: true, Loaded: func(n string) (bool, error) { return n == "foo", nil }}
	var loads []string
	loadErr := error(nil)
	oldHost, oldLoad := appArmorHost, loadDefaultProfile
	t.Cleanup(func() { appArmorHost, loadDefaultProfile = oldHost, oldLoad })
	appArmorHost = func() apparmor.Host { return host }
	loadDefaultProfile = func(name string) error { loads = append(loads, name); return loadErr }

	local := func(n string) *apparmor.Request {
		return &apparmor.Request{Type: corev1.AppArmorProfileTypeLocalhost, Localhost: n}
	}
	for _, tc := range []struct {
		name      string
		host      apparmor.Host
		sec       Security
		loadErr   error
		want      string
		wantLoads int
		wantErr   string
	}{
		{name: "pause container", host: host, sec: Security{}},
		{name: "nothing asked: the default", host: host, sec: Security{AppArmor: &apparmor.Request{}}, want: apparmor.DefaultProfile, wantLoads: 1},
		{name: "privileged, nothing asked", host: host, sec: Security{Privileged: true, AppArmor: &apparmor.Request{}}},
		{name: "localhost loaded", host: host, sec: Security{AppArmor: local("foo")}, want: "foo"},
		{name: "localhost not loaded", host: host, sec: Security{AppArmor: local("bar")}, wantErr: "set apparmor profile: apparmor profile not found bar"},
		{name: "default fails to load", host: host, sec: Security{AppArmor: &apparmor.Request{Type: corev1.AppArmorProfileTypeRuntimeDefault}},
			loadErr: errors.New("apparmor_parser: not found"), wantLoads: 1,
			wantErr: "load apparmor profile cri-containerd.apparmor.d: apparmor_parser: not found"},
		{name: "no AppArmor, nothing asked", host: apparmor.Host{}, sec: Security{AppArmor: &apparmor.Request{}}},
		{name: "no AppArmor, localhost", host: apparmor.Host{}, sec: Security{AppArmor: local("foo")}, wantErr: "set apparmor profile: apparmor is not supported"},
	} {
		host, loads, loadErr = tc.host, nil, tc.loadErr
		s := &oci.Spec{Process: &specs.Process{ApparmorProfile: ""}, Linux: &specs.Linux{}}
		var err error
		for _, o := range securityOpts(tc.sec, "") {
			if err = o(context.Background(), nil, nil, s); err != nil {
				break
			}
		}
		if errString(err) != tc.wantErr || s.Process.ApparmorProfile != tc.want || len(loads) != tc.wantLoads {
			t.Errorf("%s: profile %q, loads %v, err %v; want %q, %d loads, %q", tc.name, s.Process.ApparmorProfile, loads, err, tc.want, tc.wantLoads, tc.wantErr)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// The groups are the primary group, then the image's groups for the user (Merge, the default:
// set before by oci.WithAdditionalGIDs), then the pod's supplementalGroups; with Strict the
// image's are left out. Each group once, in that order (issue 23).
func TestWithGroups(t *testing.T) {
	for _, tc := range []struct {
		name        string
		imageGroups bool
		want        []uint32
	}{
		{"merge", true, []uint32{1000, 50000, 60000, 2000}},
		{"strict", false, []uint32{1000, 60000, 2000}},
	} {
		// What oci.WithAdditionalGIDs leaves: the primary group first, then the image's.
		s := &oci.Spec{Process: &specs.Process{User: specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1000, 50000}}}}
		if err := withGroups([]int64{60000, 2000, 1000}, tc.imageGroups)(context.Background(), nil, nil, s); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Process.User.AdditionalGids, tc.want) {
			t.Errorf("%s: groups %v, want %v", tc.name, s.Process.User.AdditionalGids, tc.want)
		}
	}
}

func TestProcessUserLabel(t *testing.T) {
	for _, u := range []ProcessUser{{UID: 1000, GID: 1000, Groups: []int64{1000, 50000, 60000}}, {UID: 0, GID: 0}} {
		got, ok := ParseProcessUser(u.String())
		if !ok || got.UID != u.UID || got.GID != u.GID || !slices.Equal(got.Groups, u.Groups) {
			t.Errorf("%s: parsed %+v %v", u, got, ok)
		}
	}
	for _, bad := range []string{"", "1000", "1000:x:1", "1:2:3,a", "1:2:3:4"} {
		if _, ok := ParseProcessUser(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
