package e2e

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The first probe of a container comes on the pod's probe ticks, up to a period after the
// container started, as on a kubelet, not the instant it starts: a server that binds its port
// a few seconds after its start is not killed by a liveness probe with failureThreshold 1 and
// no initialDelaySeconds (issue 23, deviation 6; the docs' probe-level grace period example,
// with a shorter period).
func TestFirstProbeOnTick(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("late.yaml", `apiVersion: v1
kind: Pod
metadata: {name: late}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "mkdir -p /www; echo ok > /www/healthz; sleep 3; exec httpd -f -p 8080 -h /www"]
    livenessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 10
      failureThreshold: 1
`)
	d.waitRunning("late", 60*time.Second)
	// Past the first probe: the server answers it, and the container was never restarted.
	start := time.Now()
	d.eventually(60*time.Second, "late past its first probe", func() (bool, string) {
		p := d.pod("late")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount != 0 {
			t.Fatalf("restarted %d times: killed by a probe before the server was up; last state %+v", cs.RestartCount, cs.LastTerminationState)
		}
		return time.Since(start) > 13*time.Second && cs.State.Running != nil, fmt.Sprintf("%+v", cs.State)
	})
	if p := d.pod("late"); p.Status.ContainerStatuses[0].RestartCount != 0 || p.Status.Phase != corev1.PodRunning {
		t.Errorf("after the first probe: %s, %d restarts", p.Status.Phase, p.Status.ContainerStatuses[0].RestartCount)
	}
	d.removeAndCheck("late")
}
