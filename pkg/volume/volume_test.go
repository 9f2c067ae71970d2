package volume

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// env is one test's directories; Cleanup of the pod directory runs at the end of the test.
type env struct {
	cfg Config
}

func newEnv(t *testing.T) *env {
	t.Helper()
	root := t.TempDir()
	e := &env{cfg: Config{
		PodDir:       filepath.Join(root, "state", "pods", "uid-1"),
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

// object writes dir/name/key files.
func (e *env) object(t *testing.T, dir, name string, kv map[string]string) {
	t.Helper()
	d := filepath.Join(dir, name)
	if err := os.MkdirAll(d, 0700); err != nil {
		t.Fatal(err)
	}
	for k, v := range kv {
		if err := os.WriteFile(filepath.Join(d, k), []byte(v), 0600); err != nil {
			t.Fatal(err)
		}
	}
}

// podWith is a pod whose one container mounts every volume at /v/<name>.
func podWith(vols ...corev1.Volume) *corev1.Pod {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1",
			Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"note": "a \"quoted\" value"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox"}}},
	}
	for _, v := range vols {
		pod.Spec.Volumes = append(pod.Spec.Volumes, v)
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: v.Name, MountPath: "/v/" + v.Name})
	}
	return pod
}

func ptr[T any](v T) *T { return &v }

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func reasonOf(err error) string {
	var ve *Error
	if errors.As(err, &ve) {
		return ve.Reason
	}
	return ""
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func perm(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode() & (os.ModePerm | os.ModeSetgid | os.ModeSticky)
}

func TestEmptyDir(t *testing.T) {
	e := newEnv(t)
	p, err := Prepare(e.cfg, podWith(corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}), "")
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(e.cfg.PodDir, "volumes", "empty-dir", "scratch")
	if p.Paths["scratch"] != want {
		t.Fatalf("path = %q, want %q", p.Paths["scratch"], want)
	}
	if m := perm(t, want); m != 0777 {
		t.Errorf("mode = %v, want 0777", m)
	}
	if err := os.WriteFile(filepath.Join(want, "keep"), []byte("x"), 0644); err != nil {
		t.Fatal(err)
	}
	// Prepare again (daemon restart): the content stays.
	if _, err := Prepare(e.cfg, podWith(corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}), ""); err != nil {
		t.Fatal(err)
	}
	if readString(t, filepath.Join(want, "keep")) != "x" {
		t.Error("content lost on second Prepare")
	}
	if err := Cleanup(e.cfg.PodDir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.PodDir, "volumes")); !os.IsNotExist(err) {
		t.Errorf("volumes dir left: %v", err)
	}
	if err := Cleanup(e.cfg.PodDir); err != nil {
		t.Errorf("second Cleanup: %v", err)
	}
	if err := Cleanup(filepath.Join(t.TempDir(), "never")); err != nil {
		t.Errorf("Cleanup of a missing dir: %v", err)
	}
}

func TestEmptyDirMemory(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		name     string
		limit    *resource.Quantity
		wantSize string // in the super options; "" means not checked
	}{
		{"sized", ptr(resource.MustParse("1Mi")), "size=1024k"},
		{"unsized", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pod := podWith(corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: tc.limit}}})
			p, err := Prepare(e.cfg, pod, "")
			if err != nil {
				t.Fatal(err)
			}
			dir := resolve(p.Paths["mem"])
			m, ok, err := mountAt(dir)
			if err != nil || !ok || m.fstype != "tmpfs" {
				t.Fatalf("no tmpfs at %s: %v %v %+v", dir, ok, err, m)
			}
			if tc.wantSize != "" && !strings.Contains(m.superOpts, tc.wantSize) {
				t.Errorf("super options %q lack %q", m.superOpts, tc.wantSize)
			}
			// Idempotent: no second mount on top.
			if _, err := Prepare(e.cfg, pod, ""); err != nil {
				t.Fatal(err)
			}
			if n := countMounts(t, dir); n != 1 {
				t.Errorf("%d mounts at %s after a second Prepare, want 1", n, dir)
			}
			if err := Cleanup(e.cfg.PodDir); err != nil {
				t.Fatal(err)
			}
			if n := countMounts(t, dir); n != 0 {
				t.Errorf("%d mounts left after Cleanup", n)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("dir left after Cleanup: %v", err)
			}
		})
	}
}

func countMounts(t *testing.T, p string) int {
	t.Helper()
	ms, err := readMounts()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range ms {
		if m.point == p {
			n++
		}
	}
	return n
}

func TestHostPathTypes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	block := ""
	for _, c := range []string{"/dev/loop0", "/dev/vda", "/dev/sda", "/dev/nvme0n1"} {
		if fi, err := os.Stat(c); err == nil && fi.Mode().Type() == os.ModeDevice {
			block = c
			break
		}
	}
	type tc struct {
		name    string
		path    string
		typ     corev1.HostPathType
		wantErr string // substring; "" for success
	}
	cases := []tc{
		{"unset missing", filepath.Join(dir, "nope"), corev1.HostPathUnset, ""},
		{"directory", dir, corev1.HostPathDirectory, ""},
		{"directory missing", filepath.Join(dir, "nope"), corev1.HostPathDirectory, "is not a directory"},
		{"directory on file", file, corev1.HostPathDirectory, "is not a directory"},
		{"directoryOrCreate existing", dir, corev1.HostPathDirectoryOrCreate, ""},
		{"directoryOrCreate on file", file, corev1.HostPathDirectoryOrCreate, "is not a directory"},
		{"file", file, corev1.HostPathFile, ""},
		{"file on dir", dir, corev1.HostPathFile, "is not a file"},
		{"file missing", filepath.Join(dir, "nope"), corev1.HostPathFile, "is not a file"},
		{"fileOrCreate existing", file, corev1.HostPathFileOrCreate, ""},
		{"fileOrCreate on dir", dir, corev1.HostPathFileOrCreate, "is not a file"},
		{"fileOrCreate missing parent", filepath.Join(dir, "no", "parent"), corev1.HostPathFileOrCreate, "no such file or directory"},
		{"socket", sock, corev1.HostPathSocket, ""},
		{"socket on file", file, corev1.HostPathSocket, "is not a socket file"},
		{"chardev", "/dev/null", corev1.HostPathCharDev, ""},
		{"chardev on file", file, corev1.HostPathCharDev, "is not a character device"},
		{"blockdev on chardev", "/dev/null", corev1.HostPathBlockDev, "is not a block device"},
		{"blockdev on file", file, corev1.HostPathBlockDev, "is not a block device"},
	}
	if block != "" {
		cases = append(cases, tc{"blockdev", block, corev1.HostPathBlockDev, ""}, tc{"chardev on blockdev", block, corev1.HostPathCharDev, "is not a character device"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			p, err := Prepare(e.cfg, podWith(corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: c.path, Type: ptr(c.typ)}}}), "")
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if p.Paths["host"] != c.path {
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

	t.Run("create", func(t *testing.T) {
		old := syscall.Umask(0077)
		defer syscall.Umask(old)
		e := newEnv(t)
		d := filepath.Join(dir, "made", "deep")
		f := filepath.Join(dir, "made-file")
		pod := podWith(
			corev1.Volume{Name: "d", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: d, Type: ptr(corev1.HostPathDirectoryOrCreate)}}},
			corev1.Volume{Name: "f", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: f, Type: ptr(corev1.HostPathFileOrCreate)}}},
		)
		if _, err := Prepare(e.cfg, pod, ""); err != nil {
			t.Fatal(err)
		}
		for p, want := range map[string]os.FileMode{d: 0755, filepath.Dir(d): 0755, f: 0644} {
			if m := perm(t, p); m != want {
				t.Errorf("%s: mode %v, want %v", p, m, want)
			}
		}
		if fi, _ := os.Stat(f); fi.Size() != 0 || !fi.Mode().IsRegular() {
			t.Errorf("created file is not an empty regular file: %v", fi.Mode())
		}
		// Still fine the second time.
		if _, err := Prepare(e.cfg, pod, ""); err != nil {
			t.Fatal(err)
		}
	})
}

// checkLayout checks the atomic writer layout of dir and returns the ..data target.
func checkLayout(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	ts, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil {
		t.Fatalf("..data: %v", err)
	}
	if !strings.HasPrefix(ts, "..") || strings.Contains(ts, "/") {
		t.Fatalf("..data -> %q, want a timestamped sibling", ts)
	}
	for name, want := range files {
		top, _, _ := strings.Cut(name, "/")
		link, err := os.Readlink(filepath.Join(dir, top))
		if err != nil || link != filepath.Join("..data", top) {
			t.Errorf("%s -> %q (%v), want ..data/%s", top, link, err, top)
		}
		if got := readString(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	return ts
}

func TestConfigMap(t *testing.T) {
	cm := func(name string, items []corev1.KeyToPath, dm *int32, optional *bool) corev1.Volume {
		return corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items, DefaultMode: dm, Optional: optional}}}
	}
	for _, tc := range []struct {
		name    string
		vol     corev1.Volume
		files   map[string]string
		modes   map[string]os.FileMode
		absent  []string
		wantErr string
	}{
		{name: "all keys", vol: cm("app", nil, ptr(int32(0644)), nil),
			files: map[string]string{"a.conf": "A", "b.conf": "B", ".hidden": "H"}, modes: map[string]os.FileMode{"a.conf": 0644}},
		{name: "default mode", vol: cm("app", nil, ptr(int32(0600)), nil), modes: map[string]os.FileMode{"a.conf": 0600, "b.conf": 0600}},
		{name: "items with path and mode", vol: cm("app", []corev1.KeyToPath{{Key: "a.conf", Path: "conf/nested/a"}, {Key: "b.conf", Path: "b", Mode: ptr(int32(0400))}}, ptr(int32(0644)), nil),
			files: map[string]string{"conf/nested/a": "A", "b": "B"}, modes: map[string]os.FileMode{"conf/nested/a": 0644, "b": 0400}, absent: []string{"a.conf", "b.conf"}},
		{name: "missing configmap", vol: cm("nope", nil, nil, nil), wantErr: `configmap "nope" not found`},
		{name: "missing optional configmap", vol: cm("nope", nil, nil, ptr(true)), files: map[string]string{}},
		{name: "missing key", vol: cm("app", []corev1.KeyToPath{{Key: "zzz", Path: "z"}}, nil, nil), wantErr: "non-existent config key: zzz"},
		{name: "missing key optional", vol: cm("app", []corev1.KeyToPath{{Key: "zzz", Path: "z"}, {Key: "a.conf", Path: "a"}}, nil, ptr(true)),
			files: map[string]string{"a": "A"}, absent: []string{"z"}},
		{name: "bad name", vol: cm("../etc", nil, nil, nil), wantErr: "invalid name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a.conf": "A", "b.conf": "B", ".hidden": "H"})
			// Not keys: a subdirectory and a name no key can have.
			_ = os.MkdirAll(filepath.Join(e.cfg.ConfigMapDir, "app", "subdir"), 0700)
			_ = os.WriteFile(filepath.Join(e.cfg.ConfigMapDir, "app", "..data"), []byte("x"), 0600)
			p, err := Prepare(e.cfg, podWith(tc.vol), "")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), `volume "cfg"`) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if reasonOf(err) != ReasonFailedMount {
					t.Errorf("reason = %q", reasonOf(err))
				}
				if _, err := os.Stat(filepath.Join(e.cfg.PodDir, "volumes")); !os.IsNotExist(err) {
					t.Errorf("failed Prepare left %s/volumes: %v", e.cfg.PodDir, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := p.Paths["cfg"]
			checkLayout(t, dir, tc.files)
			for name, want := range tc.modes {
				if m := perm(t, filepath.Join(dir, name)); m != want {
					t.Errorf("%s: mode %v, want %v", name, m, want)
				}
			}
			for _, name := range append(tc.absent, "subdir", "..data/..data") {
				if _, err := os.Lstat(filepath.Join(dir, name)); !os.IsNotExist(err) {
					t.Errorf("%s exists: %v", name, err)
				}
			}
			if tc.files != nil {
				ents, _ := os.ReadDir(filepath.Join(dir, "..data"))
				if len(ents) != countTop(tc.files) {
					t.Errorf("..data holds %d entries, want %d", len(ents), countTop(tc.files))
				}
			}
		})
	}
}

func countTop(files map[string]string) int {
	tops := map[string]bool{}
	for f := range files {
		tops[topLevel(f)] = true
	}
	return len(tops)
}

func TestSecret(t *testing.T) {
	e := newEnv(t)
	e.object(t, e.cfg.SecretDir, "creds", map[string]string{"password": "s3cr3t-value", "user": "admin"})
	pod := podWith(
		corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0400))}}},
		corev1.Volume{Name: "sec-default", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0644))}}},
	)
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := p.Paths["sec"]
	checkLayout(t, dir, map[string]string{"password": "s3cr3t-value", "user": "admin"})
	if m := perm(t, filepath.Join(dir, "password")); m != 0400 {
		t.Errorf("password mode %v, want 0400", m)
	}
	if m := perm(t, filepath.Join(p.Paths["sec-default"], "user")); m != 0644 {
		t.Errorf("defaultMode 0644 gave %v", m)
	}
	if m := perm(t, filepath.Dir(dir)); m != 0700 {
		t.Errorf("secret kind dir mode %v, want 0700", m)
	}
	if os.Geteuid() == 0 {
		if m, ok, _ := mountAt(resolve(dir)); !ok || m.fstype != "tmpfs" {
			t.Errorf("secret volume is not a tmpfs")
		}
	}

	// Missing secret and key: FailedMount naming them, never the values.
	for _, v := range []corev1.Volume{
		{Name: "gone", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope"}}},
		{Name: "gone", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", Items: []corev1.KeyToPath{{Key: "token", Path: "t"}}}}},
	} {
		e2 := newEnv(t)
		e2.cfg.SecretDir = e.cfg.SecretDir
		_, err := Prepare(e2.cfg, podWith(v), "")
		if err == nil || reasonOf(err) != ReasonFailedMount || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("err = %v", err)
		}
	}
	// Optional secret missing: an empty volume.
	e3 := newEnv(t)
	p3, err := Prepare(e3.cfg, podWith(corev1.Volume{Name: "opt", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "nope", Optional: ptr(true)}}}), "")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, p3.Paths["opt"], nil)
}

func TestDownwardAPI(t *testing.T) {
	e := newEnv(t)
	pod := podWith(corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		DefaultMode: ptr(int32(0644)),
		Items: []corev1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.name"}},
			{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}},
			{Path: "uid", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.uid"}, Mode: ptr(int32(0400))},
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels"}},
			{Path: "meta/annotations", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.annotations"}},
			{Path: "tier", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.labels['tier']"}},
			{Path: "mem", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
			{Path: "cpu-req", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
			{Path: "cpu-limit", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "app", Resource: "limits.cpu"}},
			{Path: "cpu-limit-default", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "init", Resource: "limits.cpu"}},
		},
	}}})
	pod.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi"), corev1.ResourceCPU: resource.MustParse("1500m")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
	}
	pod.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox"}}
	p, err := Prepare(e.cfg, pod, "10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, p.Paths["info"], map[string]string{
		"name": "web", "namespace": "default", "uid": "uid-1",
		"labels":           "app=\"web\"\ntier=\"front\"",
		"meta/annotations": `note="a \"quoted\" value"`,
		"tier":             "front",
		"mem":              "64", "cpu-req": "250", "cpu-limit": "2",
		"cpu-limit-default": strconv.Itoa(runtime.NumCPU()),
	})
	if m := perm(t, filepath.Join(p.Paths["info"], "uid")); m != 0400 {
		t.Errorf("uid mode %v", m)
	}

	// A label change is seen on Refresh.
	pod.Labels["tier"] = "back"
	changed, err := p.Refresh(pod, "10.0.0.5")
	if err != nil || !changed {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	if got := readString(t, filepath.Join(p.Paths["info"], "tier")); got != "back" {
		t.Errorf("tier = %q after Refresh", got)
	}

	bad := podWith(corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{{Path: "x", ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "ghost", Resource: "limits.cpu"}}}}}})
	if _, err := Prepare(newEnv(t).cfg, bad, ""); err == nil || !strings.Contains(err.Error(), `container "ghost" not found`) {
		t.Errorf("err = %v", err)
	}
}

func TestProjected(t *testing.T) {
	e := newEnv(t)
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a.conf": "A"})
	e.object(t, e.cfg.SecretDir, "creds", map[string]string{"password": "pw"})
	pod := podWith(corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0640)),
		Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Items: []corev1.KeyToPath{{Key: "password", Path: "secret/pw", Mode: ptr(int32(0400))}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "podname", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: ptr(true)}},
		},
	}}})
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, p.Paths["all"], map[string]string{"a.conf": "A", "secret/pw": "pw", "podname": "web"})
	for name, want := range map[string]os.FileMode{"a.conf": 0640, "secret/pw": 0400, "podname": 0640} {
		if m := perm(t, filepath.Join(p.Paths["all"], name)); m != want {
			t.Errorf("%s: mode %v, want %v", name, m, want)
		}
	}

	for _, src := range []corev1.VolumeProjection{
		{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}}},
	} {
		pod := podWith(corev1.Volume{Name: "tok", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{src}}}})
		_, err := Prepare(newEnv(t).cfg, pod, "")
		if err == nil || reasonOf(err) != ReasonFailedMount || !strings.Contains(err.Error(), `volume "tok"`) {
			t.Errorf("err = %v", err)
		}
		if src.ServiceAccountToken != nil && !strings.Contains(err.Error(), "serviceAccountToken") {
			t.Errorf("err = %v, want it to name serviceAccountToken", err)
		}
	}
}

func TestUnsupportedAndUnused(t *testing.T) {
	e := newEnv(t)
	pod := podWith(corev1.Volume{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}})
	if _, err := Prepare(e.cfg, pod, ""); err == nil || !strings.Contains(err.Error(), "persistentVolumeClaim volumes are not supported") {
		t.Errorf("err = %v", err)
	}
	// A volume no container mounts is not prepared, even when its ConfigMap is missing.
	pod = podWith(corev1.Volume{Name: "used", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "unused", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}})
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Paths["unused"]; ok {
		t.Error("unused volume prepared")
	}
}

func TestRollback(t *testing.T) {
	e := newEnv(t)
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A"})
	made := filepath.Join(t.TempDir(), "made")
	pod := podWith(
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: made, Type: ptr(corev1.HostPathDirectoryOrCreate)}}},
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		corev1.Volume{Name: "bad", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}}}},
	)
	if _, err := Prepare(e.cfg, pod, ""); err == nil {
		t.Fatal("Prepare succeeded")
	}
	for _, p := range []string{filepath.Join(e.cfg.PodDir, "volumes"), made} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left after a failed Prepare: %v", p, err)
		}
	}

	// What existed before a failing Prepare stays: a second run after a restart that fails
	// must not take volumes away from running containers.
	good := podWith(pod.Spec.Volumes[:3]...)
	p, err := Prepare(e.cfg, good, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Prepare(e.cfg, pod, ""); err == nil {
		t.Fatal("Prepare succeeded")
	}
	for _, name := range []string{"scratch", "host", "cfg"} {
		if _, err := os.Stat(p.Paths[name]); err != nil {
			t.Errorf("%s removed by a failed Prepare: %v", name, err)
		}
	}
}

func TestRefresh(t *testing.T) {
	e := newEnv(t)
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A1", "b": "B1"})
	pod := podWith(corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, DefaultMode: ptr(int32(0644))}}})
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	dir := p.Paths["cfg"]
	ts1 := checkLayout(t, dir, map[string]string{"a": "A1", "b": "B1"})

	// Nothing changed: nothing written, and a second Prepare keeps the same version too.
	if changed, err := p.Refresh(pod, ""); err != nil || changed {
		t.Fatalf("Refresh = %v, %v; want no change", changed, err)
	}
	if _, err := Prepare(e.cfg, pod, ""); err != nil {
		t.Fatal(err)
	}
	if ts := checkLayout(t, dir, nil); ts != ts1 {
		t.Errorf("unchanged content rewritten: %s -> %s", ts1, ts)
	}

	// Update a, remove b, add c.
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A2", "c": "C"})
	_ = os.Remove(filepath.Join(e.cfg.ConfigMapDir, "app", "b"))
	changed, err := p.Refresh(pod, "")
	if err != nil || !changed {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	ts2 := checkLayout(t, dir, map[string]string{"a": "A2", "c": "C"})
	if ts2 == ts1 {
		t.Error("..data did not change")
	}
	if _, err := os.Stat(filepath.Join(dir, ts1)); !os.IsNotExist(err) {
		t.Errorf("old version %s not removed: %v", ts1, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Errorf("link of removed key b left: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, en := range ents {
		names = append(names, en.Name())
	}
	if len(names) != 4 { // ..data, ts2, a, c
		t.Errorf("volume dir holds %v", names)
	}

	// The ConfigMap goes away: the error is reported and the files stay as they were.
	if err := os.RemoveAll(filepath.Join(e.cfg.ConfigMapDir, "app")); err != nil {
		t.Fatal(err)
	}
	changed, err = p.Refresh(pod, "")
	if err == nil || changed || reasonOf(err) != ReasonFailedMount {
		t.Fatalf("Refresh = %v, %v", changed, err)
	}
	checkLayout(t, dir, map[string]string{"a": "A2", "c": "C"})
}

// TestAtomicCrashLeftovers: a crash between writing a version and swapping leaves a stray
// timestamped directory and ..data_tmp; the next write clears them.
func TestAtomicCrashLeftovers(t *testing.T) {
	dir := t.TempDir()
	if _, err := writeAtomic(dir, payload{"k": {data: []byte("1"), mode: 0644}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	_ = os.Mkdir(filepath.Join(dir, "..2000_01_01_00_00_00.123"), 0755)
	_ = os.Symlink("..2000_01_01_00_00_00.123", filepath.Join(dir, "..data_tmp"))
	if _, err := writeAtomic(dir, payload{"k": {data: []byte("2"), mode: 0644}}, nil, nil); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 {
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		t.Errorf("dir holds %v", names)
	}
	for _, bad := range []string{"/abs", "../up", "a/../../b", "..hidden", ""} {
		if _, err := writeAtomic(dir, payload{bad: {data: nil, mode: 0644}}, nil, nil); err == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

func TestFSGroup(t *testing.T) {
	needRoot(t)
	const gid = 4321
	e := newEnv(t)
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A"})
	e.object(t, e.cfg.SecretDir, "creds", map[string]string{"pw": "x"})
	pod := podWith(
		corev1.Volume{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
			Items: []corev1.KeyToPath{{Key: "a", Path: "dir/a"}}, DefaultMode: ptr(int32(0644))}}},
		corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr(int32(0400))}}},
		corev1.Volume{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{DefaultMode: ptr(int32(0600)),
			Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}}},
		corev1.Volume{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr(int32(0600)),
			Sources: []corev1.VolumeProjection{{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}}}}}},
	)
	pod.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr(int64(gid))}
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{p.Paths["scratch"], 0777 | os.ModeSetgid},
		{p.Paths["mem"], 0777 | os.ModeSetgid | os.ModeSticky}, // tmpfs root is 1777
		{p.Paths["cfg"], 0777 | os.ModeSetgid},
		{filepath.Join(p.Paths["cfg"], "..data"), 0755 | os.ModeSetgid},
		{filepath.Join(p.Paths["cfg"], "dir"), 0755 | os.ModeSetgid},
		{filepath.Join(p.Paths["cfg"], "dir", "a"), 0644},
		{filepath.Join(p.Paths["sec"], "pw"), 0440},
		{filepath.Join(p.Paths["info"], "name"), 0640},
		{filepath.Join(p.Paths["proj"], "pw"), 0640},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if g := fi.Sys().(*syscall.Stat_t).Gid; g != gid {
			t.Errorf("%s: group %d, want %d", c.path, g, gid)
		}
		if m := fi.Mode() & (os.ModePerm | os.ModeSetgid | os.ModeSticky); m != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, m, c.mode)
		}
	}
	for _, link := range []string{filepath.Join(p.Paths["cfg"], "..data"), filepath.Join(p.Paths["cfg"], "dir")} {
		fi, _ := os.Lstat(link)
		if g := fi.Sys().(*syscall.Stat_t).Gid; g != gid {
			t.Errorf("symlink %s: group %d", link, g)
		}
	}
	// A file made in the emptyDir inherits the group.
	f := filepath.Join(p.Paths["scratch"], "new")
	if err := os.WriteFile(f, nil, 0600); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(f)
	if g := fi.Sys().(*syscall.Stat_t).Gid; g != gid {
		t.Errorf("new file group %d", g)
	}
	// Refresh of unchanged content keeps everything.
	if changed, err := p.Refresh(pod, ""); err != nil || changed {
		t.Errorf("Refresh = %v, %v", changed, err)
	}
}

func TestMountInfoParse(t *testing.T) {
	m, err := parseMountInfoLine(`36 35 98:0 /mnt1 /mnt/with\040space rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue`)
	if err != nil {
		t.Fatal(err)
	}
	if m.point != "/mnt/with space" || !m.shared() || !m.slave() || m.fstype != "ext3" || m.superOpts != "rw,errors=continue" {
		t.Errorf("%+v", m)
	}
	m, err = parseMountInfoLine(`22 27 0:21 / /proc rw,relatime - proc proc rw`)
	if err != nil || m.shared() || m.slave() || m.point != "/proc" {
		t.Errorf("%+v %v", m, err)
	}
	if _, err := parseMountInfoLine("garbage"); err == nil {
		t.Error("garbage parsed")
	}
	if !within("/a/b", "/a") || within("/ab", "/a") || !within("/x", "/") || !within("/a", "/a") {
		t.Error("within")
	}
	_ = unix.Getpid
}
