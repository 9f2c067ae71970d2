package pod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/volume"
)

// ConfigMaps for env are read as safely as for volumes (issue 20): a link out of the
// configMap's directory, a FIFO, a device, too much data, a bad name or a directory others
// can write is an error naming the configMap and the file, for configMapKeyRef (optional or
// not) and envFrom, and never a hang; --insecure-manifest-perms lifts only the owner and
// mode checks.
func TestEnvConfigMapSafety(t *testing.T) {
	yes := true
	keyRef := func(name, key string, optional *bool) *corev1.Container {
		return &corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}}}}
	}
	envFrom := func(name string) *corev1.Container {
		return &corev1.Container{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name}}}}}
	}
	for _, tc := range []struct {
		name     string
		setup    func(t *testing.T, cm, app string)
		c        *corev1.Container
		insecure bool
		want     string // the env, joined by spaces, when no error
		wantErr  error
		wantMsg  string
	}{
		{name: "plain key", c: keyRef("app", "mode", nil), want: "X=prod"},
		{name: "plain envFrom", c: envFrom("app"), want: "mode=prod"},
		{name: "link to a root-only file", setup: func(t *testing.T, cm, app string) {
			private := filepath.Join(t.TempDir(), "private")
			if err := os.WriteFile(private, []byte("private-content"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(private, filepath.Join(app, "passwd")); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "passwd", nil), wantErr: volume.ErrUnsafe, wantMsg: `configmap "app": ` + "APP/passwd is a symbolic link out of"},
		{name: "link out, optional", setup: func(t *testing.T, cm, app string) {
			if err := os.Symlink("/etc/hostname", filepath.Join(app, "passwd")); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "passwd", &yes), wantErr: volume.ErrUnsafe, wantMsg: "symbolic link out of"},
		{name: "link out, other key asked for", setup: func(t *testing.T, cm, app string) {
			if err := os.Symlink("/etc/hostname", filepath.Join(app, "passwd")); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "mode", nil), wantErr: volume.ErrUnsafe, wantMsg: "symbolic link out of"},
		{name: "link out, envFrom", setup: func(t *testing.T, cm, app string) {
			if err := os.Symlink("/etc/hostname", filepath.Join(app, "passwd")); err != nil {
				t.Fatal(err)
			}
		}, c: envFrom("app"), wantErr: volume.ErrUnsafe, wantMsg: `configmap "app": `},
		{name: "fifo key", setup: func(t *testing.T, cm, app string) {
			if err := syscall.Mkfifo(filepath.Join(app, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "pipe", nil), wantErr: volume.ErrUnsafe, wantMsg: "APP/pipe is a named pipe, not a regular file"},
		{name: "fifo, envFrom", setup: func(t *testing.T, cm, app string) {
			if err := syscall.Mkfifo(filepath.Join(app, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, c: envFrom("app"), wantErr: volume.ErrUnsafe, wantMsg: "named pipe"},
		{name: "link to /dev/zero", setup: func(t *testing.T, cm, app string) {
			if err := os.Symlink("/dev/zero", filepath.Join(app, "zero")); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "zero", nil), wantErr: volume.ErrUnsafe},
		{name: "too big", setup: func(t *testing.T, cm, app string) {
			p := filepath.Join(app, "big")
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, 64<<30); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "mode", nil), wantErr: volume.ErrUnsafe, wantMsg: "more than 1048576 bytes"},
		{name: "name .", c: keyRef(".", "mode", nil), wantMsg: `configmap "." key "mode": invalid reference`},
		{name: "name ..", c: keyRef("..", "app", nil), wantMsg: "invalid reference"},
		{name: "name with a slash", c: keyRef("app/mode", "x", nil), wantMsg: "invalid reference"},
		{name: "key ..", c: keyRef("app", "..", nil), wantMsg: "invalid reference"},
		{name: "key with a slash", c: keyRef("app", "../app/mode", nil), wantMsg: "invalid reference"},
		{name: "envFrom name .", c: envFrom("."), wantMsg: `invalid name "."`},
		{name: "dir writable by others", setup: func(t *testing.T, cm, app string) {
			if err := os.Chmod(cm, 0o777); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "mode", &yes), wantErr: volume.ErrInsecure, wantMsg: "CM is owned by root with mode 0777: a configMap directory must be root's"},
		{name: "dir writable by others, insecure", setup: func(t *testing.T, cm, app string) {
			if err := os.Chmod(cm, 0o777); err != nil {
				t.Fatal(err)
			}
		}, c: keyRef("app", "mode", nil), insecure: true, want: "X=prod"},
		{name: "insecure still refuses a fifo", setup: func(t *testing.T, cm, app string) {
			if err := syscall.Mkfifo(filepath.Join(app, "pipe"), 0o666); err != nil {
				t.Fatal(err)
			}
		}, c: envFrom("app"), insecure: true, wantErr: volume.ErrUnsafe},
		{name: "missing optional", c: keyRef("nope", "k", &yes), want: ""},
		{name: "missing", c: keyRef("nope", "k", nil), wantMsg: `configmap "nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if os.Geteuid() != 0 && strings.Contains(tc.wantMsg, "owned by root") {
				t.Skip("needs root")
			}
			dir := t.TempDir()
			cm := filepath.Join(dir, "cm")
			app := filepath.Join(cm, "app")
			if err := os.MkdirAll(app, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(cm, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(app, "mode"), []byte("prod"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, cm, app)
			}
			type result struct {
				env []string
				err error
			}
			done := make(chan result, 1)
			go func() {
				env, err := Env(tc.c, ocispec.ImageConfig{}, podFields{pod: &corev1.Pod{}, configMapDir: cm, insecureSecrets: tc.insecure})
				done <- result{env, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Env did not return within 5s")
			}
			wantMsg := strings.NewReplacer("APP", app, "CM", cm).Replace(tc.wantMsg)
			if tc.wantErr != nil || tc.wantMsg != "" {
				if r.err == nil || (tc.wantErr != nil && !errors.Is(r.err, tc.wantErr)) || !strings.Contains(r.err.Error(), wantMsg) {
					t.Fatalf("err = %v, want %v with %q", r.err, tc.wantErr, wantMsg)
				}
				if strings.Contains(r.err.Error(), "private-content") {
					t.Errorf("the error holds what the link leads to: %v", r.err)
				}
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if got := strings.Join(r.env, " "); got != tc.want {
				t.Errorf("env %q, want %q", got, tc.want)
			}
		})
	}
}
