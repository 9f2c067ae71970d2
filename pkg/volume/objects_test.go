package volume

import (
	"errors"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// fakeObjects is Objects from a map: "configmap/namespace/name" or "secret/namespace/name".
type fakeObjects struct {
	mu sync.Mutex
	m  map[string]map[string][]byte
}

func (f *fakeObjects) Object(secret bool, namespace, name string) (map[string][]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind := "configmap"
	if secret {
		kind = "secret"
	}
	d, ok := f.m[kind+"/"+namespace+"/"+name]
	return d, ok
}

func (f *fakeObjects) set(key string, kv map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kv == nil {
		delete(f.m, key)
		return
	}
	d := map[string][]byte{}
	for k, v := range kv {
		d[k] = []byte(v)
	}
	f.m[key] = d
}

// The manifest files' ConfigMaps and Secrets come before the directories', in the pod's
// namespace only; Refresh follows a changed object, and falls back to the directory's when the
// manifest's goes.
func TestObjectsFirst(t *testing.T) {
	e := newEnv(t)
	objs := &fakeObjects{m: map[string]map[string][]byte{}}
	e.cfg.Objects = objs
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "dir"})
	e.object(t, e.cfg.SecretDir, "db", map[string]string{"pw": "dir"})
	objs.set("configmap/default/app", map[string]string{"a": "manifest"})
	objs.set("configmap/prod/only", map[string]string{"a": "prod"})
	objs.set("secret/default/db", map[string]string{"pw": "manifest"})
	pod := podWith(
		corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
		corev1.Volume{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}},
		corev1.Volume{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "a", Path: "cm-a"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Items: []corev1.KeyToPath{{Key: "pw", Path: "pw"}}}},
		}}}},
	)
	p, err := Prepare(e.cfg, pod, "")
	if err != nil {
		t.Fatal(err)
	}
	checkLayout(t, p.Paths["cfg"], map[string]string{"a": "manifest"})
	checkLayout(t, p.Paths["sec"], map[string]string{"pw": "manifest"})
	checkLayout(t, p.Paths["proj"], map[string]string{"cm-a": "manifest", "pw": "manifest"})

	objs.set("configmap/default/app", map[string]string{"a": "edited"})
	if changed, err := p.Refresh(pod, ""); err != nil || !changed {
		t.Fatalf("Refresh after an edit = %v, %v", changed, err)
	}
	checkLayout(t, p.Paths["cfg"], map[string]string{"a": "edited"})

	objs.set("configmap/default/app", nil)
	if changed, err := p.Refresh(pod, ""); err != nil || !changed {
		t.Fatalf("Refresh after the manifest's went = %v, %v", changed, err)
	}
	checkLayout(t, p.Paths["cfg"], map[string]string{"a": "dir"})

	// Another namespace's object is not the pod's.
	if _, err := Lookup(objs, Local{Dir: e.cfg.ConfigMapDir}, "default", "only"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup of prod's configMap from default: %v", err)
	}
	if d, err := Lookup(objs, Local{Dir: e.cfg.ConfigMapDir}, "prod", "only"); err != nil || string(d["a"]) != "prod" {
		t.Errorf("Lookup from prod: %q %v", d, err)
	}
	if d, err := Lookup(nil, Local{Dir: e.cfg.ConfigMapDir}, "default", "app"); err != nil || string(d["a"]) != "dir" {
		t.Errorf("Lookup without objects: %q %v", d, err)
	}
}
