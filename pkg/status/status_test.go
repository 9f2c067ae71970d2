package status

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/pod"
	"github.com/minipod/minipod/pkg/source"
)

func runningPod(namespace, name, manifest string) corev1.Pod {
	return corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   namespace,
			Name:        name,
			Annotations: map[string]string{pod.AnnotationManifest: manifest},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
}

// item summarizes a listed pod.
func item(p corev1.Pod) string {
	return fmt.Sprintf("%s/%s phase=%s reason=%q message=%q manifest=%s",
		p.Namespace, p.Name, p.Status.Phase, p.Status.Reason, p.Status.Message, p.Annotations[pod.AnnotationManifest])
}

func TestList(t *testing.T) {
	web := runningPod("default", "web", "/m/web.yaml")
	api := runningPod("prod", "api", "/m/api.yaml")
	db := runningPod("default", "db", "/m/db.yaml")

	tests := []struct {
		name     string
		pods     []corev1.Pod
		problems []source.Problem
		want     []string
	}{
		{
			name: "pods only, sorted by namespace then name",
			pods: []corev1.Pod{api, web, db},
			want: []string{
				`default/db phase=Running reason="" message="" manifest=/m/db.yaml`,
				`default/web phase=Running reason="" message="" manifest=/m/web.yaml`,
				`prod/api phase=Running reason="" message="" manifest=/m/api.yaml`,
			},
		},
		{
			name: "last good version runs: message on the pod, no new item",
			pods: []corev1.Pod{web, api},
			problems: []source.Problem{{
				Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "InvalidManifest",
				Message: "spec.containers[0].image: Required value; the last good version keeps running", Running: true,
			}},
			want: []string{
				`default/web phase=Running reason="" message="InvalidManifest: spec.containers[0].image: Required value; the last good version keeps running" manifest=/m/web.yaml`,
				`prod/api phase=Running reason="" message="" manifest=/m/api.yaml`,
			},
		},
		{
			name: "running problem in a non-default namespace",
			pods: []corev1.Pod{api},
			problems: []source.Problem{{
				Path: "/m/api.yaml", Namespace: "prod", Name: "api", Reason: "InsecureManifestPermissions", Message: "m", Running: true,
			}},
			want: []string{`prod/api phase=Running reason="" message="InsecureManifestPermissions: m" manifest=/m/api.yaml`},
		},
		{
			name: "problems become Failed items, namespace default when empty",
			pods: []corev1.Pod{web},
			problems: []source.Problem{
				{Path: "/m/broken.yaml", Name: "broken.yaml", Reason: "InvalidManifest", Message: "mapping values are not allowed"},
				{Path: "/m/nocontainers.yaml", Namespace: "", Name: "nocontainers", Reason: "InvalidManifest", Message: "spec.containers: Required value"},
				{Path: "/m/x.yaml", Namespace: "a", Name: "zz", Reason: "UnreadableManifest", Message: "too many levels of symbolic links"},
			},
			want: []string{
				`a/zz phase=Failed reason="UnreadableManifest" message="too many levels of symbolic links" manifest=/m/x.yaml`,
				`default/broken.yaml phase=Failed reason="InvalidManifest" message="mapping values are not allowed" manifest=/m/broken.yaml`,
				`default/nocontainers phase=Failed reason="InvalidManifest" message="spec.containers: Required value" manifest=/m/nocontainers.yaml`,
				`default/web phase=Running reason="" message="" manifest=/m/web.yaml`,
			},
		},
		{
			name: "conflict: same name, other file, is its own item",
			pods: []corev1.Pod{web},
			problems: []source.Problem{{
				Path: "/m/web2.yaml", Namespace: "default", Name: "web", Reason: "NameConflict",
				Message: "pod default/web is already defined by /m/web.yaml; this file is ignored",
			}},
			want: []string{
				`default/web phase=Running reason="" message="" manifest=/m/web.yaml`,
				`default/web phase=Failed reason="NameConflict" message="pod default/web is already defined by /m/web.yaml; this file is ignored" manifest=/m/web2.yaml`,
			},
		},
		{
			name: "running problem from another file does not touch the pod",
			pods: []corev1.Pod{web},
			problems: []source.Problem{{
				Path: "/m/other.yaml", Namespace: "default", Name: "web", Reason: "InvalidManifest", Message: "bad", Running: true,
			}},
			want: []string{
				`default/web phase=Running reason="" message="" manifest=/m/web.yaml`,
				`default/web phase=Failed reason="InvalidManifest" message="bad" manifest=/m/other.yaml`,
			},
		},
		{
			name: "running problem whose pod is not (yet) listed is an item",
			problems: []source.Problem{{
				Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "InvalidManifest", Message: "bad", Running: true,
			}},
			want: []string{`default/web phase=Failed reason="InvalidManifest" message="bad" manifest=/m/web.yaml`},
		},
		{
			name: "notes join the pod's own message, and are no item of their own",
			pods: []corev1.Pod{withMessage(web, "FailedCreatePodSandBox: x")},
			problems: []source.Problem{
				{Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "ManifestOverride", Message: "ConfigMap app ...", Running: true, Note: true},
				{Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "NameConflict", Message: "Secret default/db ...", Running: true, Note: true},
				{Path: "/m/new.yaml", Namespace: "default", Name: "new", Reason: "ManifestOverride", Message: "ConfigMap app ...", Running: true, Note: true},
			},
			want: []string{
				`default/web phase=Running reason="" message="FailedCreatePodSandBox: x; ManifestOverride: ConfigMap app ...; NameConflict: Secret default/db ..." manifest=/m/web.yaml`,
			},
		},
		{
			name: "not running problem with the pod's name and file is an item",
			pods: []corev1.Pod{web},
			problems: []source.Problem{{
				Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "InvalidManifest", Message: "bad",
			}},
			want: []string{
				`default/web phase=Running reason="" message="" manifest=/m/web.yaml`,
				`default/web phase=Failed reason="InvalidManifest" message="bad" manifest=/m/web.yaml`,
			},
		},
		{
			name: "nothing at all",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := make([]string, len(tt.pods))
			for i, p := range tt.pods {
				before[i] = p.Status.Message
			}
			v := NewView(encoded(tt.pods...))
			v.SetProblems(tt.problems)
			got := v.List()
			var items []string
			for _, p := range got {
				items = append(items, item(p))
				if p.APIVersion != "v1" || p.Kind != "Pod" {
					t.Errorf("%s/%s: apiVersion %q kind %q, want v1 Pod", p.Namespace, p.Name, p.APIVersion, p.Kind)
				}
			}
			if !slices.Equal(items, tt.want) {
				t.Errorf("List()\n got %q\nwant %q", items, tt.want)
			}
			// The pods the view was given are not changed.
			for i, p := range tt.pods {
				if p.Status.Message != before[i] {
					t.Errorf("the caller's pod %s got message %q", p.Name, p.Status.Message)
				}
			}
		})
	}
}

func TestSetProblemsReplaces(t *testing.T) {
	v := NewView(encoded())
	v.SetProblems([]source.Problem{{Path: "/m/a.yaml", Name: "a", Reason: "InvalidManifest", Message: "x"}})
	if got := len(v.List()); got != 1 {
		t.Fatalf("after one problem: got %d items, want 1", got)
	}
	v.SetProblems(nil)
	if got := v.List(); len(got) != 0 {
		t.Fatalf("after SetProblems(nil): got %d items, want 0", len(got))
	}
}

// TestListConcurrent is for the race detector: List and SetProblems from many goroutines.
func TestListConcurrent(t *testing.T) {
	web := runningPod("default", "web", "/m/web.yaml")
	v := NewView(encoded(web))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for range 100 {
				v.SetProblems([]source.Problem{{Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "R", Message: fmt.Sprint(i), Running: true}})
			}
		}()
		go func() {
			defer wg.Done()
			for range 100 {
				if got := v.List(); len(got) != 1 {
					t.Errorf("List: got %d items, want 1", len(got))
					return
				}
			}
		}()
	}
	wg.Wait()
}

// Each problem is told once as a Warning event with its reason when it appears, not again on
// every re-list; a changed refusal is told anew, and so is one that went away and came back.
func TestProblemEvents(t *testing.T) {
	rec := events.NewRecorder(100)
	v := NewView(encoded())
	v.SetEvents(rec)
	refused := source.Problem{Path: "/m/priv.yaml", Name: "priv", Reason: "PolicyViolation",
		Message: "spec.containers[0].securityContext.privileged: Forbidden: a privileged container is not allowed by this node's policy"}
	kept := source.Problem{Path: "/m/web.yaml", Namespace: "prod", Name: "web", Reason: "PolicyViolation",
		Message: "spec.hostNetwork: Forbidden: x; the last good version keeps running", Running: true}
	told := func() []string {
		var out []string
		for _, e := range rec.List("", "") {
			out = append(out, fmt.Sprintf("%s/%s %s %s %d", e.Namespace, e.Name, e.Type, e.Reason, e.Count))
		}
		return out
	}
	v.SetProblems([]source.Problem{refused, kept})
	v.SetProblems([]source.Problem{refused, kept}) // a re-list: nothing new
	want := []string{"default/priv Warning PolicyViolation 1", "prod/web Warning PolicyViolation 1"}
	if got := told(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if e := rec.List("default", "priv"); len(e) != 1 || e[0].Message != refused.Message {
		t.Fatalf("event of priv: %+v", e)
	}
	other := refused
	other.Message = "spec.hostPID: Forbidden: y"
	v.SetProblems([]source.Problem{other, kept}) // another rule broken: told
	v.SetProblems(nil)                           // fixed
	v.SetProblems([]source.Problem{refused})     // broken again: told again (counted up)
	want = []string{"prod/web Warning PolicyViolation 1", "default/priv Warning PolicyViolation 1", "default/priv Warning PolicyViolation 2"}
	if got := told(); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// encoded is a pods source for NewView, as the pod manager's: fresh items each call, sorted by
// namespace and name, JSON not yet encoded.
func encoded(pods ...corev1.Pod) func() []pod.Encoded {
	return func() []pod.Encoded {
		out := make([]pod.Encoded, len(pods))
		for i := range pods {
			out[i] = pod.Encoded{Pod: pods[i].DeepCopy()}
		}
		slices.SortFunc(out, func(a, b pod.Encoded) int {
			return strings.Compare(a.Pod.Namespace+"/"+a.Pod.Name, b.Pod.Namespace+"/"+b.Pod.Name)
		})
		return out
	}
}

// ListJSON is List encoded: the same items, in the same order, each as the API sends a pod.
func TestListJSONIsList(t *testing.T) {
	web := runningPod("default", "web", "/m/web.yaml")
	db := runningPod("data", "db", "/m/db.yaml")
	db.APIVersion, db.Kind = "", "" // the API fills them in
	v := NewView(encoded(web, db))
	v.SetProblems([]source.Problem{
		{Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "InvalidManifest", Message: "newer version refused", Running: true},
		{Path: "/m/bad.yaml", Name: "bad", Reason: "InvalidManifest", Message: "no containers"},
	})
	list := v.List()
	got, err := v.ListJSON()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(list) || len(list) != 3 {
		t.Fatalf("ListJSON: %d items, List: %d, want 3", len(got), len(list))
	}
	for i := range list {
		want, err := pod.EncodePod(&list[i])
		if err != nil {
			t.Fatal(err)
		}
		if string(got[i]) != string(want) {
			t.Errorf("item %d:\n got %s\nwant %s", i, got[i], want)
		}
		var back corev1.Pod
		if err := json.Unmarshal(got[i], &back); err != nil || back.APIVersion != "v1" || back.Kind != "Pod" {
			t.Errorf("item %d: apiVersion %q kind %q (%v), want v1 Pod", i, back.APIVersion, back.Kind, err)
		}
	}
	if list[2].Name != "web" || !strings.Contains(string(got[2]), "newer version refused") {
		t.Errorf("the running pod's item lacks its problem: %s", got[2])
	}
}

// Get is one item of List, problems included, and a copy of its own.
func TestGetIsListItem(t *testing.T) {
	web := runningPod("default", "web", "/m/web.yaml")
	db := runningPod("data", "db", "/m/db.yaml")
	// As the pod store does: the same published pods for every caller.
	shared := encoded(web, db)()
	v := NewView(func() []pod.Encoded { return slices.Clone(shared) })
	v.SetProblems([]source.Problem{
		{Path: "/m/web.yaml", Namespace: "default", Name: "web", Reason: "InvalidManifest", Message: "newer version refused", Running: true},
		{Path: "/m/bad.yaml", Name: "bad", Reason: "InvalidManifest", Message: "no containers"},
	})
	list := v.List()
	if len(list) != 3 {
		t.Fatalf("List: %d items, want 3", len(list))
	}
	for i := range list {
		want := &list[i]
		got, ok := v.Get(want.Namespace, want.Name)
		if !ok {
			t.Fatalf("Get(%q, %q): not found", want.Namespace, want.Name)
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if string(a) != string(b) {
			t.Errorf("Get(%q, %q):\n got %s\nwant %s", want.Namespace, want.Name, a, b)
		}
		got.Status.Message = "changed by the caller"
		if again, _ := v.Get(want.Namespace, want.Name); again.Status.Message == "changed by the caller" {
			t.Errorf("Get(%q, %q) handed out the view's own pod", want.Namespace, want.Name)
		}
	}
	if p, ok := v.Get("", "bad"); !ok || p.Name != "bad" {
		t.Errorf(`Get("", "bad") = %v, %v; want the problem item in namespace default`, p, ok)
	}
	for _, k := range [][2]string{{"data", "web"}, {"default", "db"}, {"default", "nope"}} {
		if _, ok := v.Get(k[0], k[1]); ok {
			t.Errorf("Get(%q, %q) found a pod", k[0], k[1])
		}
	}
}

func withMessage(p corev1.Pod, msg string) corev1.Pod {
	p = *p.DeepCopy()
	p.Status.Message = msg
	return p
}
