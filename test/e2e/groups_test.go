package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A non-root container's groups are its primary group and the supplemental ones (fsGroup
// among them), as under a kubelet with containerd; never root's group 0 (issue 23,
// deviation 1). The docs' security context example.
func TestSupplementalGroups(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("groups.yaml", `apiVersion: v1
kind: Pod
metadata: {name: groups}
spec:
  restartPolicy: Never
  securityContext:
    runAsUser: 1000
    runAsGroup: 3000
    fsGroup: 2000
    supplementalGroups: [4000]
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["id"]
`)
	d.eventually(60*time.Second, "groups succeeded", func() (bool, string) {
		p := d.pod("groups")
		if p == nil {
			return false, "not listed"
		}
		return p.Status.Phase == corev1.PodSucceeded, string(p.Status.Phase)
	})
	out, _, _ := d.ctl("logs", "groups")
	if want := "uid=1000 gid=3000 groups=2000,3000,4000"; strings.TrimSpace(out) != want {
		t.Errorf("id printed %q, want %q", strings.TrimSpace(out), want)
	}
	d.removeAndCheck("groups")
}
