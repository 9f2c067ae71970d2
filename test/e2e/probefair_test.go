package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// One pod whose probes all hang until their timeout does not make another pod's probes late.
//
// Pod "slow" has four containers, each with a readiness and a liveness httpGet probe (period
// 1 s, timeout 10 s) against a busybox nc that accepts every connection and never answers:
// eight attempts that each hold on for 10 s, again and again, as many as the daemon once ran
// probe attempts at once. Pod "fast" has an exec readiness probe with a period of 1 s that the
// test flips by creating and removing a file. Each flip must show in the fast pod's status
// within a few of its periods. When attempts queue behind the slow pod's (a fixed pool of 8
// workers, as before the fair scheduler), the fast probe gets a worker only when a slow
// attempt times out, and about half of the flips took 9 s.
func TestProbeFairness(t *testing.T) {
	const (
		period = time.Second // the fast pod's periodSeconds
		bound  = 5 * period  // how long a flip may take to show, generous for a busy machine
		rounds = 4           // ready and not ready again, each round
	)
	d := newDaemon(t)
	d.start()

	var slow strings.Builder
	slow.WriteString(`apiVersion: v1
kind: Pod
metadata: {name: slow}
spec:
  terminationGracePeriodSeconds: 1
  containers:
`)
	for i := range 4 {
		port := 8081 + i
		// -ll -e: a new sleep per connection; it holds the connection and never writes.
		fmt.Fprintf(&slow, `  - name: hang%d
    image: minipod.local/busybox:1.35
    command: ["nc", "-ll", "-p", "%d", "-e", "sleep", "30"]
    readinessProbe:
      httpGet: {path: /, port: %d}
      periodSeconds: 1
      timeoutSeconds: 10
    livenessProbe:
      httpGet: {path: /, port: %d}
      periodSeconds: 1
      timeoutSeconds: 10
      failureThreshold: 1000
`, i, port, port, port)
	}
	d.writeManifest("slow.yaml", slow.String())
	running := func(name string) func() (bool, string) {
		return func() (bool, string) {
			p := d.pod(name)
			if p == nil || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 {
				return false, fmt.Sprintf("%+v", p)
			}
			for _, c := range p.Status.ContainerStatuses {
				if c.State.Running == nil {
					return false, fmt.Sprintf("container %s: %+v", c.Name, c.State)
				}
			}
			return true, ""
		}
	}
	d.eventually(60*time.Second, "slow pod's containers running", running("slow"))

	d.writeManifest("fast.yaml", `apiVersion: v1
kind: Pod
metadata: {name: fast}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
      failureThreshold: 1
`)
	d.eventually(60*time.Second, "fast pod's container running", running("fast"))

	ready := func() (bool, string) {
		p := d.pod("fast")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		return p.Status.ContainerStatuses[0].Ready && podCondition(p, corev1.PodReady) == corev1.ConditionTrue, fmt.Sprintf("%+v", p.Status.ContainerStatuses[0])
	}
	flip := func(what string, cmd []string, want bool) time.Duration {
		t.Helper()
		if _, errs, code := d.ctl(append([]string{"exec", "fast", "--"}, cmd...)...); code != 0 {
			t.Fatalf("exec %v: exit %d: %s", cmd, code, errs)
		}
		start := time.Now()
		d.eventually(bound, what, func() (bool, string) {
			ok, detail := ready()
			return ok == want, detail
		})
		return time.Since(start)
	}
	var took []string
	for i := range rounds {
		took = append(took, flip(fmt.Sprintf("fast ready (round %d)", i+1), []string{"touch", "/tmp/ready"}, true).Round(time.Millisecond).String())
		took = append(took, flip(fmt.Sprintf("fast not ready (round %d)", i+1), []string{"rm", "/tmp/ready"}, false).Round(time.Millisecond).String())
	}
	t.Logf("readiness flips of the fast pod showed after %s (bound %s)", strings.Join(took, ", "), bound)

	// The slow pod's probes ran all along and never passed; nothing was restarted.
	p := d.pod("slow")
	for _, c := range p.Status.ContainerStatuses {
		if c.Ready || c.RestartCount != 0 {
			t.Errorf("slow container %s: ready %v restarts %d", c.Name, c.Ready, c.RestartCount)
		}
	}
}
