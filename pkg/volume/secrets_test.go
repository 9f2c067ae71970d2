package volume

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// writeMode writes a file (or makes a directory when data is nil) and sets its mode whatever
// the umask.
func writeMode(t *testing.T, p string, data []byte, mode os.FileMode) {
	t.Helper()
	var err error
	if data == nil {
		err = os.MkdirAll(p, 0o700)
	} else {
		err = os.WriteFile(p, data, 0o600)
	}
	if err == nil {
		err = os.Chmod(p, mode)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestCheckSecretDir(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true},
		{0o750, true},
		{0o755, true}, // others may list the keys, not read them
		{0o770, false},
		{0o757, false},
		{0o1777, false},
	} {
		d := filepath.Join(root, tc.mode.String())
		writeMode(t, d, nil, tc.mode)
		err := CheckSecretDir(d)
		if tc.ok != (err == nil) {
			t.Errorf("mode %#o: err %v", tc.mode, err)
		}
		if err != nil && (!errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod go-w "+d)) {
			t.Errorf("mode %#o: err %q, want an insecure-permission error saying how to fix it", tc.mode, err)
		}
	}
	if err := CheckSecretDir(filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
	f := filepath.Join(root, "file")
	writeMode(t, f, []byte("x"), 0o600)
	if err := CheckSecretDir(f); err == nil || errors.Is(err, ErrInsecure) {
		t.Errorf("a file as a directory: %v", err)
	}
	// Someone else's directory, however tight.
	defer func(o uint32) { secretOwner = o }(secretOwner)
	secretOwner++
	d := filepath.Join(root, "-rwx------")
	if err := CheckSecretDir(d); !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chown root") {
		t.Errorf("a directory of another user: %v", err)
	}
}

func TestReadSecretFile(t *testing.T) {
	root := t.TempDir()
	for _, tc := range []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o600, true},
		{0o400, true},
		{0o700, true},
		{0o640, false},
		{0o604, false},
		{0o620, false},
		{0o644, false},
		{0o601, false},
	} {
		p := filepath.Join(root, "key"+tc.mode.String())
		writeMode(t, p, []byte("s3cret"), tc.mode)
		b, err := ReadSecretFile(p)
		if tc.ok != (err == nil) {
			t.Errorf("mode %#o: err %v", tc.mode, err)
		}
		if err == nil && string(b) != "s3cret" {
			t.Errorf("mode %#o: read %q", tc.mode, b)
		}
		if err != nil {
			if !errors.Is(err, ErrInsecure) || !strings.Contains(err.Error(), "chmod go-rwx "+p) || strings.Contains(err.Error(), "s3cret") {
				t.Errorf("mode %#o: err %q", tc.mode, err)
			}
		}
	}
	// A key that is a link (a mounted Secret's layout) is judged by what it points at.
	writeMode(t, filepath.Join(root, "target"), []byte("v"), 0o644)
	if err := os.Symlink("target", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(filepath.Join(root, "link")); !errors.Is(err, ErrInsecure) {
		t.Errorf("link to a 0644 file: %v", err)
	}
	if _, err := ReadSecretFile(filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSecretFile(fifo); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
}

func TestScanSecrets(t *testing.T) {
	root := filepath.Join(t.TempDir(), "secrets")
	if errs := ScanSecrets(root); len(errs) != 0 {
		t.Errorf("missing secret dir: %v", errs)
	}
	writeMode(t, root, nil, 0o700)
	writeMode(t, filepath.Join(root, "good"), nil, 0o700)
	writeMode(t, filepath.Join(root, "good", "k"), []byte("v"), 0o600)
	writeMode(t, filepath.Join(root, "leaky"), nil, 0o755)
	writeMode(t, filepath.Join(root, "leaky", "a"), []byte("v"), 0o600)
	writeMode(t, filepath.Join(root, "leaky", "b"), []byte("v"), 0o644)
	writeMode(t, filepath.Join(root, "leaky", "..data"), []byte("not a key"), 0o644)
	writeMode(t, filepath.Join(root, "open"), nil, 0o777)
	writeMode(t, filepath.Join(root, "stray-file"), []byte("v"), 0o600)
	var got []string
	for _, err := range ScanSecrets(root) {
		got = append(got, strings.SplitN(err.Error(), " ", 2)[0])
	}
	want := []string{filepath.Join(root, "leaky", "b"), filepath.Join(root, "open")}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("ScanSecrets found %q, want %q", got, want)
	}
	writeMode(t, root, nil, 0o777)
	if errs := ScanSecrets(root); len(errs) != 1 || !strings.Contains(errs[0].Error(), root+" is owned") {
		t.Errorf("an open secret dir: %v", errs)
	}
}

// A secret volume whose files others can read is a FailedMount that says why, optional or
// not; Config.InsecureSecretPerms takes it as it is. ConfigMaps are not checked.
func TestSecretVolumePerms(t *testing.T) {
	needRoot(t) // secret volumes are tmpfs mounts
	e := newEnv(t)
	e.object(t, e.cfg.SecretDir, "creds", map[string]string{"password": "s3cr3t-value"})
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "b"})
	if err := os.Chmod(filepath.Join(e.cfg.SecretDir, "creds", "password"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(e.cfg.ConfigMapDir, "app", "a"), 0o666); err != nil {
		t.Fatal(err)
	}
	for _, optional := range []bool{false, true} {
		_, err := Prepare(e.cfg, podWith(corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", Optional: ptr(optional)}}}), "")
		if reasonOf(err) != ReasonFailedMount || !errors.Is(err, ErrInsecure) ||
			!strings.Contains(err.Error(), `volume "sec": secret "creds": `+filepath.Join(e.cfg.SecretDir, "creds", "password")+" is owned by") ||
			strings.Contains(err.Error(), "s3cr3t-value") {
			t.Errorf("optional %v: %v", optional, err)
		}
	}
	proj := corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}}},
	}}}}
	if _, err := Prepare(e.cfg, podWith(proj), ""); !errors.Is(err, ErrInsecure) {
		t.Errorf("projected secret: %v", err)
	}
	cfg := e.cfg
	cfg.InsecureSecretPerms = true
	p, err := Prepare(cfg, podWith(corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds"}}},
		corev1.Volume{Name: "cm", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}), "")
	if err != nil {
		t.Fatalf("InsecureSecretPerms: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(p.Paths["sec"], "password")); err != nil || string(b) != "s3cr3t-value" {
		t.Errorf("secret volume: %q %v", b, err)
	}
}
