package pod

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func TestRootfsTargets(t *testing.T) {
	ctr := func(name string, mod ...func(*ctrState)) *ctrState {
		c := &ctrState{spec: &corev1.Container{Name: name, Image: "busybox"}}
		for _, m := range mod {
			m(c)
		}
		return c
	}
	always := func(c *ctrState) { c.spec.ImagePullPolicy = corev1.PullAlways }
	started := func(c *ctrState) { c.id = "uid-" + c.spec.Name + "-0" }
	backoff := func(c *ctrState) { c.restartAt = time.Now().Add(time.Minute) }
	broken := func(c *ctrState) { c.permanentErr = true }
	for _, tc := range []struct {
		name  string
		inits []*ctrState
		apps  []*ctrState
		want  []string
	}{
		{"every member container", nil, []*ctrState{ctr("a"), ctr("b"), ctr("c")}, []string{"a", "b", "c"}},
		{"only the first init container", []*ctrState{ctr("i1"), ctr("i2")}, []*ctrState{ctr("a")}, []string{"i1"}},
		{"pulled at each start", nil, []*ctrState{ctr("a", always), ctr("b")}, []string{"b"}},
		{"not a first start", nil, []*ctrState{ctr("a", started), ctr("b", backoff), ctr("c", broken), ctr("d")}, []string{"d"}},
		{"first init container ran in an earlier sandbox", []*ctrState{ctr("i1", started)}, []*ctrState{ctr("a")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range rootfsTargets(&podState{inits: tc.inits, apps: tc.apps}) {
				got = append(got, c.name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
