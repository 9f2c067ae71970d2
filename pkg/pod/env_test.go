package pod

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestEnvLocalSources(t *testing.T) {
	dir := t.TempDir()
	cm, sec := filepath.Join(dir, "cm"), filepath.Join(dir, "sec")
	for path, v := range map[string]string{
		"cm/app/mode": "prod", "cm/app/level": "debug", "sec/db/password": "hunter2",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o700)
		os.WriteFile(filepath.Join(dir, path), []byte(v), 0o600)
	}
	yes := true
	p := &corev1.Pod{}
	p.Name = "web"
	c := &corev1.Container{
		Name:    "c",
		EnvFrom: []corev1.EnvFromSource{{Prefix: "APP_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		Env: []corev1.EnvVar{
			{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "mode"}}},
			{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}},
			{Name: "OPT", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Key: "k", Optional: &yes}}},
			{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
			{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu", Divisor: resource.MustParse("1m")}}},
		},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi"), corev1.ResourceCPU: resource.MustParse("250m")}},
	}
	env, err := Env(c, ocispec.ImageConfig{}, podFields{pod: p, configMapDir: cm, secretDir: sec})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"APP_level=debug", "APP_mode=prod", "MODE=prod", "PW=hunter2", "MEM=100", "CPU=250"}
	if !slices.Equal(env, want) {
		t.Fatalf("env = %q, want %q", env, want)
	}
	for _, tc := range []struct {
		name string
		env  corev1.EnvVar
		want string
	}{
		{"missing configmap", corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "ghost"}, Key: "k"}}}, `configmap "ghost" not found`},
		{"missing key", corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Key: "nokey"}}}, "couldn't find key nokey in configmap app"},
		{"escape", corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: ".."}, Key: "sec"}}}, "invalid reference"},
	} {
		_, err := Env(&corev1.Container{Name: "c", Env: []corev1.EnvVar{tc.env}}, ocispec.ImageConfig{}, podFields{pod: p, configMapDir: cm, secretDir: sec})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
}
