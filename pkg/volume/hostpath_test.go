package volume

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

func hostPathVol(name, path string, t corev1.HostPathType) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptr(t)}}}
}

// The type checks under allowedHostPaths: the same verdicts as without, on what the path
// opens to below the allowed directory, and a refusal naming the field for a path that leaves.
func TestHostPathTypesPolicy(t *testing.T) {
	h := newHostTree(t)
	a := func(p string) string { return filepath.Join(h.allowed, p) }
	sock := a("s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cases := []struct {
		name, path string
		typ        corev1.HostPathType
		wantErr    string // substring; "" for success
	}{
		{"unset missing", a("nope"), corev1.HostPathUnset, ""},
		{"directory", a("dir"), corev1.HostPathDirectory, ""},
		{"directory through a link inside", a("in-abs"), corev1.HostPathDirectory, ""},
		{"directory missing", a("nope"), corev1.HostPathDirectory, "is not a directory"},
		{"directory on file", a("dir/f"), corev1.HostPathDirectory, "is not a directory"},
		{"directory through a link out", a("out-abs/etc"), corev1.HostPathDirectory, "spec.volumes[0].hostPath.path: Forbidden: host path " + a("out-abs/etc") + " leaves " + h.allowed},
		{"directoryOrCreate existing", a("dir"), corev1.HostPathDirectoryOrCreate, ""},
		{"directoryOrCreate on file", a("dir/f"), corev1.HostPathDirectoryOrCreate, "is not a directory"},
		{"directoryOrCreate through a link out", a("out-rel/made"), corev1.HostPathDirectoryOrCreate, "Forbidden: host path"},
		{"directoryOrCreate on a dangling link out", a("dangling-out"), corev1.HostPathDirectoryOrCreate, "Forbidden: host path"},
		{"file", a("dir/f"), corev1.HostPathFile, ""},
		{"file through a link inside", a("in-rel/f"), corev1.HostPathFile, ""},
		{"file through a link out", a("out-rel/secret"), corev1.HostPathFile, "Forbidden"},
		{"file on dir", a("dir"), corev1.HostPathFile, "is not a file"},
		{"fileOrCreate existing", a("dir/f"), corev1.HostPathFileOrCreate, ""},
		{"fileOrCreate on dir", a("dir"), corev1.HostPathFileOrCreate, "is not a file"},
		{"fileOrCreate missing parent", a("no/parent"), corev1.HostPathFileOrCreate, "no such file or directory"},
		{"fileOrCreate through a link out", a("out-rel/new-file"), corev1.HostPathFileOrCreate, "Forbidden"},
		{"fileOrCreate on a dangling link out", a("dangling-out"), corev1.HostPathFileOrCreate, "Forbidden"},
		{"socket", sock, corev1.HostPathSocket, ""},
		{"socket on file", a("dir/f"), corev1.HostPathSocket, "is not a socket file"},
		{"chardev", "/dev/null", corev1.HostPathCharDev, ""},
		{"blockdev on chardev", "/dev/null", corev1.HostPathBlockDev, "is not a block device"},
		{"not allowed at all", h.outside, corev1.HostPathDirectory, "host path " + h.outside + " is not under a directory this node's policy allows"},
		{"dot-dots in the path", h.allowed + "/dir/../../outside", corev1.HostPathDirectoryOrCreate, "host path " + h.outside + " is not under"},
		{"dot-dots that stay", h.allowed + "/dir/../new-through-dotdot", corev1.HostPathDirectoryOrCreate, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.cfg.AllowedHostPaths = []string{h.allowed, "/dev"}
			p, err := Prepare(e.cfg, podWith(hostPathVol("host", c.path, c.typ)), "")
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Paths["host"] != filepath.Clean(c.path) {
					t.Errorf("path = %q, want %q", p.Paths["host"], c.path)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), `volume "host"`) {
				t.Fatalf("err = %v, want one naming the volume and %q", err, c.wantErr)
			}
			if reasonOf(err) != ReasonFailedMount {
				t.Errorf("reason = %q", reasonOf(err))
			}
		})
	}
	if got := entries(t, h.outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside holds %q, want only its secret", got)
	}

	t.Run("create and undo", func(t *testing.T) {
		e := newEnv(t)
		e.cfg.AllowedHostPaths = []string{h.allowed}
		e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A"})
		d, f := a("made/deep"), a("dir/made-file")
		pod := podWith(hostPathVol("d", d, corev1.HostPathDirectoryOrCreate), hostPathVol("f", f, corev1.HostPathFileOrCreate))
		if _, err := Prepare(e.cfg, pod, ""); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]os.FileMode{d: 0o755, filepath.Dir(d): 0o755, f: 0o644} {
			if m := perm(t, p); m != want {
				t.Errorf("%s: mode %v, want %v", p, m, want)
			}
		}
		if _, err := Prepare(e.cfg, pod, ""); err != nil {
			t.Fatalf("second Prepare: %v", err)
		}
		// A failed Prepare takes away what it made, and only that.
		for _, p := range []string{d, filepath.Dir(d), f} {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		bad := podWith(append(pod.Spec.Volumes, corev1.Volume{Name: "bad", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}})...)
		if _, err := Prepare(e.cfg, bad, ""); err == nil {
			t.Fatal("Prepare succeeded")
		}
		for _, p := range []string{filepath.Dir(d), f} {
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Errorf("%s left after a failed Prepare: %v", p, err)
			}
		}
		if _, err := os.Stat(a("dir/f")); err != nil {
			t.Errorf("host file removed: %v", err)
		}
	})
}

// The attack of issue 20: a pod allowed only one directory plants a link to / in it and
// mounts the link. Under allowedHostPaths the mount is refused, and nothing outside is made;
// what stays inside is mounted as a bind of what was opened, recursive and a slave of the
// host's mounts. Without allowedHostPaths (or with /) nothing changes.
func TestHostPathMountsPolicy(t *testing.T) {
	needRoot(t)
	h := newHostTree(t)
	a := func(p string) string { return filepath.Join(h.allowed, p) }
	e := newEnv(t)
	e.cfg.AllowedHostPaths = []string{h.allowed}
	pod := podWith(
		hostPathVol("data", h.allowed, corev1.HostPathDirectory),
		hostPathVol("pwn", a("pwn"), corev1.HostPathUnset),
		hostPathVol("new", a("new/dir"), corev1.HostPathUnset),
		hostPathVol("inside", a("in-rel"), corev1.HostPathUnset),
		hostPathVol("file", a("in-abs/f"), corev1.HostPathFile),
	)
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	// The init container plants the link after Prepare, through the volume it may mount.
	if err := os.Symlink("/", a("pwn")); err != nil {
		t.Fatal(err)
	}
	mount := func(vm corev1.VolumeMount) (specs.Mount, error) {
		t.Helper()
		ms, err := p.Mounts(&corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{vm}}, nil)
		if err != nil {
			return specs.Mount{}, err
		}
		return ms[0], nil
	}
	_, err = mount(corev1.VolumeMount{Name: "pwn", MountPath: "/host"})
	if err == nil || reasonOf(err) != ReasonCreateContainerConfig ||
		!strings.Contains(err.Error(), `volume "pwn": spec.volumes[1].hostPath.path: Forbidden: host path `+a("pwn")+" leaves "+h.allowed) ||
		!strings.Contains(err.Error(), "the symbolic link "+a("pwn")+" points to /") {
		t.Fatalf("mount through a planted link: err = %v (%s)", err, reasonOf(err))
	}
	_, err = mount(corev1.VolumeMount{Name: "pwn", MountPath: "/host", SubPath: "etc"})
	if err == nil || reasonOf(err) != ReasonCreateContainerConfig || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("subPath of a planted link: err = %v", err)
	}
	_, err = mount(corev1.VolumeMount{Name: "data", MountPath: "/d", SubPath: "out-rel"})
	if err == nil || reasonOf(err) != ReasonCreateContainerConfig {
		t.Fatalf("subPath leaving a hostPath: err = %v", err)
	}

	// A submount below the allowed directory, before and after the bind.
	before := a("dir/sub")
	if err := unix.Mount("tmpfs", before, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(before, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(before, "m"), []byte("submount"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := mount(corev1.VolumeMount{Name: "data", MountPath: "/d", MountPropagation: ptr(corev1.MountPropagationNone)})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(resolve(e.cfg.PodDir), SubpathsDir, "data", "app", "0"); m.Source != want {
		t.Errorf("source %s, want the bind %s", m.Source, want)
	}
	if got := readString(t, filepath.Join(m.Source, "dir/sub/m")); got != "submount" {
		t.Errorf("bind does not show the submount: %q", got)
	}
	bind, ok, err := mountAt(m.Source)
	if err != nil || !ok || bind.shared() {
		t.Errorf("bind %+v (found %v, %v): want a mount that is not shared", bind, ok, err)
	}
	if m2, err := mount(corev1.VolumeMount{Name: "data", MountPath: "/d"}); err != nil || m2.Source != m.Source || countMounts(t, m.Source) != 1 {
		t.Errorf("second Mounts: %v, %s, %d mounts at the bind", err, m2.Source, countMounts(t, m.Source))
	}

	m, err = mount(corev1.VolumeMount{Name: "new", MountPath: "/n"})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(a("new/dir")); err != nil || !fi.IsDir() || perm(t, a("new/dir")) != 0o755 {
		t.Errorf("missing hostPath not made as a directory: %v", err)
	}
	m, err = mount(corev1.VolumeMount{Name: "inside", MountPath: "/i"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readString(t, filepath.Join(m.Source, "f")); got != "inside" {
		t.Errorf("link inside not followed: %q", got)
	}
	m, err = mount(corev1.VolumeMount{Name: "file", MountPath: "/f", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := readString(t, m.Source); got != "inside" || !slices.Contains(m.Options, "ro") {
		t.Errorf("file hostPath: %q, %v", got, m.Options)
	}

	// The link is swapped for a directory now: it is that directory that gets bound.
	if err := os.Remove(a("pwn")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(a("pwn"), 0o700); err != nil {
		t.Fatal(err)
	}
	if m, err = mount(corev1.VolumeMount{Name: "pwn", MountPath: "/host"}); err != nil {
		t.Fatal(err)
	}
	var st1, st2 unix.Stat_t
	if unix.Stat(m.Source, &st1) != nil || unix.Stat(a("pwn"), &st2) != nil || st1.Ino != st2.Ino {
		t.Error("bind is not the directory now at the path")
	}

	if err := Cleanup(e.cfg.PodDir); err != nil {
		t.Fatal(err)
	}
	if left := mountsUnder(t, e.cfg.PodDir); len(left) != 0 {
		t.Errorf("mounts left: %v", left)
	}
	if got := readString(t, filepath.Join(before, "m")); got != "submount" {
		t.Errorf("host submount lost after cleanup: %q", got)
	}
	if got := entries(t, h.outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside holds %q", got)
	}

	// No allowedHostPaths, or /: the path as given, links followed, as before.
	for _, allowed := range [][]string{nil, {"/"}} {
		e := newEnv(t)
		e.cfg.AllowedHostPaths = allowed
		p, err := Prepare(e.cfg, podWith(hostPathVol("out", a("out-rel"), corev1.HostPathUnset)), "")
		if err != nil {
			t.Fatal(err)
		}
		ms, err := p.Mounts(&corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/o"}}}, nil)
		if err != nil || ms[0].Source != h.outside {
			t.Errorf("allowed %q: %v, %+v; want the link followed to %s", allowed, err, ms, h.outside)
		}
	}
}

// HostToContainer through the bind: a mount made on the host below the hostPath after the
// container's mounts were made reaches the bind; Bidirectional uses the host path opened.
func TestHostPathPropagationPolicy(t *testing.T) {
	shared := tmpfsAt(t, unix.MS_SHARED)
	e := newEnv(t)
	e.cfg.AllowedHostPaths = []string{shared}
	if err := os.Mkdir(filepath.Join(shared, "later"), 0o755); err != nil {
		t.Fatal(err)
	}
	pod := podWith(hostPathVol("h", shared, corev1.HostPathDirectory))
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	c := &corev1.Container{Name: "app", VolumeMounts: []corev1.VolumeMount{{Name: "h", MountPath: "/h", MountPropagation: ptr(corev1.MountPropagationHostToContainer)}}}
	ms, err := p.Mounts(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ms[0].Options, "rslave") || !strings.HasPrefix(ms[0].Source, resolve(e.cfg.PodDir)) {
		t.Fatalf("mount %+v", ms[0])
	}
	later := filepath.Join(shared, "later")
	if err := unix.Mount("tmpfs", later, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(later, unix.MNT_DETACH)
	if err := os.WriteFile(filepath.Join(later, "x"), []byte("later"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(ms[0].Source, "later", "x")); err != nil || string(got) != "later" {
		t.Errorf("a host mount made later does not reach the bind: %q, %v", got, err)
	}
	// Cleanup unmounts the bind and its copy of the later mount, and not the host's.
	if err := Cleanup(e.cfg.PodDir); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(later, "x")); err != nil || string(got) != "later" {
		t.Errorf("host mount gone after cleanup: %q, %v", got, err)
	}

	e = newEnv(t)
	e.cfg.AllowedHostPaths = []string{shared}
	p, err = Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	priv := &corev1.Container{Name: "app", SecurityContext: &corev1.SecurityContext{Privileged: ptr(true)},
		VolumeMounts: []corev1.VolumeMount{{Name: "h", MountPath: "/h", MountPropagation: ptr(corev1.MountPropagationBidirectional)}}}
	ms, err = p.Mounts(priv, nil)
	if err != nil || ms[0].Source != resolve(shared) || !slices.Contains(ms[0].Options, "rshared") {
		t.Errorf("Bidirectional: %v, %+v", err, ms)
	}
}
