package e2e

// Ports of test/e2e/common/node/lifecycle_hook.go. As upstream, a handler pod (netexec) logs
// the requests the hooks make, and the pod with the hook has a sidecar (netexec, with a
// startup probe) that forwards its HTTP hooks to the handler. The exec hooks use busybox's
// wget where the upstream image has curl.

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func lifecycleHookScenarios() []scenario {
	type hook struct {
		name, short string
		exec        bool   // an exec hook (in the agnhost image); else httpGet (in the pause image)
		when        string // postStart or preStop
		scheme      string // HTTP or HTTPS for httpGet
	}
	hooks := []hook{
		{"should execute poststart exec hook properly", "poststart-exec", true, "postStart", "HTTP"},
		{"should execute prestop exec hook properly", "prestop-exec", true, "preStop", "HTTP"},
		{"should execute poststart http hook properly", "poststart-http", false, "postStart", "HTTP"},
		{"should execute poststart https hook properly", "poststart-https", false, "postStart", "HTTPS"},
		{"should execute prestop http hook properly", "prestop-http", false, "preStop", "HTTP"},
		{"should execute prestop https hook properly", "prestop-https", false, "preStop", "HTTPS"},
	}
	var out []scenario
	for _, h := range hooks {
		for _, sidecar := range []bool{false, true} {
			g, suffix := "lifecycle_hook", ""
			if sidecar {
				g, suffix = "lifecycle_hook_restartable_init", "-sc"
			}
			out = append(out, scenario{g, h.name, func(c *conf) {
				handler := "pod-handle-http-request-" + h.short + suffix
				c.apply(handler, manifest(handler, "  containers:\n"+ctr("name: container-handle-http-request", "image: "+agnhostImage, cmd("args", "netexec"))))
				targetIP := c.waitRunning(handler).Status.PodIP
				msg := strings.ToLower(h.when)
				var action, image string
				if h.exec {
					image = agnhostImage
					action = fmt.Sprintf(`{exec: {command: ["sh", "-c", "wget -qO- http://%s:8080/echo?msg=%s"]}}`, targetIP, msg)
				} else {
					image = pauseImage
					path := fmt.Sprintf("/dial?host=%s&port=8080&request=%s", targetIP, url.QueryEscape("echo?msg="+msg))
					action = fmt.Sprintf(`{httpGet: {scheme: %s, path: %q, port: 8080}}`, h.scheme, path)
				}
				name := "pod-with-" + h.short + "-hook" + suffix
				redirectArgs := []string{"netexec", "--udp-port", "-1"}
				if h.scheme == "HTTPS" {
					redirectArgs = append(redirectArgs, "--tls-cert-file", "/localhost.crt", "--tls-private-key-file", "/localhost.key")
				}
				redirect := ctr("name: container-redirect", "image: "+agnhostImage, cmd("args", redirectArgs...), "restartPolicy: Always",
					fmt.Sprintf("startupProbe: {httpGet: {scheme: %s, path: \"/echo?msg=startup\", port: 8080}}", h.scheme))
				hooked := []string{"name: " + name, "image: " + image, fmt.Sprintf("lifecycle: {%s: %s}", h.when, action)}
				spec := "  terminationGracePeriodSeconds: 15\n  initContainers:\n" + redirect
				if sidecar {
					spec += ctr(append(hooked, "restartPolicy: Always")...) + "  containers:\n" + ctr("name: main", "image: "+pauseImage)
				} else {
					spec += "  containers:\n" + ctr(hooked...)
				}
				c.apply(name, manifest(name, spec))
				c.waitRunning(name)
				want := "GET /echo?msg=" + msg
				if h.when == "postStart" {
					c.until(2*time.Minute, "the poststart request at the handler", func() (bool, string) {
						out := c.logs(handler, "container-handle-http-request")
						return strings.Contains(out, want), out
					})
				}
				// Deleted with a 15 s grace period, as upstream's DeleteOptions(15).
				c.remove(name)
				c.waitGone(name, 5*time.Minute)
				if h.when == "preStop" {
					c.until(30*time.Second, "the prestop request at the handler", func() (bool, string) {
						out := c.logs(handler, "container-handle-http-request")
						return strings.Contains(out, want), out
					})
				}
			}})
		}
	}
	const g = "lifecycle_hook_sleep"
	return append(out,
		scenario{g, "valid prestop hook using sleep action", func(c *conf) {
			// Upstream reads the container's finishedAt after the deletion (a finalizer keeps the
			// pod object); a removed static pod is gone once its containers are, so the time from
			// the file's removal to the pod's going stands for it: at least the 50 s sleep, at
			// most the 100 s grace period.
			name := "pod-with-prestop-sleep-hook"
			c.apply(name, manifest(name, "  terminationGracePeriodSeconds: 100\n  containers:\n"+
				ctr("name: "+name, "image: "+pauseImage, "lifecycle: {preStop: {sleep: {seconds: 50}}}")))
			c.waitRunning(name)
			start := time.Now()
			c.remove(name)
			c.waitGone(name, 3*time.Minute)
			if d := time.Since(start); d < 50*time.Second || d > 100*time.Second {
				c.t.Errorf("pod went %v after its removal, want between the 50 s sleep and the 100 s grace period", d)
			}
		}},
		scenario{g, "ignore terminated container", func(c *conf) {
			name := "pod-with-prestop-sleep-hook-ignored"
			c.apply(name, manifest(name, "  terminationGracePeriodSeconds: 30\n  restartPolicy: Never\n  containers:\n"+
				ctr("name: "+name, "image: "+busyboxImage, cmd("command", "/bin/sh"), cmd("args", "-c", "sleep 3"), "lifecycle: {preStop: {sleep: {seconds: 10}}}")))
			p := c.waitPod(name, podStartTimeout, "container terminated", func(p *corev1.Pod) (bool, string) {
				cs := containerStatus(p, name)
				return cs != nil && cs.State.Terminated != nil, summary(p)
			})
			term := containerStatus(p, name).State.Terminated
			if cost := term.FinishedAt.Sub(term.StartedAt.Time); cost < 0 || cost > 10*time.Second {
				c.t.Errorf("unexpected delay duration before killing the pod, cost = %v", cost)
			}
		}},
		scenario{"lifecycle_sleep_zero", "prestop hook using sleep action with zero duration", func(c *conf) {
			name := "pod-with-prestop-sleep-hook-zero-duration"
			c.apply(name, manifest(name, "  containers:\n"+ctr("name: "+name, "image: "+pauseImage, "lifecycle: {preStop: {sleep: {seconds: 0}}}")))
			c.waitRunning(name)
			start := time.Now()
			c.remove(name)
			c.waitGone(name, time.Minute)
			if d := time.Since(start); d > 30*time.Second {
				c.t.Errorf("unexpected delay duration before killing the pod, cost = %v", d)
			}
		}},
	)
}
