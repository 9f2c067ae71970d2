// Package envvar holds the two rules of Kubernetes' container environment that several parts
// of minipod apply: $(VAR) expansion (in command, args, env values and exec probes) and the
// value of a resourceFieldRef (in env and in downwardAPI volumes).
package envvar

import (
	"fmt"
	"math"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Expand replaces $(VAR) with the variable's value as Kubernetes does: $$ is an escaped $, and
// a reference to an unknown variable is left as it is.
func Expand(s string, vars map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vars[name]; ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// ExpandAll expands $(VAR) references in each string.
func ExpandAll(in []string, vars map[string]string) []string {
	if in == nil {
		return nil
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = Expand(s, vars)
	}
	return out
}

// ResourceValue is a resourceFieldRef's value as the kubelet computes it
// (ExtractResourceValueByContainerNameAndNodeAllocatable): the named container's request or
// limit, an unset cpu, memory or ephemeral-storage limit being the node's capacity (minipod
// reserves nothing), divided by the divisor (default 1) and rounded up. c is the container the
// reference belongs to, used when the selector names none. podDir locates the disk for
// ephemeral-storage.
func ResourceValue(pod *corev1.Pod, c *corev1.Container, sel *corev1.ResourceFieldSelector, podDir string) (string, error) {
	if sel.ContainerName != "" {
		c = nil
		for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
			for i := range list {
				if list[i].Name == sel.ContainerName {
					c = &list[i]
				}
			}
		}
	}
	if c == nil {
		return "", fmt.Errorf("container %q not found", sel.ContainerName)
	}
	divisor := resource.MustParse("1")
	if !sel.Divisor.IsZero() {
		divisor = sel.Divisor
	}
	kind, name, ok := strings.Cut(sel.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported container resource %q", sel.Resource)
	}
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, set := list[corev1.ResourceName(name)]
	if !set && kind == "limits" {
		// The pod's own limit (spec.resources) comes first, then the node's: the kubelet's
		// defaultPodLimitsForDownwardAPI, for the resources a pod may limit.
		rn := corev1.ResourceName(name)
		if pq, ok := podLimit(pod, rn); ok {
			q = pq
		} else if nq, ok := NodeCapacity(rn, podDir); ok {
			q = nq
		}
	}
	ceilDiv := func(a, b int64) string {
		if b == 0 {
			return "0"
		}
		return strconv.FormatInt(int64(math.Ceil(float64(a)/float64(b))), 10)
	}
	switch {
	case name == string(corev1.ResourceCPU):
		return ceilDiv(q.MilliValue(), divisor.MilliValue()), nil
	case name == string(corev1.ResourceMemory), name == string(corev1.ResourceEphemeralStorage),
		strings.HasPrefix(name, corev1.ResourceHugePagesPrefix):
		return ceilDiv(q.Value(), divisor.Value()), nil
	}
	return "", fmt.Errorf("unsupported container resource %q", sel.Resource)
}

// NodeCapacity is what the node has of a resource, the default for an unset limit.
func NodeCapacity(name corev1.ResourceName, podDir string) (resource.Quantity, bool) {
	switch name {
	case corev1.ResourceCPU:
		return *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI), true
	case corev1.ResourceMemory:
		var si unix.Sysinfo_t
		if unix.Sysinfo(&si) == nil {
			return *resource.NewQuantity(int64(si.Totalram)*int64(si.Unit), resource.BinarySI), true
		}
	case corev1.ResourceEphemeralStorage:
		var st unix.Statfs_t
		for d := podDir; d != ""; d = parentDir(d) {
			if unix.Statfs(d, &st) == nil {
				return *resource.NewQuantity(int64(st.Blocks)*int64(st.Bsize), resource.BinarySI), true
			}
		}
	}
	return resource.Quantity{}, false
}

func parentDir(d string) string {
	p := filepath.Dir(d)
	if p == d {
		return ""
	}
	return p
}

// podLimit is the pod-level limit (spec.resources.limits) of cpu or memory, when set and not
// zero.
func podLimit(pod *corev1.Pod, rn corev1.ResourceName) (resource.Quantity, bool) {
	if pod.Spec.Resources == nil || (rn != corev1.ResourceCPU && rn != corev1.ResourceMemory) {
		return resource.Quantity{}, false
	}
	q, ok := pod.Spec.Resources.Limits[rn]
	return q, ok && !q.IsZero()
}
