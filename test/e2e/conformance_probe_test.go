package e2e

// Ports of test/e2e/common/node/container_probe.go: "Probing container" (the probed container
// is an app container) and "Probing restartable init container" (the same scenarios with the
// probed container a sidecar: an init container with restartPolicy Always, beside a main
// container running agnhost pause).
//
// Where an upstream scenario watches that nothing restarts for defaultObservationTimeout (4
// minutes), the port watches for a minute: every probe it runs starts 15 s after the container
// at most, with a 10 s period, so a minute covers several probes past their initial delay.

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// noRestartWindow replaces defaultObservationTimeout for the scenarios that expect no restart;
// restartTimeout is defaultObservationTimeout, for those that expect restarts.
const (
	noRestartWindow = time.Minute
	restartTimeout  = 4 * time.Minute
)

// probePod is a pod whose probed container has the given fields (the first is its name): an
// app container, or with sidecar a restartable init container beside agnhost pause.
func probePod(name string, sidecar bool, podFields string, fields ...string) string {
	if !sidecar {
		return manifest(name, podFields+"  containers:\n"+ctr(fields...))
	}
	return manifest(name, podFields+"  initContainers:\n"+ctr(append(fields, "restartPolicy: Always")...)+
		"  containers:\n"+ctr("name: main", "image: "+agnhostImage, cmd("args", "pause")))
}

// probed is the probed container's name in the pod specs of container_probe.go.
type probed struct{ main, sidecar string }

func (p probed) name(sidecar bool) string {
	if sidecar {
		return p.sidecar
	}
	return p.main
}

var (
	webserver = probed{"test-webserver", "test-webserver"}
	busybox   = probed{"busybox", "busybox"}
	livenessC = probed{"agnhost-container", "sidecar"}
	startupC  = probed{"busybox", "sidecar"}
	grpcC     = probed{"agnhost", "agnhost"}
)

// webserverPod is testWebServerPodSpec (port 80) with the given probe fields.
func webserverPod(name string, sidecar bool, probes ...string) string {
	args := cmd("args", "test-webserver")
	if sidecar {
		args = cmd("args", "test-webserver", "--port", "80")
	}
	return probePod(name, sidecar, "", append([]string{"name: test-webserver", "image: " + agnhostImage, args, "ports: [{containerPort: 80}]"}, probes...)...)
}

// busyboxPod is busyBoxPodSpec or startupPodSpec: busybox running command with the probes.
func busyboxPod(name string, sidecar bool, c probed, podFields string, command string, probes ...string) string {
	return probePod(name, sidecar, podFields, append([]string{"name: " + c.name(sidecar), "image: " + busyboxImage, cmd("command", "/bin/sh", "-c", command)}, probes...)...)
}

// livenessPod is livenessPodSpec: agnhost liveness, whose /healthz fails 10 s after start.
func livenessPod(name string, sidecar bool, probes ...string) string {
	return probePod(name, sidecar, "", append([]string{"name: " + livenessC.name(sidecar), "image: " + agnhostImage, cmd("args", "liveness")}, probes...)...)
}

// grpcPod is gRPCServerPodSpec: agnhost grpc-health-checking on port 5000.
func grpcPod(name string, sidecar bool, probes ...string) string {
	return probePod(name, sidecar, "", append([]string{"name: agnhost", "image: " + agnhostImage, cmd("command", "/agnhost", "grpc-health-checking"),
		"ports: [{containerPort: 5000}, {containerPort: 8080}]"}, probes...)...)
}

// restartCounts is getRestartCount: the restarts of all containers of the pod.
func restartCounts(p *corev1.Pod) int {
	n := 0
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, s := range list {
			n += int(s.RestartCount)
		}
	}
	return n
}

// liveness is runLivenessTest: once the container has started, its restart count must reach
// want within timeout (want > 0), or stay where it was for all of timeout (want 0); it must
// never go down.
func (c *conf) liveness(name, container string, want int32, timeout time.Duration) {
	c.t.Helper()
	p := c.waitPod(name, podStartTimeout, "container started", func(p *corev1.Pod) (bool, string) {
		cs := containerStatus(p, container)
		return cs != nil && (cs.State.Running != nil || cs.State.Terminated != nil), summary(p)
	})
	initial := containerStatus(p, container).RestartCount
	deadline := time.Now().Add(timeout + time.Duration(initial)*10*time.Second)
	last, observed := initial, int32(0)
	start := time.Now()
	for time.Now().Before(deadline) {
		if p := c.pod(name); p != nil {
			if cs := containerStatus(p, container); cs != nil {
				if cs.RestartCount < last {
					c.t.Fatalf("restart count should increment monotonically: from %d to %d", last, cs.RestartCount)
				}
				if cs.RestartCount != last {
					c.t.Logf("restart count is now %d (%s elapsed)", cs.RestartCount, time.Since(start).Round(time.Second))
				}
				last = cs.RestartCount
				observed = last - initial
				if want > 0 && observed >= want {
					return
				}
			}
		}
		time.Sleep(time.Second)
	}
	if (want == 0 && observed > 0) || (want > 0 && observed < want) {
		st := ""
		if p := c.pod(name); p != nil {
			st = summary(p)
		}
		var evs []string
		for _, e := range c.events(name) {
			evs = append(evs, fmt.Sprintf("%s %s x%d %s", e.FirstTimestamp.Format("15:04:05"), e.Reason, e.Count, e.Message))
		}
		c.t.Fatalf("expected number of restarts: %d, found restarts: %d. Pod status: %s\nevents:\n%s", want, observed, st, strings.Join(evs, "\n"))
	}
}

// neverReady checks that the pod is not ready at any poll for d.
func (c *conf) neverReady(name string, d time.Duration) {
	c.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) {
		if p := c.pod(name); p != nil && podReady(p) {
			c.t.Fatalf("pod should not be ready: %s", summary(p))
		}
	}
}

func probeScenarios() []scenario {
	type probeCase struct {
		name  string
		short string
		run   func(c *conf, pod string, sidecar bool)
	}
	cases := []probeCase{
		{"with readiness probe should not be ready before initial delay and never restart", "ready-delay", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, webserverPod(pod, sidecar, "readinessProbe: {httpGet: {path: /, port: 80}, initialDelaySeconds: 15}"))
			p := c.waitPod(pod, podStartTimeout, "running and ready", func(p *corev1.Pod) (bool, string) {
				return p.Status.Phase == corev1.PodRunning && podReady(p), summary(p)
			})
			ready := condition(p, corev1.PodReady).LastTransitionTime.Time
			cs := containerStatus(p, webserver.name(sidecar))
			if cs.State.Running == nil {
				c.t.Fatalf("container is not running: %s", summary(p))
			}
			started := cs.State.Running.StartedAt.Time
			c.t.Logf("container started at %v, pod became ready at %v", started, ready)
			if ready.Sub(started) < 15*time.Second {
				c.t.Errorf("pod became ready %v after the container started, before its 15s initial delay", ready.Sub(started))
			}
			if n := restartCounts(p); n != 0 {
				c.t.Errorf("restart count %d, want 0", n)
			}
		}},
		{"with readiness probe that fails should never be ready and never restart", "ready-fail", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, webserverPod(pod, sidecar, "readinessProbe: {httpGet: {path: /, port: 81}}"))
			c.waitPod(pod, podStartTimeout, "listed", func(p *corev1.Pod) (bool, string) { return true, "" })
			c.neverReady(pod, time.Minute)
			p := c.pod(pod)
			if p.Status.Phase == corev1.PodRunning && podReady(p) {
				c.t.Errorf("pod should be not ready: %s", summary(p))
			}
			if n := restartCounts(p); n != 0 {
				c.t.Errorf("restart count %d, want 0", n)
			}
		}},
		{`should be restarted with a exec "cat /tmp/health" liveness probe`, "exec-restart", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "", "echo ok >/tmp/health; sleep 10; rm -rf /tmp/health; sleep 600",
				`livenessProbe: {exec: {command: ["cat", "/tmp/health"]}, initialDelaySeconds: 15, timeoutSeconds: 5, failureThreshold: 1}`))
			c.liveness(pod, busybox.name(sidecar), 1, restartTimeout)
		}},
		{`should *not* be restarted with a exec "cat /tmp/health" liveness probe`, "exec-norestart", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "", "echo ok >/tmp/health; sleep 600",
				`livenessProbe: {exec: {command: ["cat", "/tmp/health"]}, initialDelaySeconds: 15, timeoutSeconds: 5, failureThreshold: 1}`))
			c.liveness(pod, busybox.name(sidecar), 0, noRestartWindow)
		}},
		{"should be restarted with a /healthz http liveness probe", "healthz-restart", func(c *conf, pod string, sidecar bool) {
			probe := "livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 15, failureThreshold: 1}"
			if sidecar {
				probe = "livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 15, timeoutSeconds: 5, failureThreshold: 1}"
			}
			c.apply(pod, livenessPod(pod, sidecar, probe))
			c.liveness(pod, livenessC.name(sidecar), 1, restartTimeout)
		}},
		{"should *not* be restarted with a tcp:8080 liveness probe", "tcp-norestart", func(c *conf, pod string, sidecar bool) {
			probe := "livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 15, failureThreshold: 1}"
			if sidecar {
				probe = "livenessProbe: {tcpSocket: {port: 8080}, initialDelaySeconds: 15, timeoutSeconds: 5, failureThreshold: 1}"
			}
			c.apply(pod, livenessPod(pod, sidecar, probe))
			c.liveness(pod, livenessC.name(sidecar), 0, noRestartWindow)
		}},
		{"should have monotonically increasing restart count", "monotonic", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, livenessPod(pod, sidecar, "livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 5, failureThreshold: 1}"))
			c.liveness(pod, livenessC.name(sidecar), 5, 2*time.Minute+4*time.Minute+4*2*time.Minute)
		}},
		{"should *not* be restarted with a /healthz http liveness probe", "healthz-norestart", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, webserverPod(pod, sidecar, "livenessProbe: {httpGet: {path: /, port: 80}, initialDelaySeconds: 15, timeoutSeconds: 5, failureThreshold: 5}"))
			c.liveness(pod, webserver.name(sidecar), 0, noRestartWindow)
		}},
		{"should be restarted with an exec liveness probe with timeout", "exec-timeout", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "", "sleep 600",
				`livenessProbe: {exec: {command: ["/bin/sh", "-c", "sleep 10"]}, initialDelaySeconds: 15, timeoutSeconds: 1, failureThreshold: 1}`))
			c.liveness(pod, busybox.name(sidecar), 1, restartTimeout)
		}},
		{"should not be ready with an exec readiness probe timeout", "exec-ready-timeout", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "", "sleep 600",
				`readinessProbe: {exec: {command: ["/bin/sh", "-c", "sleep 10"]}, initialDelaySeconds: 15, timeoutSeconds: 1, failureThreshold: 1}`))
			if !sidecar {
				c.waitPod(pod, podStartTimeout, "not pending", func(p *corev1.Pod) (bool, string) { return p.Status.Phase != corev1.PodPending, summary(p) })
			}
			c.neverReady(pod, time.Minute)
		}},
		{"should be restarted with a failing exec liveness probe that took longer than the timeout", "exec-fail-long", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "", "sleep 600",
				`livenessProbe: {exec: {command: ["/bin/sh", "-c", "sleep 10 & exit 1"]}, initialDelaySeconds: 15, timeoutSeconds: 1, failureThreshold: 1}`))
			c.liveness(pod, busybox.name(sidecar), 1, restartTimeout)
		}},
		{"should be restarted with a local redirect http liveness probe", "redirect-local", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, livenessPod(pod, sidecar, "livenessProbe: {httpGet: {path: \"/redirect?loc=%2Fhealthz\", port: 8080}, initialDelaySeconds: 15, failureThreshold: 1}"))
			c.liveness(pod, livenessC.name(sidecar), 1, restartTimeout)
		}},
		{"should *not* be restarted with a non-local redirect http liveness probe", "redirect-nonlocal", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, livenessPod(pod, sidecar, "livenessProbe: {httpGet: {path: \"/redirect?loc=http%3A%2F%2F0.0.0.0%2F\", port: 8080}, initialDelaySeconds: 15, failureThreshold: 1}"))
			// The event is looked for while the restarts are watched: the daemon keeps a bounded
			// ring of events for all pods.
			want := `Probe terminated redirects, Response body: <a href="http://0.0.0.0/">Found</a>.`
			warned := make(chan bool, 1)
			go func() {
				for end := time.Now().Add(noRestartWindow + 30*time.Second); time.Now().Before(end); time.Sleep(2 * time.Second) {
					for _, e := range c.events(pod) {
						if e.Reason == "ProbeWarning" && strings.Contains(e.Message, want) {
							warned <- true
							return
						}
					}
				}
				warned <- false
			}()
			c.liveness(pod, livenessC.name(sidecar), 0, noRestartWindow)
			if !<-warned {
				c.t.Errorf("no ProbeWarning event %q", want)
			}
		}},
		{"should be restarted startup probe fails", "startup-restart", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, startupC, "", "sleep 600",
				`livenessProbe: {exec: {command: ["/bin/true"]}, initialDelaySeconds: 15, failureThreshold: 1}`,
				`startupProbe: {exec: {command: ["/bin/false"]}, initialDelaySeconds: 15, failureThreshold: 3}`))
			c.liveness(pod, startupC.name(sidecar), 1, restartTimeout)
		}},
		{"should *not* be restarted by liveness probe because startup probe delays it", "startup-delays", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, startupC, "", "sleep 600",
				`livenessProbe: {exec: {command: ["/bin/false"]}, initialDelaySeconds: 15, failureThreshold: 1}`,
				`startupProbe: {exec: {command: ["/bin/false"]}, initialDelaySeconds: 15, failureThreshold: 60}`))
			c.liveness(pod, startupC.name(sidecar), 0, noRestartWindow)
		}},
		{"should be restarted by liveness probe after startup probe enables it", "startup-enables", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, startupC, "", "sleep 10; echo ok >/tmp/startup; sleep 600",
				`livenessProbe: {exec: {command: ["/bin/false"]}, initialDelaySeconds: 15, failureThreshold: 1}`,
				`startupProbe: {exec: {command: ["cat", "/tmp/startup"]}, initialDelaySeconds: 15, failureThreshold: 60}`))
			c.liveness(pod, startupC.name(sidecar), 1, restartTimeout)
		}},
		{"should be ready immediately after startupProbe succeeds", "startup-ready", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, startupC, "", "echo ok >/tmp/health; sleep 32; echo ok >/tmp/startup; sleep 600",
				`readinessProbe: {exec: {command: ["/bin/cat", "/tmp/health"]}, initialDelaySeconds: 0, periodSeconds: 30}`,
				`startupProbe: {exec: {command: ["/bin/cat", "/tmp/startup"]}, initialDelaySeconds: 0, failureThreshold: 120, periodSeconds: 5}`))
			// WaitForPodContainerStarted: the first app container's started flag.
			c.waitPod(pod, podStartTimeout, "containerStatuses[0] started", func(p *corev1.Pod) (bool, string) {
				if len(p.Status.ContainerStatuses) == 0 {
					return false, summary(p)
				}
				s := p.Status.ContainerStatuses[0].Started
				return s != nil && *s, summary(p)
			})
			started := time.Now()
			p := c.waitPod(pod, podStartTimeout, "ready", func(p *corev1.Pod) (bool, string) { return podReady(p), summary(p) })
			readyIn := time.Since(started)
			if p.Status.Phase != corev1.PodRunning {
				c.t.Errorf("pod should be running: %s", summary(p))
			}
			c.t.Logf("pod became ready %v after startupProbe succeeded", readyIn)
			if readyIn > 25*time.Second {
				c.t.Errorf("pod became ready in %v, more than 25s after startupProbe succeeded", readyIn)
			}
		}},
		{"should override timeoutGracePeriodSeconds when LivenessProbe field is set", "tgps-liveness", func(c *conf, pod string, sidecar bool) {
			// 10s delay + 10s period + 5s grace period = 25s, far from the pod's 500s.
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "  terminationGracePeriodSeconds: 500\n", "sleep 1000",
				"livenessProbe: {httpGet: {path: /healthz, port: 8080}, initialDelaySeconds: 10, failureThreshold: 1, terminationGracePeriodSeconds: 5}"))
			c.liveness(pod, busybox.name(sidecar), 1, 90*time.Second)
		}},
		{"should override timeoutGracePeriodSeconds when StartupProbe field is set", "tgps-startup", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, busyboxPod(pod, sidecar, busybox, "  terminationGracePeriodSeconds: 500\n", "sleep 1000",
				`livenessProbe: {exec: {command: ["/bin/true"]}, initialDelaySeconds: 15, failureThreshold: 1}`,
				`startupProbe: {exec: {command: ["/bin/cat", "/tmp/startup"]}, initialDelaySeconds: 10, failureThreshold: 1, terminationGracePeriodSeconds: 5}`))
			c.liveness(pod, busybox.name(sidecar), 1, 90*time.Second)
		}},
		{"should *not* be restarted with a GRPC liveness probe", "grpc-norestart", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, grpcPod(pod, sidecar, "livenessProbe: {grpc: {port: 5000}, initialDelaySeconds: 15, timeoutSeconds: 5, failureThreshold: 1}"))
			c.liveness(pod, grpcC.name(sidecar), 0, noRestartWindow)
		}},
		{"should be restarted with a GRPC liveness probe", "grpc-restart", func(c *conf, pod string, sidecar bool) {
			c.apply(pod, grpcPod(pod, sidecar, "livenessProbe: {grpc: {port: 2333}, initialDelaySeconds: 60, timeoutSeconds: 5, failureThreshold: 1}"))
			c.liveness(pod, grpcC.name(sidecar), 1, restartTimeout)
		}},
		{"should mark readiness on pods to false while pod is in progress of terminating when a pod has a readiness probe", "terminating-ready", func(c *conf, pod string, sidecar bool) {
			script := "\n_term() {\n\trm -f /tmp/ready\n\tsleep 30\n\texit 0\n}\ntrap _term SIGTERM\n\ntouch /tmp/ready\n\nwhile true; do\n  echo \\\"hello\\\"\n  sleep 10\ndone\n\t\t\t"
			c.apply(pod, probePod(pod, sidecar, "  terminationGracePeriodSeconds: 30\n", "name: "+pod, "image: "+agnhostImage, cmd("command", "/bin/sh"), cmd("args", "-c", script),
				`readinessProbe: {exec: {command: ["cat", "/tmp/ready"]}, failureThreshold: 1, initialDelaySeconds: 5, periodSeconds: 2}`))
			terminatingNotReady(c, pod)
		}},
		{"should mark readiness on pods to false and disable liveness probes while pod is in progress of terminating", "terminating-liveness", func(c *conf, pod string, sidecar bool) {
			script := "\n_term() {\n\trm -f /tmp/ready\n\trm -f /tmp/liveness\n\tsleep 20\n\texit 0\n}\ntrap _term SIGTERM\n\ntouch /tmp/ready\ntouch /tmp/liveness\n\nwhile true; do\n  echo \\\"hello\\\"\n  sleep 10\ndone\n"
			c.apply(pod, probePod(pod, sidecar, "  terminationGracePeriodSeconds: 30\n", "name: "+pod, "image: "+agnhostImage, cmd("command", "/bin/sh"), cmd("args", "-c", script),
				`readinessProbe: {exec: {command: ["cat", "/tmp/ready"]}, failureThreshold: 1, initialDelaySeconds: 5, periodSeconds: 2}`,
				`livenessProbe: {exec: {command: ["cat", "/tmp/liveness"]}, failureThreshold: 1, initialDelaySeconds: 5, periodSeconds: 1}`))
			terminatingNotReady(c, pod)
			// No liveness failure while the pod terminates, for a minute.
			for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(2 * time.Second) {
				for _, e := range c.events(pod) {
					if strings.Contains(e.Message, "failed liveness probe") {
						c.t.Fatalf("should not see liveness probe failures: %s: %s", e.Reason, e.Message)
					}
				}
			}
		}},
	}
	var out []scenario
	for _, pc := range cases {
		for _, sidecar := range []bool{false, true} {
			g, pod := "container_probe", "probe-"+pc.short
			if sidecar {
				g, pod = "container_probe_sidecar", "probe-sc-"+pc.short
			}
			out = append(out, scenario{g, pc.name, func(c *conf) { pc.run(c, pod, sidecar) }})
		}
	}
	return out
}

// terminatingNotReady: the pod runs and is ready; once its file is removed, it is seen not
// ready while it terminates.
func terminatingNotReady(c *conf, pod string) {
	c.t.Helper()
	c.waitPod(pod, podStartTimeout, "running and ready", func(p *corev1.Pod) (bool, string) {
		return p.Status.Phase == corev1.PodRunning && podReady(p), summary(p)
	})
	c.remove(pod)
	c.waitPod(pod, 2*time.Minute, "not ready while terminating", func(p *corev1.Pod) (bool, string) {
		return !podReady(p), fmt.Sprintf("still ready: %s", summary(p))
	})
}
