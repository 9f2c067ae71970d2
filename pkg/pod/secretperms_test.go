package pod

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/volume"
)

// A secret that others can read is refused for env and envFrom, optional or not, with a
// message that names the file and the fix; --insecure-manifest-perms takes it. ConfigMaps are
// not checked.
func TestEnvSecretPerms(t *testing.T) {
	dir := t.TempDir()
	cm, sec := filepath.Join(dir, "cm"), filepath.Join(dir, "sec")
	for path, mode := range map[string]os.FileMode{"cm/app/mode": 0o644, "sec/db/password": 0o644, "sec/ok/token": 0o600} {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("v"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	p := &corev1.Pod{}
	ref := func(name, key string, optional *bool) corev1.EnvVar {
		return corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: optional}}}
	}
	bad := filepath.Join(sec, "db", "password")
	for name, c := range map[string]*corev1.Container{
		"secretKeyRef":          {Env: []corev1.EnvVar{ref("db", "password", nil)}},
		"optional secretKeyRef": {Env: []corev1.EnvVar{ref("db", "password", &yes)}},
		"envFrom":               {EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}}}}},
	} {
		_, err := Env(c, ocispec.ImageConfig{}, podFields{pod: p, configMapDir: cm, secretDir: sec})
		if !errors.Is(err, volume.ErrInsecure) || !strings.Contains(err.Error(), `secret "db": `+bad+" is owned by") || !strings.Contains(err.Error(), "chmod go-rwx") {
			t.Errorf("%s: err %v", name, err)
		}
		env, err := Env(c, ocispec.ImageConfig{}, podFields{pod: p, configMapDir: cm, secretDir: sec, insecureSecrets: true})
		if err != nil || len(env) != 1 {
			t.Errorf("%s with insecure perms allowed: %q %v", name, env, err)
		}
	}
	// The secret directory itself open to writes: every secret is refused.
	if err := os.Chmod(sec, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Env(&corev1.Container{Env: []corev1.EnvVar{ref("ok", "token", nil)}}, ocispec.ImageConfig{}, podFields{pod: p, secretDir: sec}); !errors.Is(err, volume.ErrInsecure) {
		t.Errorf("secret dir 0777: %v", err)
	}
	if err := os.Chmod(sec, 0o700); err != nil {
		t.Fatal(err)
	}
	c := &corev1.Container{
		Env:     []corev1.EnvVar{ref("ok", "token", nil), ref("missing", "k", &yes)},
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
	}
	env, err := Env(c, ocispec.ImageConfig{}, podFields{pod: p, configMapDir: cm, secretDir: sec})
	if err != nil || strings.Join(env, " ") != "mode=v X=v" {
		t.Errorf("safe secret, optional missing one, 0644 configMap: %q %v", env, err)
	}
	if _, err := Env(&corev1.Container{Env: []corev1.EnvVar{ref("missing", "k", nil)}}, ocispec.ImageConfig{}, podFields{pod: p, secretDir: sec}); err == nil || !strings.Contains(err.Error(), `secret "missing" not found`) {
		t.Errorf("missing secret: %v", err)
	}
}
