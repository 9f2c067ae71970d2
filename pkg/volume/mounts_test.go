package volume

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// tmpfsAt mounts a tmpfs on a new directory with the given propagation (unix.MS_SHARED or
// unix.MS_PRIVATE) and unmounts it when the test ends.
func tmpfsAt(t *testing.T, propagation uintptr) string {
	t.Helper()
	needRoot(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", propagation, ""); err != nil {
		t.Fatal(err)
	}
	return dir
}

// envAt is newEnv with its directories below root.
func envAt(t *testing.T, root string) *env {
	t.Helper()
	e := &env{cfg: Config{
		PodDir:       filepath.Join(root, "pods", "uid-1"),
		ConfigMapDir: filepath.Join(root, "configmaps"),
		SecretDir:    filepath.Join(root, "secrets"),
	}}
	t.Cleanup(func() {
		if err := Cleanup(e.cfg.PodDir); err != nil {
			t.Errorf("Cleanup: %v", err)
		}
	})
	return e
}

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	ms, err := readMounts()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range ms {
		if within(m.point, resolve(dir)) {
			out = append(out, m.point)
		}
	}
	return out
}

func TestMountOptions(t *testing.T) {
	e := newEnv(t)
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A"})
	missing := filepath.Join(t.TempDir(), "made-by-runtime")
	pod := podWith(
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: missing, Type: ptr(corev1.HostPathUnset)}}},
	)
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{
		{Name: "data", MountPath: "/data/deeper/still"},
		{Name: "data", MountPath: "/ro", ReadOnly: true, RecursiveReadOnly: ptr(corev1.RecursiveReadOnlyEnabled)},
		{Name: "cfg", MountPath: "/etc/app"},
		{Name: "host", MountPath: "/data", MountPropagation: ptr(corev1.MountPropagationNone)},
	}}
	pod.Spec.Containers[0] = *c
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := p.Mounts(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.Mount{
		{Destination: "/ro", Type: "bind", Source: resolve(p.Paths["data"]), Options: []string{"rbind", "rprivate", "ro", "rro"}},
		{Destination: "/data", Type: "bind", Source: resolve(missing), Options: []string{"rbind", "rprivate", "rw"}},
		{Destination: "/etc/app", Type: "bind", Source: resolve(p.Paths["cfg"]), Options: []string{"rbind", "rprivate", "ro"}},
		{Destination: "/data/deeper/still", Type: "bind", Source: resolve(p.Paths["data"]), Options: []string{"rbind", "rprivate", "rw"}},
	}
	if len(ms) != len(want) {
		t.Fatalf("got %d mounts: %+v", len(ms), ms)
	}
	for i := range want {
		if ms[i].Destination != want[i].Destination || ms[i].Source != want[i].Source || ms[i].Type != want[i].Type || !slices.Equal(ms[i].Options, want[i].Options) {
			t.Errorf("mount %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0755 {
		t.Errorf("hostPath with no type not created as a 0755 directory: %v", err)
	}
	if RootfsPropagation(ms) != "" {
		t.Errorf("RootfsPropagation = %q", RootfsPropagation(ms))
	}

	// Errors for containers.
	for _, tc := range []struct {
		name string
		vm   corev1.VolumeMount
		priv bool
		want string
	}{
		{"unknown volume", corev1.VolumeMount{Name: "ghost", MountPath: "/g"}, false, `cannot find volume "ghost"`},
		{"bidirectional unprivileged", corev1.VolumeMount{Name: "data", MountPath: "/b", MountPropagation: ptr(corev1.MountPropagationBidirectional)}, false, "only to privileged containers"},
		{"subPathExpr missing var", corev1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "logs/$(NOPE)"}, false, "missing value for NOPE"},
		{"subPath absolute", corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "/etc"}, false, "must be a relative path"},
		{"subPath dotdot", corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "../x"}, false, "must not contain '..'"},
		{"subPathExpr dotdot", corev1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "$(UP)/x"}, false, "must not contain '..'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{tc.vm}}
			if tc.priv {
				c.SecurityContext = &corev1.SecurityContext{Privileged: ptr(true)}
			}
			_, err := p.Mounts(c, map[string]string{"UP": ".."})
			if err == nil || !strings.Contains(err.Error(), tc.want) || reasonOf(err) != ReasonCreateContainerConfig {
				t.Errorf("err = %v (reason %q), want %q", err, reasonOf(err), tc.want)
			}
		})
	}
}

func TestPropagation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mount    uintptr
		mode     corev1.MountPropagationMode
		wantOpt  string
		wantRoot string
		wantErr  string
	}{
		{"none on private", unix.MS_PRIVATE, corev1.MountPropagationNone, "rprivate", "", ""},
		{"hostToContainer on shared", unix.MS_SHARED, corev1.MountPropagationHostToContainer, "rslave", "rslave", ""},
		{"bidirectional on shared", unix.MS_SHARED, corev1.MountPropagationBidirectional, "rshared", "rshared", ""},
		{"hostToContainer on private", unix.MS_PRIVATE, corev1.MountPropagationHostToContainer, "", "", "not a shared or slave mount"},
		{"bidirectional on private", unix.MS_PRIVATE, corev1.MountPropagationBidirectional, "", "", "not a shared mount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := envAt(t, tmpfsAt(t, tc.mount))
			pod := podWith(corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
			p, err := Prepare(e.cfg, pod, "")
			if err != nil {
				t.Fatal(err)
			}
			c := &corev1.Container{Name: "app", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data", MountPropagation: ptr(tc.mode)}}}
			ms, err := p.Mounts(c, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || reasonOf(err) != ReasonCreateContainer {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ms[0].Options, []string{"rbind", tc.wantOpt, "rw"}) {
				t.Errorf("options %v", ms[0].Options)
			}
			if got := RootfsPropagation(ms); got != tc.wantRoot {
				t.Errorf("RootfsPropagation = %q, want %q", got, tc.wantRoot)
			}
		})
	}
}

func TestSubPath(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		name := "openat2"
		if fallback {
			name = "fallback"
		}
		t.Run(name, func(t *testing.T) {
			needRoot(t)
			if fallback {
				noOpenat2.Store(true)
				defer noOpenat2.Store(false)
			}
			testSubPath(t)
		})
	}
}

func testSubPath(t *testing.T) {
	e := newEnv(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0600); err != nil {
		t.Fatal(err)
	}
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A1"})
	pod := podWith(
		corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, DefaultMode: ptr(int32(0644))}}},
	)
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	vol := p.Paths["data"]
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(vol, "existing"), 0700))
	must(os.WriteFile(filepath.Join(vol, "existing", "f"), []byte("in"), 0644))
	must(os.Symlink("existing", filepath.Join(vol, "inside-link")))
	must(os.Symlink(outside, filepath.Join(vol, "abs-out")))
	rel, _ := filepath.Rel(vol, outside)
	must(os.Symlink(rel, filepath.Join(vol, "rel-out")))
	must(os.Symlink("../../../../../../../../../../..", filepath.Join(vol, "up")))
	must(os.Symlink(filepath.Join(outside, "not-yet"), filepath.Join(vol, "dangling-out")))

	mount := func(vm corev1.VolumeMount, env map[string]string) (specs.Mount, error) {
		c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{vm}}
		ms, err := p.Mounts(c, env)
		if err != nil {
			return specs.Mount{}, err
		}
		return ms[0], nil
	}

	// Good subPaths.
	m, err := mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "existing"}, nil)
	must(err)
	if want := filepath.Join(resolve(e.cfg.PodDir), "volume-subpaths", "data", "app", "0"); m.Source != want {
		t.Errorf("source %s, want %s", m.Source, want)
	}
	if readString(t, filepath.Join(m.Source, "f")) != "in" {
		t.Error("bind does not show the subPath")
	}
	// Again: the bind is reused, not stacked.
	m2, err := mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "existing"}, nil)
	must(err)
	if m2.Source != m.Source || countMounts(t, m.Source) != 1 {
		t.Errorf("second Mounts: %s, %d mounts", m2.Source, countMounts(t, m.Source))
	}
	m, err = mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "inside-link/"}, nil)
	must(err)
	if readString(t, filepath.Join(m.Source, "f")) != "in" {
		t.Error("symlink inside the volume not followed")
	}
	m, err = mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "existing/f"}, nil)
	must(err)
	if readString(t, m.Source) != "in" {
		t.Error("file subPath")
	}
	// A missing subPath is created as a directory with the volume's mode.
	_, err = mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "new/deep"}, nil)
	must(err)
	if m := perm(t, filepath.Join(vol, "new", "deep")); m != 0777 {
		t.Errorf("created subPath mode %v", m)
	}
	// subPathExpr.
	m, err = mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "logs/$(POD_NAME)$$"}, map[string]string{"POD_NAME": "web"})
	must(err)
	if fi, err := os.Stat(filepath.Join(vol, "logs", "web$")); err != nil || !fi.IsDir() {
		t.Errorf("subPathExpr dir not created: %v", err)
	}

	// Escapes.
	for _, sub := range []string{"abs-out", "rel-out", "up", "dangling-out", "rel-out/secret", "abs-out/newdir", "rel-out/newdir"} {
		_, err := mount(corev1.VolumeMount{Name: "data", MountPath: "/x", SubPath: sub}, nil)
		if err == nil || reasonOf(err) != ReasonCreateContainerConfig {
			t.Errorf("subPath %q: err = %v", sub, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 1 {
		t.Errorf("something was created outside the volume: %d entries", len(ents))
	}

	// A configMap key through subPath is a bind of one version of the file: it keeps it.
	m, err = mount(corev1.VolumeMount{Name: "cfg", MountPath: "/etc/a", SubPath: "a"}, nil)
	must(err)
	if !slices.Contains(m.Options, "ro") || readString(t, m.Source) != "A1" {
		t.Fatalf("configMap subPath: %+v", m)
	}
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A2"})
	if changed, err := p.Refresh(pod, ""); err != nil || !changed {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	if got := readString(t, filepath.Join(p.Paths["cfg"], "a")); got != "A2" {
		t.Errorf("volume shows %q", got)
	}
	if got := readString(t, m.Source); got != "A1" {
		t.Errorf("subPath bind shows %q, want the old A1", got)
	}

	// Cleanup takes every bind away.
	if n := len(mountsUnder(t, e.cfg.PodDir)); n == 0 {
		t.Fatal("no binds to clean up")
	}
	must(Cleanup(e.cfg.PodDir))
	if left := mountsUnder(t, e.cfg.PodDir); len(left) != 0 {
		t.Errorf("mounts left: %v", left)
	}
	for _, d := range []string{"volumes", "volume-subpaths"} {
		if _, err := os.Stat(filepath.Join(e.cfg.PodDir, d)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	if readString(t, filepath.Join(outside, "secret")) != "host" {
		t.Error("host file touched")
	}
}

// TestCleanupKeepsHostData: a hostPath directory bound through subPath is unmounted, never
// deleted.
func TestCleanupKeepsHostData(t *testing.T) {
	needRoot(t)
	e := newEnv(t)
	host := t.TempDir()
	if err := os.MkdirAll(filepath.Join(host, "sub"), 0755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "sub", "keep"), []byte("k"), 0644); err != nil {
		t.Fatal(err)
	}
	pod := podWith(corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: ptr(corev1.HostPathDirectory)}}})
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "host", MountPath: "/h", SubPath: "sub"}}}
	ms, err := p.Mounts(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if readString(t, filepath.Join(ms[0].Source, "keep")) != "k" {
		t.Fatal("bind does not show the host dir")
	}
	if err := Cleanup(e.cfg.PodDir); err != nil {
		t.Fatal(err)
	}
	if readString(t, filepath.Join(host, "sub", "keep")) != "k" {
		t.Error("host data deleted")
	}
}

func TestExpandSubPath(t *testing.T) {
	env := map[string]string{"A": "a", "B": "b", "EMPTY": ""}
	for _, tc := range []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{"$(A)/$(B)", "a/b", ""},
		{"x$$(A)", "x$(A)", ""},
		{"$(A", "$(A", ""},
		{"$A", "$A", ""},
		{"end$", "end$", ""},
		{"$(MISSING)/$(EMPTY)/$(A)", "", "missing value for EMPTY, MISSING"},
	} {
		got, err := expandSubPath(tc.in, env)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: err = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
