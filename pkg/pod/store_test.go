package pod

import (
	"encoding/json"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A pod's JSON is encoded once per published version: a list after an unchanged pod reuses
// it, a new publish replaces it.
func TestStoreJSON(t *testing.T) {
	var s store
	pod := func(name, phase string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Status: corev1.PodStatus{Phase: corev1.PodPhase(phase)}}
	}
	s.set("default/b", pod("b", "Pending"))
	s.set("default/a", pod("a", "Running"))
	first := s.list()
	if len(first) != 2 || first[0].Pod.Name != "a" || first[1].Pod.Name != "b" {
		t.Fatalf("list: %+v, want a then b", first)
	}
	for _, e := range first {
		var back corev1.Pod
		if err := json.Unmarshal(e.JSON, &back); err != nil {
			t.Fatalf("%s: %v", e.Pod.Name, err)
		}
		if back.APIVersion != "v1" || back.Kind != "Pod" || back.Name != e.Pod.Name || back.Status.Phase != e.Pod.Status.Phase {
			t.Errorf("%s: JSON %s", e.Pod.Name, e.JSON)
		}
		if e.Pod.APIVersion != "" {
			t.Errorf("%s: encoding set apiVersion on the stored pod", e.Pod.Name)
		}
	}
	s.set("default/b", pod("b", "Running"))
	second := s.list()
	if &second[0].JSON[0] != &first[0].JSON[0] {
		t.Error("a's JSON was encoded again although a did not change")
	}
	var b corev1.Pod
	if err := json.Unmarshal(second[1].JSON, &b); err != nil || b.Status.Phase != corev1.PodRunning {
		t.Errorf("b after its new publish: %s (%v)", second[1].JSON, err)
	}
}

// TestStoreJSONConcurrent is for the race detector: lists encoding the same entries at once.
func TestStoreJSONConcurrent(t *testing.T) {
	var s store
	s.set("default/a", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "a"}})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if l := s.list(); len(l) != 1 || len(l[0].JSON) == 0 {
					t.Errorf("list: %+v", l)
				}
			}
		})
	}
	wg.Wait()
}
