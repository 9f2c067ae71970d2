// Package status merges what the pod workers report with the manifest problems the source
// found, into the one list of pods that the API serves.
package status

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/pod"
	"github.com/minipod/minipod/pkg/source"
)

// View is the API's store. It is safe for concurrent use.
type View struct {
	pods func() []pod.Encoded

	mu       sync.RWMutex
	problems []source.Problem
	events   *events.Recorder
	reported map[problemKey]bool // the problems already told as events
}

// problemKey is what makes a problem new: the same refusal seen again on every re-list is
// not told again, a different one (another rule broken, another message) is.
type problemKey struct{ path, reason, message string }

// NewView reads running pods from pods (fresh items each call; the pods are shared and never
// changed here) and problems from SetProblems.
func NewView(pods func() []pod.Encoded) *View { return &View{pods: pods} }

// SetEvents makes SetProblems record a Warning event, with the problem's reason and message,
// for each problem when it appears: a kubelet does the same for a pod it refuses to admit,
// and so `minipodctl describe` and `events` tell why a pod is missing or keeps its last good
// version. Call it before the first SetProblems.
func (v *View) SetEvents(rec *events.Recorder) {
	v.mu.Lock()
	v.events = rec
	v.mu.Unlock()
}

// SetProblems replaces the current manifest problems.
func (v *View) SetProblems(p []source.Problem) {
	v.mu.Lock()
	v.problems = p
	rec := v.events
	var fresh []source.Problem
	if rec != nil {
		seen := make(map[problemKey]bool, len(p))
		for _, pr := range p {
			k := problemKey{pr.Path, pr.Reason, pr.Message}
			if !v.reported[k] {
				fresh = append(fresh, pr)
			}
			seen[k] = true
		}
		// Forgetting what is gone means a problem that comes back is told again.
		v.reported = seen
	}
	v.mu.Unlock()
	for _, pr := range fresh {
		ns := pr.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		rec.Emit(ns, pr.Name, "", "", events.Warning, pr.Reason, pr.Message)
	}
}

// List returns every pod: the running ones with their status, and an item for each file that
// could not be used, with status.reason and a message naming the field. A file whose last good
// version still runs is reported on that pod's item instead.
func (v *View) List() []corev1.Pod {
	items := v.merged()
	out := make([]corev1.Pod, len(items))
	for i, it := range items {
		out[i] = *it.Pod.DeepCopy()
	}
	return out
}

// Get returns one item of List, namespace/name (an empty namespace is "default"), copying only
// that pod: a tool that waits for one pod asks for it in a loop.
func (v *View) Get(namespace, name string) (*corev1.Pod, bool) {
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	for _, it := range v.merged() {
		ns := it.Pod.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		if ns == namespace && it.Pod.Name == name {
			return it.Pod.DeepCopy(), true
		}
	}
	return nil, false
}

// ListJSON returns List's items as the API sends them, each pod's JSON encoded once for as
// long as it does not change.
func (v *View) ListJSON() ([][]byte, error) {
	items := v.merged()
	out := make([][]byte, len(items))
	for i, it := range items {
		if it.JSON == nil {
			b, err := pod.EncodePod(it.Pod)
			if err != nil {
				return nil, err
			}
			it.JSON = b
		}
		out[i] = it.JSON
	}
	return out, nil
}

// merged is List's items, sorted; the pods are shared with the store unless a problem changed
// one (then its JSON is nil).
func (v *View) merged() []pod.Encoded {
	items := v.pods()
	v.mu.RLock()
	problems := v.problems
	v.mu.RUnlock()
	if len(problems) > 0 {
		items = withProblems(items, problems)
	}
	pod.SortByName(items)
	return items
}

// withProblems puts each problem on the item of its pod when that pod runs from the same file
// (added to its message, joined with "; "), or adds an item of its own.
func withProblems(items []pod.Encoded, problems []source.Problem) []pod.Encoded {
	index := make(map[string]int, len(items))
	for i := range items {
		index[pod.Key(items[i].Pod.Namespace, items[i].Pod.Name)] = i
	}
	for _, pr := range problems {
		ns := pr.Namespace
		if ns == "" {
			ns = metav1.NamespaceDefault
		}
		if i, ok := index[pod.Key(ns, pr.Name)]; ok && pr.Running && items[i].Pod.Annotations[pod.AnnotationManifest] == pr.Path {
			msg := pr.Reason + ": " + pr.Message
			if m := items[i].Pod.Status.Message; m != "" {
				msg = m + "; " + msg // the pod's own message, or another problem's
			}
			p := items[i].Pod.DeepCopy()
			p.Status.Message = msg
			items[i] = pod.Encoded{Pod: p}
			continue
		}
		if pr.Note {
			continue // about a pod not listed yet: its events tell it meanwhile
		}
		p := problemPod(pr, ns)
		items = append(items, pod.Encoded{Pod: &p})
	}
	return items
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
