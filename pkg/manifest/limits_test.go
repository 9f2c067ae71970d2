package manifest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// containers returns n valid containers named prefix0, prefix1, ...
func containers(prefix string, n int) []corev1.Container {
	out := make([]corev1.Container, n)
	for i := range out {
		out[i] = corev1.Container{Name: fmt.Sprintf("%s%d", prefix, i), Image: "busybox"}
	}
	return out
}

func TestContainerLimit(t *testing.T) {
	for _, tc := range []struct {
		name        string
		apps, inits int
		want        string // the one error, "" for none
	}{
		{"at the limit", MaxContainers, 0, ""},
		{"at the limit with init containers", MaxContainers - 6, 6, ""},
		{"one container too many", MaxContainers + 1, 0,
			fmt.Sprintf("spec.containers: Too many: %d: must have at most %d items (a pod may have at most %d containers and init containers together)", MaxContainers+1, MaxContainers, MaxContainers)},
		{"one init container too many", MaxContainers - 6, 7,
			fmt.Sprintf("spec.initContainers: Too many: 7: must have at most 6 items (a pod may have at most %d containers and init containers together, and spec.containers has %d)", MaxContainers, MaxContainers-6)},
		{"tens of thousands", 20000, 20000,
			fmt.Sprintf("spec.containers: Too many: 20000: must have at most %d items (a pod may have at most %d containers and init containers together)", MaxContainers, MaxContainers)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: objectMeta("many")}
			pod.Spec.Containers = containers("app", tc.apps)
			pod.Spec.InitContainers = containers("init", tc.inits)
			SetDefaults(pod)
			errs := Validate(pod)
			var got []string
			for _, e := range errs {
				got = append(got, e.Error())
			}
			switch {
			case tc.want == "" && len(errs) != 0:
				t.Errorf("errors: %v, want none", got)
			case tc.want != "" && (len(errs) != 1 || got[0] != tc.want):
				t.Errorf("errors: %q\nwant one: %q", got, tc.want)
			case tc.want != "" && errs[0].Type != field.ErrorTypeTooMany:
				t.Errorf("error type %s, want %s", errs[0].Type, field.ErrorTypeTooMany)
			}
		})
	}
}

// A manifest file of tens of thousands of containers is refused in one short message, quickly,
// without an error per container.
func TestLoadTooManyContainers(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: v1\nkind: Pod\nmetadata: {name: many}\nspec:\n  containers:\n")
	n := 0
	for b.Len() < MaxFileSize-40 {
		fmt.Fprintf(&b, "  - {name: c%d, image: x}\n", n) // image valid, names valid: only the count is wrong
		n++
	}
	if err := CheckSize(int64(b.Len())); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := Load("/etc/minipod/manifests/many.yaml", []byte(b.String()))
	took := time.Since(start)
	var me *Error
	if !errors.As(err, &me) || me.Reason != ReasonInvalid {
		t.Fatalf("Load of %d containers: %v, want an %s error", n, err, ReasonInvalid)
	}
	want := fmt.Sprintf("spec.containers: Too many: %d: must have at most %d items", n, MaxContainers)
	if !strings.HasPrefix(me.Message, want) || strings.Contains(me.Message, "; ") {
		t.Errorf("message = %.300q\nwant one error starting %q", me.Message, want)
	}
	t.Logf("%d containers in %d bytes refused in %v", n, b.Len(), took)
}
