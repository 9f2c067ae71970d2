package pod

import (
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// mapObjects is volume.Objects from a map keyed "configmap/namespace/name" or "secret/...".
type mapObjects map[string]map[string][]byte

func (m mapObjects) Object(secret bool, namespace, name string) (map[string][]byte, bool) {
	kind := "configmap"
	if secret {
		kind = "secret"
	}
	d, ok := m[kind+"/"+namespace+"/"+name]
	return d, ok
}

// env and envFrom read the manifest files' ConfigMaps and Secrets before the directories,
// and work without any directory.
func TestEnvObjects(t *testing.T) {
	dir := t.TempDir()
	secDir := dir + "/sec"
	objs := mapObjects{
		"configmap/web/app": {"mode": []byte("fast"), "bin": []byte("b")},
		"secret/web/db":     {"password": []byte("pw")},
	}
	c := &corev1.Container{
		EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}, Prefix: "CM_"}},
		Env: []corev1.EnvVar{{Name: "PW", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "web"}}
	env, err := Env(c, ocispec.ImageConfig{}, podFields{pod: pod, objects: objs, secretDir: secDir})
	if got := strings.Join(env, " "); err != nil || got != "CM_bin=b CM_mode=fast PW=pw" {
		t.Errorf("Env: %q %v", got, err)
	}
	// Another namespace's pod does not see them.
	other := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}}
	if _, err := Env(c, ocispec.ImageConfig{}, podFields{pod: other, objects: objs, configMapDir: dir + "/cm", secretDir: secDir}); err == nil || !strings.Contains(err.Error(), `configmap "app" not found`) {
		t.Errorf("Env from another namespace: %v", err)
	}
}
