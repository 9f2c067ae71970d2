package pod

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
)

func TestResources(t *testing.T) {
	q := resource.MustParse
	for _, tc := range []struct {
		name string
		r    corev1.ResourceRequirements
		want runtime.Resources
	}{
		{"none", corev1.ResourceRequirements{}, runtime.Resources{CPUShares: 2}},
		{"request 250m", corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m")}}, runtime.Resources{CPUShares: 256}},
		{"limit only counts as request", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("1")}},
			runtime.Resources{CPUShares: 1024, CPUQuota: 100000, CPUPeriod: 100000}},
		{"tiny limit has a floor", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("1m")}},
			runtime.Resources{CPUShares: 2, CPUQuota: 1000, CPUPeriod: 100000}},
		{"memory", corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: q("64Mi")}},
			runtime.Resources{CPUShares: 2, MemoryLimit: 64 << 20}},
		{"huge request capped", corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: q("1000")}}, runtime.Resources{CPUShares: 262144}},
	} {
		if got := Resources(tc.r); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// The pod cgroup gets only what spec.resources asks for, by the container conversions.
func TestPodCgroupLimits(t *testing.T) {
	p := &corev1.Pod{}
	if l := podCgroupLimits(p); l != (sandbox.PodCgroupLimits{}) {
		t.Errorf("no pod-level resources: %+v", l)
	}
	p.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{"memory": resource.MustParse("64Mi")}}
	if l := podCgroupLimits(p); l != (sandbox.PodCgroupLimits{MemoryLimit: 64 << 20}) {
		t.Errorf("memory only: %+v (no CPU weight may be set)", l)
	}
	p.Spec.Resources = &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{"cpu": resource.MustParse("250m")},
		Limits:   corev1.ResourceList{"cpu": resource.MustParse("1250m")},
	}
	if l := podCgroupLimits(p); l != (sandbox.PodCgroupLimits{CPUShares: 256, CPUQuota: 125000, CPUPeriod: 100000}) {
		t.Errorf("cpu: %+v", l)
	}
}
