package manifest

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Pod-level resources (spec.resources, PodLevelResources: beta and on by default since
// Kubernetes 1.34) bound the pod as a whole: its cgroup gets the limits, and a container
// without a limit of its own reads the pod's through the downward API.

// IsPodLevelResource says whether spec.resources may name the resource: cpu, memory and
// hugepages, as the API server's IsSupportedPodLevelResource.
func IsPodLevelResource(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory || strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix)
}

// validatePodResources checks spec.resources as the API server does: the names it may hold,
// the quantities, requests within limits, pod-level requests at least the containers'
// aggregate requests, and no container limit above the pod's.
func validatePodResources(spec *corev1.PodSpec, p *field.Path) field.ErrorList {
	r := spec.Resources
	if r == nil {
		return nil
	}
	var errs field.ErrorList
	if r.Claims != nil {
		errs = append(errs, field.Forbidden(p.Child("claims"), "claims cannot be set for Resources at pod-level"))
	}
	supported := []string{string(corev1.ResourceCPU), corev1.ResourceHugePagesPrefix, string(corev1.ResourceMemory)}
	for _, list := range []struct {
		name string
		rl   corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for _, rn := range sortedKeys(list.rl) {
			if !IsPodLevelResource(rn) {
				errs = append(errs, field.NotSupported(p.Child(list.name).Key(string(rn)), rn, supported))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	errs = append(errs, validateResources(r, p)...)

	reqPath := p.Child("requests")
	aggr := AggregateRequests(spec)
	for _, rn := range sortedKeys(aggr) {
		sum := aggr[rn]
		if podReq, set := r.Requests[rn]; set && sum.Cmp(podReq) > 0 {
			errs = append(errs, field.Invalid(reqPath.Key(string(rn)), podReq.String(),
				fmt.Sprintf("must be greater than or equal to aggregate container requests of %s", sum.String())))
		}
	}
	for i, c := range spec.Containers {
		for _, rn := range sortedKeys(c.Resources.Limits) {
			podLim, set := r.Limits[rn]
			if lim := c.Resources.Limits[rn]; set && lim.Cmp(podLim) > 0 {
				errs = append(errs, field.Invalid(p.Child("containers").Index(i).Key(string(rn)).Child("limits"), lim.String(),
					fmt.Sprintf("must be less than or equal to pod limits of %s", podLim.String())))
			}
		}
	}
	return errs
}

// AggregateRequests is what the pod's containers request together, as the kubelet and the
// scheduler add it up: the app containers and the sidecars (restartable init containers) all
// run at once; an ordinary init container runs alone beside the sidecars started before it,
// and the larger of the two figures counts.
func AggregateRequests(spec *corev1.PodSpec) corev1.ResourceList {
	sum := corev1.ResourceList{}
	add := func(into corev1.ResourceList, from corev1.ResourceList) {
		for rn, q := range from {
			v := into[rn]
			v.Add(q)
			into[rn] = v
		}
	}
	for _, c := range spec.Containers {
		add(sum, c.Resources.Requests)
	}
	sidecars := corev1.ResourceList{}
	peak := corev1.ResourceList{}
	for _, c := range spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(sum, c.Resources.Requests)
			add(sidecars, c.Resources.Requests)
			continue
		}
		alone := corev1.ResourceList{}
		add(alone, c.Resources.Requests)
		add(alone, sidecars)
		for rn, q := range alone {
			if p, ok := peak[rn]; !ok || q.Cmp(p) > 0 {
				peak[rn] = q
			}
		}
	}
	for rn, q := range peak {
		if s, ok := sum[rn]; !ok || q.Cmp(s) > 0 {
			sum[rn] = q
		}
	}
	for rn, q := range sum {
		if q.IsZero() {
			delete(sum, rn)
		}
	}
	return sum
}

// defaultPodResources fills in pod-level requests as the API server does when the pod has
// pod-level limits: a resource the containers request gets their aggregate request (cpu and
// memory, which may be overcommitted), and any other limited resource its limit.
func defaultPodResources(spec *corev1.PodSpec) {
	r := spec.Resources
	if r == nil || len(r.Limits) == 0 {
		return
	}
	reqs := r.Requests
	if reqs == nil {
		reqs = corev1.ResourceList{}
	}
	aggr := AggregateRequests(spec)
	for _, rn := range sortedKeys(aggr) {
		if _, set := reqs[rn]; !set && (rn == corev1.ResourceCPU || rn == corev1.ResourceMemory) {
			reqs[rn] = aggr[rn].DeepCopy()
		}
	}
	for _, rn := range sortedKeys(r.Limits) {
		if _, set := reqs[rn]; !set && IsPodLevelResource(rn) {
			reqs[rn] = r.Limits[rn].DeepCopy()
		}
	}
	if len(reqs) > 0 {
		r.Requests = reqs
	}
}
