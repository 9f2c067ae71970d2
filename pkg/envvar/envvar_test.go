package envvar

import (
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two", "E": ""}
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$$(A)", "$(A)"},
		{"$$$(A)", "$1"},
		{"$(C)", "$(C)"},
		{"$(A", "$(A"},
		{"$A", "$A"},
		{"cost $5", "cost $5"},
		{"$", "$"},
		{"$()", "$()"},
		{"a$", "a$"},
		{"$$", "$"},
		{"$(E)", ""},
	} {
		if got := Expand(tc.in, vars); got != tc.want {
			t.Errorf("Expand(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A container without a limit reads the pod's (spec.resources) through the downward API, else
// the node's capacity; its own limit always wins (issue 23).
func TestResourceValuePodLevel(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		Resources:  &corev1.ResourceRequirements{Limits: corev1.ResourceList{"cpu": resource.MustParse("1250m"), "memory": resource.MustParse("64Mi")}},
		Containers: []corev1.Container{{Name: "a"}, {Name: "b", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("32Mi")}}}},
	}}
	for _, tc := range []struct{ ctr, res, want string }{
		{"a", "limits.cpu", "2"},
		{"a", "limits.memory", "67108864"},
		{"b", "limits.memory", "33554432"},
	} {
		got, err := ResourceValue(pod, nil, &corev1.ResourceFieldSelector{ContainerName: tc.ctr, Resource: tc.res}, t.TempDir())
		if err != nil || got != tc.want {
			t.Errorf("%s %s = %q, %v; want %s", tc.ctr, tc.res, got, err, tc.want)
		}
	}
	// Without a pod-level memory limit, the node's memory.
	delete(pod.Spec.Resources.Limits, "memory")
	node, _ := NodeCapacity(corev1.ResourceMemory, t.TempDir())
	if got, _ := ResourceValue(pod, nil, &corev1.ResourceFieldSelector{ContainerName: "a", Resource: "limits.memory"}, t.TempDir()); got != node.String() && got != strconv.FormatInt(node.Value(), 10) {
		t.Errorf("no pod-level memory limit: %s, want the node's %s", got, node.String())
	}
}
