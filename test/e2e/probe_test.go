package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Liveness, readiness and startup probes act as on a kubelet.
func TestProbes(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "2s")
	d.start()
	d.writeManifest("live.yaml", `apiVersion: v1
kind: Pod
metadata: {name: live}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "touch /tmp/healthy; trap 'exit 0' TERM; while true; do sleep 1; done"]
    livenessProbe:
      exec: {command: ["cat", "/tmp/healthy"]}
      periodSeconds: 1
      failureThreshold: 2
`)
	d.writeManifest("ready.yaml", `apiVersion: v1
kind: Pod
metadata: {name: ready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo ok > /var/www/ready; exec httpd -f -p 8080 -h /var/www"]
    ports: [{name: http, containerPort: 8080}]
    readinessProbe:
      httpGet: {path: /ready, port: http}
      periodSeconds: 1
`)
	d.writeManifest("slow.yaml", `apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    startupProbe:
      exec: {command: ["cat", "/tmp/started"]}
      periodSeconds: 1
      failureThreshold: 60
    livenessProbe:
      exec: {command: ["cat", "/tmp/started"]}
      periodSeconds: 1
      failureThreshold: 1
`)
	status := func(name string) (corev1.ContainerStatus, bool) {
		p := d.pod(name)
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return corev1.ContainerStatus{}, false
		}
		return p.Status.ContainerStatuses[0], true
	}

	// Readiness follows the httpGet probe both ways, and the pod's Ready condition with it.
	d.waitRunning("ready", 60*time.Second)
	d.ctl("exec", "ready", "--", "rm", "/var/www/ready")
	d.eventually(20*time.Second, "ready -> not ready", func() (bool, string) {
		cs, ok := status("ready")
		p := d.pod("ready")
		return ok && !cs.Ready && cs.State.Running != nil && podCondition(p, corev1.PodReady) == corev1.ConditionFalse, fmt.Sprintf("%+v", cs)
	})
	d.ctl("exec", "ready", "--", "sh", "-c", "echo ok > /var/www/ready")
	d.waitRunning("ready", 20*time.Second)
	if cs, _ := status("ready"); cs.RestartCount != 0 {
		t.Errorf("readiness failures restarted the container: %d", cs.RestartCount)
	}

	// The startup probe holds the liveness probe off: no restart while it has not passed.
	cs, _ := status("slow")
	if cs.Started == nil || *cs.Started || cs.Ready {
		t.Errorf("slow: started %v ready %v before its startup probe passed", cs.Started, cs.Ready)
	}
	d.ctl("exec", "slow", "--", "touch", "/tmp/started")
	d.waitRunning("slow", 20*time.Second)
	if cs, _ := status("slow"); cs.RestartCount != 0 || cs.Started == nil || !*cs.Started {
		t.Errorf("slow: restarts %d started %v", cs.RestartCount, cs.Started)
	}

	// A liveness probe that starts failing restarts the container.
	d.waitRunning("live", 60*time.Second)
	d.ctl("exec", "live", "--", "rm", "/tmp/healthy")
	d.eventually(30*time.Second, "live restarted", func() (bool, string) {
		cs, ok := status("live")
		return ok && cs.RestartCount >= 1 && cs.State.Running != nil, fmt.Sprintf("%+v", cs)
	})
	out, _, _ := d.ctl("status", "live")
	if !strings.Contains(out, "Running") {
		t.Errorf("status after a liveness restart:\n%s", out)
	}
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	if p == nil {
		return ""
	}
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status
		}
	}
	return ""
}
