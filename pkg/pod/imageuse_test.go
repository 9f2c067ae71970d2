package pod

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestImagesInUse(t *testing.T) {
	m := NewManager(Config{})
	if refs, ok := m.ImagesInUse(); ok || refs != nil {
		t.Fatalf("before any desired set: %v, %v; want not known", refs, ok)
	}
	pod := func(ns, name string, init []string, ctrs ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		for _, img := range init {
			p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Image: img})
		}
		for _, img := range ctrs {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Image: img})
		}
		return p
	}
	m.Update([]*corev1.Pod{
		pod("default", "web", []string{"busybox:1.36"}, "nginx:1", "busybox:1.36"),
		pod("prod", "api", nil, "nginx:1"),
	})
	refs, ok := m.ImagesInUse()
	want := map[string][]string{"busybox:1.36": {"default/web"}, "nginx:1": {"default/web", "prod/api"}}
	if !ok || !reflect.DeepEqual(refs, want) {
		t.Fatalf("got %v, %v; want %v", refs, ok, want)
	}
	// A file that is gone: its images are no longer named.
	m.Update(nil)
	if refs, ok := m.ImagesInUse(); !ok || len(refs) != 0 {
		t.Fatalf("after the pods went: %v, %v; want none, known", refs, ok)
	}
}
