package pod

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
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
