package pod

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
)

// The kubelet's conversions from Kubernetes resources to cgroup values
// (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	quotaPeriod   = 100000 // µs
	minQuotaValue = 1000   // µs
)

// Resources turns a container's requests and limits into cgroup settings: the CPU request
// becomes shares (weight on cgroup v2), the CPU limit a CFS quota, the memory limit a hard
// memory limit.
func Resources(r corev1.ResourceRequirements) runtime.Resources {
	var out runtime.Resources
	cpuReq, hasReq := r.Requests[corev1.ResourceCPU]
	if cpuLim, ok := r.Limits[corev1.ResourceCPU]; ok && !hasReq {
		cpuReq, hasReq = cpuLim, true
	}
	shares := uint64(minShares)
	if hasReq {
		shares = uint64(cpuReq.MilliValue()) * sharesPerCPU / 1000
	}
	out.CPUShares = min(max(shares, minShares), maxShares)
	if lim, ok := r.Limits[corev1.ResourceCPU]; ok && !lim.IsZero() {
		quota := lim.MilliValue() * quotaPeriod / 1000
		out.CPUQuota = max(quota, minQuotaValue)
		out.CPUPeriod = quotaPeriod
	}
	if lim, ok := r.Limits[corev1.ResourceMemory]; ok && !lim.IsZero() {
		out.MemoryLimit = lim.Value()
	}
	return out
}

// podCgroupLimits are the pod-level resources (spec.resources) as the pod cgroup's limits, by
// the same conversions. Only what the pod asks for is set: a pod that requests no CPU keeps
// the default weight beside the other pods.
func podCgroupLimits(p *corev1.Pod) sandbox.PodCgroupLimits {
	r := p.Spec.Resources
	if r == nil {
		return sandbox.PodCgroupLimits{}
	}
	res := Resources(*r)
	l := sandbox.PodCgroupLimits{CPUQuota: res.CPUQuota, CPUPeriod: res.CPUPeriod, MemoryLimit: res.MemoryLimit}
	_, req := r.Requests[corev1.ResourceCPU]
	_, lim := r.Limits[corev1.ResourceCPU]
	if req || lim {
		l.CPUShares = res.CPUShares
	}
	return l
}
