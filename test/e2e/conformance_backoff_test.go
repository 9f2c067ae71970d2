package e2e

import (
	"testing"
	"time"
)

// separatePorts are ported scenarios that need a daemon of their own, so they run outside
// TestConformance; the key is group/upstream name, the value the test that ports it.
var separatePorts = map[string]string{
	"pods/should cap back-off at MaxContainerBackOff": "TestConformanceBackoffCap",
}

// TestConformanceBackoffCap ports pods.go "should cap back-off at MaxContainerBackOff": a
// container that exits after 5 s is restarted with the crash backoff, which stops growing at
// its cap. Upstream waits twice the kubelet's 300 s cap and measures three restarts; this port
// runs a daemon whose backoff starts at 2 s and is capped at 8 s (--backoff-initial,
// --backoff-max: the node's kubelet settings), so the same shape takes under a minute. A delay
// is the time from an attempt's finishedAt to the next one's startedAt.
func TestConformanceBackoffCap(t *testing.T) {
	const capDelay = 8 * time.Second
	d := newDaemon(t, "--backoff-initial", "2s", "--backoff-max", capDelay.String())
	d.start()
	d.writeManifest("back-off-cap.yaml", `apiVersion: v1
kind: Pod
metadata: {name: back-off-cap, labels: {test: liveness}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: back-off-cap
    image: minipod.local/busybox:1.35
    command: ["/bin/sh", "-c", "sleep 5", "/crash/missing"]
`)
	var delays []time.Duration
	seen := int32(0)
	d.eventually(3*time.Minute, "two restarts at the capped backoff", func() (bool, string) {
		p := d.pod("back-off-cap")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "no status"
		}
		s := p.Status.ContainerStatuses[0]
		last := s.LastTerminationState.Terminated
		if s.State.Running == nil || last == nil || s.RestartCount <= seen {
			return false, summary(p)
		}
		seen = s.RestartCount
		delay := s.State.Running.StartedAt.Sub(last.FinishedAt.Time)
		t.Logf("restart %d after %s", s.RestartCount, delay)
		if delay > capDelay+5*time.Second {
			t.Errorf("restart %d waited %s, over the %s cap", s.RestartCount, delay, capDelay)
		}
		if delay >= capDelay-time.Second {
			delays = append(delays, delay)
		}
		return len(delays) >= 2, summary(p)
	})
	d.removeAndCheck("back-off-cap")
}
