package pod

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// ImagesInUse returns the images the desired pods name (their init and app containers'), each
// with the pods (namespace/name) that name it, sorted; ok is false until the first desired set
// arrived. Image garbage collection never removes them. Safe for concurrent use.
//
// The last good version of each pod, which a rollback would start again, counts too.
func (m *Manager) ImagesInUse() (map[string][]string, bool) {
	p := m.desired.Load()
	if p == nil {
		return nil, false
	}
	refs := map[string][]string{}
	for _, pod := range *p {
		addImages(refs, pod)
	}
	m.good.Range(func(_, v any) bool {
		addImages(refs, v.(*corev1.Pod))
		return true
	})
	for ref := range refs {
		slices.Sort(refs[ref])
		refs[ref] = slices.Compact(refs[ref])
	}
	return refs, true
}

// addImages adds the images of pod's containers to refs.
func addImages(refs map[string][]string, pod *corev1.Pod) {
	key := Key(pod.Namespace, pod.Name)
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			if c.Image != "" {
				refs[c.Image] = append(refs[c.Image], key)
			}
		}
	}
}
