// Package status merges what the pod workers report with the manifest problems the source
// found, into the one list of pods that the API serves.
package status

import (
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/pod"
	"github.com/minipod/minipod/pkg/source"
)

// View is the API's store. It is safe for concurrent use.
type View struct {
	pods func() []corev1.Pod

	mu       sync.RWMutex
	problems []source.Problem
}

// NewView reads running pods from pods (a copy each call) and problems from SetProblems.
func NewView(pods func() []corev1.Pod) *View { return &View{pods: pods} }

// SetProblems replaces the current manifest problems.
func (v *View) SetProblems(p []source.Problem) {
	v.mu.Lock()
	v.problems = p
	v.mu.Unlock()
}

// List returns every pod: the running ones with their status, and an item for each file that
// could not be used, with status.reason and a message naming the field. A file whose last good
// version still runs is reported on that pod's item instead.
func (v *View) List() []corev1.Pod {
	pods := v.pods()
	v.mu.RLock()
	problems := v.problems
	v.mu.RUnlock()
	index := map[string]int{}
	for i := range pods {
		index[pod.Key(pods[i].Namespace, pods[i].Name)] = i
	}
	for _, pr := range problems {
		ns := pr.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		if i, ok := index[pod.Key(ns, pr.Name)]; ok && pr.Running && pods[i].Annotations[pod.AnnotationManifest] == pr.Path {
			pods[i].Status.Message = pr.Reason + ": " + pr.Message
			continue
		}
		pods = append(pods, problemPod(pr, ns))
	}
	sort.SliceStable(pods, func(i, j int) bool {
		if pods[i].Namespace != pods[j].Namespace {
			return pods[i].Namespace < pods[j].Namespace
		}
		return pods[i].Name < pods[j].Name
	})
	return pods
}

func problemPod(pr source.Problem, ns string) corev1.Pod {
	return corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        pr.Name,
			Namespace:   ns,
			Annotations: map[string]string{pod.AnnotationManifest: pr.Path},
		},
		Status: corev1.PodStatus{
			// The kubelet marks pods it refuses to admit Failed with a reason; a manifest that
			// cannot be used is refused the same way.
			Phase:   corev1.PodFailed,
			Reason:  pr.Reason,
			Message: pr.Message,
		},
	}
}
