package e2e

// Ports of test/e2e/common/node: runtime.go, security_context.go, init_container.go,
// expansion.go, downwardapi.go, containers.go, kubelet.go, kubelet_etc_hosts.go, pods.go,
// privileged.go, sysctl.go, configmap.go, secrets.go, container_restart_backoff.go.
// Probes are in conformance_probe_test.go, lifecycle hooks in conformance_hooks_test.go.

import (
	"fmt"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/api"
)

func runtimeScenarios() []scenario {
	const g = "runtime"
	termMsg := func(c *conf, name string, fields []string, phase corev1.PodPhase, want string) {
		c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr(append([]string{"name: termination-message-container", "image: " + busyboxImage}, fields...)...)))
		p := c.waitPhase(name, phase, podStartTimeout)
		cs := containerStatus(p, "termination-message-container")
		if cs == nil || cs.State.Terminated == nil {
			c.t.Fatalf("container not terminated: %s", summary(p))
		}
		if got := cs.State.Terminated.Message; got != want {
			c.t.Errorf("termination message = %q, want %q", got, want)
		}
		c.remove(name)
		c.waitGone(name, time.Minute)
	}
	// ImagePullTest: the container's state (Running, or waiting for a pull error) and the
	// pod's phase.
	pull := func(c *conf, name, image string, phase corev1.PodPhase, pullError bool) {
		c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: image-pull-test", "image: "+image, "imagePullPolicy: Always")))
		c.waitPod(name, podStartTimeout, "container state and phase", func(p *corev1.Pod) (bool, string) {
			cs := containerStatus(p, "image-pull-test")
			if cs == nil {
				return false, summary(p)
			}
			if !pullError && cs.State.Running == nil {
				return false, summary(p)
			}
			if pullError {
				w := cs.State.Waiting
				if w == nil || (w.Reason != "ErrImagePull" && w.Reason != "ImagePullBackOff" && w.Reason != "ErrImageNeverPull") {
					return false, summary(p)
				}
			}
			return p.Status.Phase == phase, summary(p)
		})
	}
	return []scenario{
		{g, "should run with the expected status", func(c *conf) {
			script := `f=/restart-count/restartCount
count=$(echo 'hello' >> $f ; wc -l $f | awk {'print $1'})
if [ $count -eq 1 ]; then
	exit 1
fi
if [ $count -eq 2 ]; then
	exit 0
fi
while true; do sleep 1; done
`
			cases := []struct {
				name, policy string
				phase        corev1.PodPhase
				state        string
				restarts     int32
				ready        bool
			}{
				{"terminate-cmd-rpa", "Always", corev1.PodRunning, "Running", 2, true},
				{"terminate-cmd-rpof", "OnFailure", corev1.PodSucceeded, "Terminated", 1, false},
				{"terminate-cmd-rpn", "Never", corev1.PodFailed, "Terminated", 0, false},
			}
			for _, tc := range cases {
				c.apply(tc.name, manifest(tc.name, "  restartPolicy: "+tc.policy+"\n"+
					"  volumes: [{name: restart-count, emptyDir: {medium: Memory}}]\n  containers:\n"+
					ctr("name: "+tc.name, "image: "+busyboxImage, cmd("command", "sh", "-c", script),
						"volumeMounts: [{name: restart-count, mountPath: /restart-count}]")))
			}
			for _, tc := range cases {
				c.waitPod(tc.name, 5*time.Minute, fmt.Sprintf("restartCount %d", tc.restarts), func(p *corev1.Pod) (bool, string) {
					cs := containerStatus(p, tc.name)
					return cs != nil && cs.RestartCount == tc.restarts, summary(p)
				})
				c.waitPhase(tc.name, tc.phase, 5*time.Minute)
				p := c.waitPod(tc.name, 5*time.Minute, fmt.Sprintf("ready %v", tc.ready), func(p *corev1.Pod) (bool, string) {
					cs := containerStatus(p, tc.name)
					return cs != nil && cs.Ready == tc.ready, summary(p)
				})
				if got := stateName(containerStatus(p, tc.name).State); got != tc.state {
					c.t.Errorf("%s: state %s, want %s", tc.name, got, tc.state)
				}
				c.remove(tc.name)
				c.waitGone(tc.name, 5*time.Minute)
			}
		}},
		{g, "should report termination message if TerminationMessagePath is set", func(c *conf) {
			termMsg(c, "termmsg-path", []string{cmd("command", "/bin/sh", "-c"), cmd("args", "/bin/echo -n DONE > /dev/termination-log"),
				"terminationMessagePath: /dev/termination-log", "securityContext: {runAsUser: 0}"}, corev1.PodSucceeded, "DONE")
		}},
		{g, "should report termination message if TerminationMessagePath is set as non-root user and at a non-default path", func(c *conf) {
			termMsg(c, "termmsg-nonroot", []string{cmd("command", "/bin/sh", "-c"), cmd("args", "/bin/echo -n DONE > /dev/termination-custom-log"),
				"terminationMessagePath: /dev/termination-custom-log", "securityContext: {runAsUser: 10000}"}, corev1.PodSucceeded, "DONE")
		}},
		{g, "should report termination message from log output if TerminationMessagePolicy FallbackToLogsOnError is set", func(c *conf) {
			termMsg(c, "termmsg-fallback", []string{cmd("command", "/bin/sh", "-c"), cmd("args", "/bin/echo -n DONE; /bin/false"),
				"terminationMessagePath: /dev/termination-log", "terminationMessagePolicy: FallbackToLogsOnError"}, corev1.PodFailed, "DONE")
		}},
		{g, "should report termination message as empty when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set", func(c *conf) {
			termMsg(c, "termmsg-empty", []string{cmd("command", "/bin/sh", "-c"), cmd("args", "/bin/echo -n DONE; /bin/true"),
				"terminationMessagePath: /dev/termination-log", "terminationMessagePolicy: FallbackToLogsOnError"}, corev1.PodSucceeded, "")
		}},
		{g, "should report termination message from file when pod succeeds and TerminationMessagePolicy FallbackToLogsOnError is set", func(c *conf) {
			termMsg(c, "termmsg-file", []string{cmd("command", "/bin/sh", "-c"), cmd("args", "/bin/echo -n OK > /dev/termination-log; /bin/echo DONE; /bin/true"),
				"terminationMessagePath: /dev/termination-log", "terminationMessagePolicy: FallbackToLogsOnError"}, corev1.PodSucceeded, "OK")
		}},
		{g, "should not be able to pull image from invalid registry", func(c *conf) {
			pull(c, "pull-invalid", c.regs.unused+"/invalid/alpine:3.1", corev1.PodPending, true)
		}},
		{g, "should be able to pull image", func(c *conf) {
			pull(c, "pull-open", c.regs.open.addr+"/e2e-test-images/agnhost:conformance", corev1.PodRunning, false)
		}},
		{g, "should not be able to pull from private registry without secret", func(c *conf) {
			pull(c, "pull-private-nocred", c.regs.withoutAuth.addr+"/pause:testing", corev1.PodPending, true)
		}},
		{g, "should be able to pull from private registry with secret", func(c *conf) {
			// The node's credentials (--auth-file) stand in for the pod's imagePullSecrets.
			pull(c, "pull-private-cred", c.regs.withAuth.addr+"/pause:testing", corev1.PodRunning, false)
		}},
	}
}

func securityContextScenarios() []scenario {
	const g = "security_context"
	// One pod, one container named after the pod, restartPolicy Never.
	one := func(c *conf, name, image string, fields ...string) {
		c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr(append([]string{"name: " + name, "image: " + image}, fields...)...)))
	}
	userPod := func(c *conf, uid int64) {
		name := fmt.Sprintf("busybox-user-%d", uid)
		one(c, name, busyboxImage, cmd("command", "sh", "-c", fmt.Sprintf("test $(id -u) -eq %d", uid)), fmt.Sprintf("securityContext: {runAsUser: %d}", uid))
		c.waitSucceeded(name)
	}
	// WaitForErrorEventOrSuccess, expecting the error event: the kubelet's "Failed" event when
	// it cannot create the container.
	errorEvent := func(c *conf, name string) {
		c.until(podStartTimeout, name+": a warning event", func() (bool, string) {
			if p := c.pod(name); p != nil && p.Status.Phase == corev1.PodSucceeded {
				c.t.Fatalf("pod succeeded: %s", summary(p))
			}
			for _, e := range c.events(name) {
				if e.Type == corev1.EventTypeWarning {
					if e.Reason != "Failed" {
						c.t.Errorf("event reason %q (%s), want Failed", e.Reason, e.Message)
					}
					return true, ""
				}
			}
			return false, "no warning event yet"
		})
	}
	nonRoot := func(c *conf, name, image, user string) {
		fields := []string{cmd("command", "id", "-u"), "securityContext: {runAsNonRoot: true" + user + "}"}
		one(c, name, image, fields...)
	}
	readOnly := func(c *conf, ro bool) {
		name := fmt.Sprintf("busybox-readonly-%v", ro)
		one(c, name, busyboxImage, cmd("command", "sh", "-c", "touch checkfile"), fmt.Sprintf("securityContext: {readOnlyRootFilesystem: %v}", ro))
		if !ro {
			c.waitSucceeded(name)
			return
		}
		p := c.waitPod(name, podStartTimeout, "phase Failed", func(p *corev1.Pod) (bool, string) {
			return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded, summary(p)
		})
		if p.Status.Phase != corev1.PodFailed {
			c.t.Errorf("pod %s: %s, want Failed", name, summary(p))
		}
	}
	privileged := func(c *conf, priv bool) string {
		name := fmt.Sprintf("busybox-privileged-%v", priv)
		one(c, name, busyboxImage, cmd("command", "sh", "-c", "ip link add dummy0 type dummy || true"), fmt.Sprintf("securityContext: {privileged: %v}", priv))
		c.waitSucceeded(name)
		return c.logs(name, name)
	}
	escalation := func(c *conf, name, ape, want string) {
		sc := "securityContext: {runAsUser: 1000" + ape + "}"
		one(c, name, nonewprivsImage, sc)
		c.waitSucceeded(name)
		if out := c.logs(name, name); !strings.Contains(out, want) {
			c.t.Errorf("output %q, want %q", out, want)
		}
	}
	// The node supports SupplementalGroupsPolicy (minipod writes the process's groups itself):
	// the container's groups follow the policy, and so does status.containerStatuses[].user.
	groupsPolicy := func(c *conf, name, policy string, want string, wantGroups []int64) {
		pol := ""
		if policy != "" {
			pol = ", supplementalGroupsPolicy: " + policy
		}
		c.apply(name, manifest(name, "  restartPolicy: Never\n  securityContext: {runAsUser: 1000, supplementalGroups: [60000]"+pol+"}\n  containers:\n"+
			ctr("name: test-container", "image: "+agnhostImage, cmd("command", "sh", "-c", "id -G; while :; do sleep 1; done"))))
		c.waitRunning(name)
		c.waitPod(name, time.Minute, "status.containerStatuses[0].user", func(p *corev1.Pod) (bool, string) {
			cs := containerStatus(p, "test-container")
			if cs == nil || cs.User == nil || cs.User.Linux == nil {
				return false, "no user in the container status"
			}
			u := cs.User.Linux
			return u.UID == 1000 && u.GID == 1000 && fmt.Sprint(u.SupplementalGroups) == fmt.Sprint(wantGroups), fmt.Sprintf("%+v", *u)
		})
		c.until(time.Minute, "logs "+want, func() (bool, string) {
			out := c.logs(name, "test-container")
			return out == want+"\n", fmt.Sprintf("%q", out)
		})
		if out, _, _ := c.exec(name, "test-container", "id", "-G"); strings.TrimSpace(out) != want {
			c.t.Errorf("exec id -G = %q, want %q", out, want)
		}
	}
	return []scenario{
		{g, "When creating a pod with HostUsers must not create the user namespace if set to true", func(c *conf) {
			name := "userns-true"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  hostUsers: true\n  containers:\n"+ctr("name: userns-test", "image: "+busyboxImage, cmd("command", "cat", "/proc/self/uid_map"))))
			c.expectOutput(name, "userns-test", "4294967295")
		}},
		{g, "When creating a pod with HostUsers must create the user namespace if set to false", func(c *conf) {
			var logs []string
			for _, name := range []string{"userns-false-1", "userns-false-2"} {
				c.apply(name, manifest(name, "  restartPolicy: Never\n  hostUsers: false\n  containers:\n"+ctr("name: userns-test", "image: "+busyboxImage, cmd("command", "cat", "/proc/self/uid_map"))))
			}
			for _, name := range []string{"userns-false-1", "userns-false-2"} {
				c.waitSucceeded(name)
				logs = append(logs, c.logs(name, "userns-test"))
			}
			// 65536 is the size of a pod's user namespace.
			if !strings.Contains(logs[0], "65536") || !strings.Contains(logs[1], "65536") {
				c.t.Errorf("user namespace not created: %q, %q", logs[0], logs[1])
			}
			if logs[0] == logs[1] {
				c.t.Errorf("two different pods are running with the same user namespace configuration: %q", logs[0])
			}
		}},
		{g, "When creating a pod with HostUsers should mount all volumes with proper permissions with hostUsers=false", func(c *conf) {
			name := "pod-userns-volumes"
			c.writeConfigMap(name, map[string]string{"data-1": "value-1", "data-2": "value-2", "data-3": "value-3"})
			c.writeSecret(name, map[string]string{"data-1": "value-1\n", "data-2": "value-2\n", "data-3": "value-3\n"})
			dapi := "{items: [{path: name, fieldRef: {apiVersion: v1, fieldPath: metadata.name}}]}"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  hostUsers: false\n  volumes: [{name: cfg, configMap: {name: "+name+"}}, {name: secret, secret: {secretName: "+name+"}}, "+
				"{name: downward, downwardAPI: "+dapi+"}, {name: projected, projected: {sources: [{downwardAPI: "+dapi+"}, {secret: {name: "+name+"}}]}}]\n  containers:\n"+
				ctr("name: userns-file-permissions", "image: "+busyboxImage, cmd("command", "sh", "-c", "stat -c='%g' $(find /vol/ -type f)"),
					"volumeMounts: [{name: cfg, mountPath: /vol/cfg/}, {name: secret, mountPath: /vol/secret/}, {name: downward, mountPath: /vol/downward/}, {name: projected, mountPath: /vol/projected/}]")))
			// One line per file: 3 configMap keys, 3 secret keys, 1 downward API file, 3 + 1 projected.
			c.expectOutput(name, "userns-file-permissions", strings.Repeat("=0\n", 11))
		}},
		{g, "When creating a pod with HostUsers should set FSGroup to user inside the container with hostUsers=false", func(c *conf) {
			name := "pod-userns-fsgroup"
			c.writeConfigMap(name, map[string]string{"data-1": "value-1", "data-2": "value-2", "data-3": "value-3"})
			c.apply(name, manifest(name, "  restartPolicy: Never\n  hostUsers: false\n  securityContext: {fsGroup: 200}\n  volumes: [{name: cfg, configMap: {name: "+name+"}}]\n  containers:\n"+
				ctr("name: userns-fsgroup", "image: "+busyboxImage, cmd("command", "sh", "-c", "stat -c='%g' $(find /vol/ -type f)"), "volumeMounts: [{name: cfg, mountPath: /vol/cfg/}]")))
			c.expectOutput(name, "userns-fsgroup", strings.Repeat("=200\n", 3))
		}},
		{g, "When creating a container with runAsUser should run the container with uid 65534", func(c *conf) { userPod(c, 65534) }},
		{g, "When creating a container with runAsUser should run the container with uid 0", func(c *conf) { userPod(c, 0) }},
		{g, "When creating a container with runAsNonRoot should run with an explicit non-root user ID", func(c *conf) {
			nonRoot(c, "explicit-nonroot-uid", busyboxImage, ", runAsUser: 1000")
			c.waitSucceeded("explicit-nonroot-uid")
			if out := c.logs("explicit-nonroot-uid", "explicit-nonroot-uid"); !strings.Contains(out, "1000") {
				c.t.Errorf("output %q, want 1000", out)
			}
		}},
		{g, "When creating a container with runAsNonRoot should not run with an explicit root user ID", func(c *conf) {
			nonRoot(c, "explicit-root-uid", nonRootImage, ", runAsUser: 0")
			errorEvent(c, "explicit-root-uid")
		}},
		{g, "When creating a container with runAsNonRoot should run with an image specified user ID", func(c *conf) {
			nonRoot(c, "implicit-nonroot-uid", nonRootImage, "")
			c.waitSucceeded("implicit-nonroot-uid")
			if out := c.logs("implicit-nonroot-uid", "implicit-nonroot-uid"); !strings.Contains(out, "1234") {
				c.t.Errorf("output %q, want 1234", out)
			}
		}},
		{g, "When creating a container with runAsNonRoot should not run without a specified user ID", func(c *conf) {
			nonRoot(c, "implicit-root-uid", busyboxImage, "")
			errorEvent(c, "implicit-root-uid")
		}},
		{g, "should run the container with readonly rootfs when readOnlyRootFilesystem=true", func(c *conf) { readOnly(c, true) }},
		{g, "should run the container with writable rootfs when readOnlyRootFilesystem=false", func(c *conf) { readOnly(c, false) }},
		{g, "should run the container as unprivileged when false", func(c *conf) {
			if out := privileged(c, false); !strings.Contains(out, "Operation not permitted") {
				c.t.Errorf("unprivileged container could create a dummy device: %q", out)
			}
		}},
		{g, "should run the container as privileged when true", func(c *conf) {
			if out := privileged(c, true); strings.Contains(out, "Operation not permitted") {
				c.t.Errorf("privileged container could not create a dummy device: %q", out)
			}
		}},
		{g, "should allow privilege escalation when not explicitly set and uid != 0", func(c *conf) {
			escalation(c, "alpine-nnp-nil", "", "Effective uid: 0")
		}},
		{g, "should not allow privilege escalation when false", func(c *conf) {
			escalation(c, "alpine-nnp-false", ", allowPrivilegeEscalation: false", "Effective uid: 1000")
		}},
		{g, "should allow privilege escalation when true", func(c *conf) {
			escalation(c, "alpine-nnp-true", ", allowPrivilegeEscalation: true", "Effective uid: 0")
		}},
		{g, "SupplementalGroupsPolicy nil, node supports it, should add SupplementalGroups", func(c *conf) {
			groupsPolicy(c, "sppl-grp-plcy-nil", "", "1000 50000 60000", []int64{1000, 50000, 60000})
		}},
		{g, "SupplementalGroupsPolicy Merge, node supports it, should add SupplementalGroups", func(c *conf) {
			groupsPolicy(c, "sppl-grp-plcy-merge", "Merge", "1000 50000 60000", []int64{1000, 50000, 60000})
		}},
		{g, "SupplementalGroupsPolicy Strict, node supports it, should NOT add SupplementalGroups", func(c *conf) {
			groupsPolicy(c, "sppl-grp-plcy-strict", "Strict", "1000 60000", []int64{1000, 60000})
		}},
	}
}

func initContainerScenarios() []scenario {
	const g = "init_container"
	initPod := func(policy, init1, init2, run string) string {
		p := ""
		if policy != "" {
			p = "  restartPolicy: " + policy + "\n"
		}
		return p + "  initContainers:\n" +
			ctr("name: init1", "image: "+busyboxImage, cmd("command", init1)) +
			ctr("name: init2", "image: "+busyboxImage, cmd("command", init2)) +
			"  containers:\n" + run
	}
	checkInitDone := func(c *conf, p *corev1.Pod) {
		if cond := condition(p, corev1.PodInitialized); cond == nil || cond.Status != corev1.ConditionTrue {
			c.t.Errorf("Initialized condition %+v, want True", cond)
		}
		if len(p.Status.InitContainerStatuses) != 2 {
			c.t.Fatalf("%d init container statuses, want 2", len(p.Status.InitContainerStatuses))
		}
		for _, s := range p.Status.InitContainerStatuses {
			if !s.Ready {
				c.t.Errorf("init container %s should be in Ready status", s.Name)
			}
			if s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
				c.t.Errorf("init container %s: %+v, want terminated with exit code 0", s.Name, s.State)
			}
		}
	}
	// waitingInitializing is the invariant of a pod whose init containers are not done: every
	// app container waits with reason PodInitializing.
	waitingInitializing := func(p *corev1.Pod) string {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
				return fmt.Sprintf("container %q should be waiting with reason PodInitializing: %+v", s.Name, s.State)
			}
		}
		return ""
	}
	return []scenario{
		{g, "should invoke init containers on a RestartNever pod", func(c *conf) {
			name := "pod-init-never"
			c.apply(name, manifest(name, initPod("Never", "/bin/true", "/bin/true", ctr("name: run1", "image: "+busyboxImage, cmd("command", "/bin/true"))), "labels: {name: foo}"))
			checkInitDone(c, c.waitPhase(name, corev1.PodSucceeded, podStartTimeout))
		}},
		{g, "should invoke init containers on a RestartAlways pod", func(c *conf) {
			name := "pod-init-always"
			c.apply(name, manifest(name, initPod("", "/bin/true", "/bin/true", ctr("name: run1", "image: "+pauseImage, "resources: {limits: {cpu: 100m}}")), "labels: {name: foo}"))
			checkInitDone(c, c.waitPhase(name, corev1.PodRunning, podStartTimeout))
		}},
		{g, "should not start app containers if init containers fail on a RestartAlways pod", func(c *conf) {
			name := "pod-init-fail-always"
			c.apply(name, manifest(name, initPod("", "/bin/false", "/bin/true", ctr("name: run1", "image: "+pauseImage, "resources: {limits: {cpu: 100m}}")), "labels: {name: foo}"))
			// Every status seen until init1 has been restarted three times keeps the invariants.
			p := c.waitPod(name, 5*time.Minute, "init1 restarted 3 times", func(p *corev1.Pod) (bool, string) {
				if msg := waitingInitializing(p); msg != "" {
					c.t.Fatal(msg)
				}
				if len(p.Status.InitContainerStatuses) != 2 {
					return false, summary(p)
				}
				s := p.Status.InitContainerStatuses[1]
				if s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
					c.t.Fatalf("second init container should be waiting with reason PodInitializing: %+v", s.State)
				}
				s = p.Status.InitContainerStatuses[0]
				if s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
					c.t.Fatalf("first init container should have exitCode != 0: %+v", s.State)
				}
				return s.RestartCount >= 3, summary(p)
			})
			if p.Status.Phase != corev1.PodPending {
				c.t.Errorf("phase %s, want Pending", p.Status.Phase)
			}
			cond := condition(p, corev1.PodInitialized)
			if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "ContainersNotInitialized" || cond.Message != "containers with incomplete status: [init1 init2]" {
				c.t.Errorf("Initialized condition %+v, want False, ContainersNotInitialized, \"containers with incomplete status: [init1 init2]\"", cond)
			}
		}},
		{g, "should not start app containers and fail the pod if init containers fail on a RestartNever pod", func(c *conf) {
			name := "pod-init-fail-never"
			c.apply(name, manifest(name, initPod("Never", "/bin/true", "/bin/false", ctr("name: run1", "image: "+busyboxImage, cmd("command", "/bin/true"), "resources: {limits: {cpu: 100m}}")), "labels: {name: foo}"))
			c.waitPod(name, podStartTimeout, "init2 failed", func(p *corev1.Pod) (bool, string) {
				if msg := waitingInitializing(p); msg != "" {
					c.t.Fatal(msg)
				}
				if len(p.Status.InitContainerStatuses) != 2 {
					return false, summary(p)
				}
				s := p.Status.InitContainerStatuses[0]
				if s.State.Terminated == nil {
					if s.State.Waiting != nil && s.State.Waiting.Reason != "PodInitializing" {
						c.t.Fatalf("first init container should be waiting with reason PodInitializing: %+v", s.State)
					}
					return false, summary(p)
				}
				if s.State.Terminated.ExitCode != 0 {
					c.t.Fatalf("first init container should have exit code 0: %+v", s.State)
				}
				s = p.Status.InitContainerStatuses[1]
				if s.State.Terminated == nil {
					return false, summary(p)
				}
				if s.State.Terminated.ExitCode == 0 {
					c.t.Fatalf("second init container should have failed: %+v", s.State)
				}
				return true, ""
			})
			p := c.waitPod(name, podStartTimeout, "completed", func(p *corev1.Pod) (bool, string) {
				return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded, summary(p)
			})
			if p.Status.Phase != corev1.PodFailed {
				c.t.Errorf("phase %s, want Failed", p.Status.Phase)
			}
			cond := condition(p, corev1.PodInitialized)
			if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "ContainersNotInitialized" || cond.Message != "containers with incomplete status: [init2]" {
				c.t.Errorf("Initialized condition %+v, want False, ContainersNotInitialized, \"containers with incomplete status: [init2]\"", cond)
			}
			if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
				c.t.Errorf("app container should be waiting: %s", summary(p))
			}
		}},
	}
}

func expansionScenarios() []scenario {
	const g = "expansion"
	// newPod of expansion.go: one container dapi-container, restartPolicy Never.
	pod := func(name string, volumes string, fields ...string) string {
		return manifest(name, "  restartPolicy: Never\n"+volumes+"  containers:\n"+ctr(append([]string{"name: dapi-container", "image: " + busyboxImage}, fields...)...), "labels: {name: "+name+"}")
	}
	const emptyDir = "  volumes: [{name: workdir1, emptyDir: {}}]\n"
	// testPodFailSubpath: the container waits with CreateContainerConfigError.
	failSubpath := func(c *conf, name string) {
		c.waitPod(name, 2*time.Minute, "CreateContainerConfigError", func(p *corev1.Pod) (bool, string) {
			cs := containerStatus(p, "dapi-container")
			return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError", summary(p)
		})
	}
	return []scenario{
		{g, "should allow composing env vars into new env vars", func(c *conf) {
			c.apply("var-expansion-compose", pod("var-expansion-compose", "", cmd("command", "sh", "-c", "env"),
				`env: [{name: FOO, value: foo-value}, {name: BAR, value: bar-value}, {name: FOOBAR, value: "$(FOO);;$(BAR)"}]`))
			c.expectOutput("var-expansion-compose", "dapi-container", "FOO=foo-value", "BAR=bar-value", "FOOBAR=foo-value;;bar-value")
		}},
		{g, "should allow substituting values in a container's command", func(c *conf) {
			c.apply("var-expansion-command", pod("var-expansion-command", "", cmd("command", "sh", "-c", `TEST_VAR=wrong echo "$(TEST_VAR)"`),
				`env: [{name: TEST_VAR, value: test-value}]`))
			c.expectOutput("var-expansion-command", "dapi-container", "test-value")
		}},
		{g, "should allow substituting values in a container's args", func(c *conf) {
			c.apply("var-expansion-args", pod("var-expansion-args", "", cmd("command", "sh", "-c"), cmd("args", `TEST_VAR=wrong echo "$(TEST_VAR)"`),
				`env: [{name: TEST_VAR, value: test-value}]`))
			c.expectOutput("var-expansion-args", "dapi-container", "test-value")
		}},
		{g, "should allow substituting values in a volume subpath", func(c *conf) {
			name := "var-expansion-subpath"
			c.apply(name, pod(name, emptyDir, cmd("command", "sh", "-c", "test -d /testcontainer/"+name+";echo $?"),
				"env: [{name: POD_NAME, value: "+name+"}]",
				`volumeMounts: [{name: workdir1, mountPath: /logscontainer, subPathExpr: "$(POD_NAME)"}, {name: workdir1, mountPath: /testcontainer}]`))
			c.expectOutput(name, "dapi-container", "0")
		}},
		{g, "should fail substituting values in a volume subpath with backticks", func(c *conf) {
			name := "var-expansion-dotdot"
			c.apply(name, pod(name, emptyDir, `env: [{name: POD_NAME, value: ".."}]`,
				`volumeMounts: [{name: workdir1, mountPath: /logscontainer, subPathExpr: "$(POD_NAME)"}]`))
			failSubpath(c, name)
		}},
		{g, "should fail substituting values in a volume subpath with absolute path", func(c *conf) {
			name := "var-expansion-abs"
			c.apply(name, pod(name, emptyDir, `env: [{name: POD_NAME, value: /tmp}]`,
				`volumeMounts: [{name: workdir1, mountPath: /logscontainer, subPathExpr: "$(POD_NAME)"}]`))
			failSubpath(c, name)
		}},
		{g, "should succeed in writing subpaths in container", func(c *conf) {
			// The upstream scenario then edits the annotation of the running pod, which needs the
			// API server (a changed file replaces a static pod); the part up to there is ported.
			name := "var-expansion-write"
			c.apply(name, manifest(name, "  restartPolicy: Never\n"+emptyDir+"  containers:\n"+ctr("name: dapi-container", "image: "+busyboxImage,
				cmd("command", "sh", "-c", "tail -f /dev/null"),
				`env: [{name: POD_NAME, value: foo}, {name: ANNOTATION, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: "metadata.annotations['mysubpath']"}}}]`,
				`volumeMounts: [{name: workdir1, mountPath: /subpath_mount, subPathExpr: "$(ANNOTATION)/$(POD_NAME)"}, {name: workdir1, mountPath: /volume_mount}]`),
				"annotations: {mysubpath: mypath}"))
			c.waitRunning(name)
			if _, errs, code := c.exec(name, "dapi-container", "sh", "-c", "touch /volume_mount/mypath/foo/test.log"); code != 0 {
				c.t.Fatalf("expected to be able to write to subpath: exit %d %s", code, errs)
			}
			if _, errs, code := c.exec(name, "dapi-container", "sh", "-c", "test -f /subpath_mount/test.log"); code != 0 {
				c.t.Fatalf("expected to be able to verify file: exit %d %s", code, errs)
			}
		}},
		{g, "allow almost all printable ASCII characters as environment variable names", func(c *conf) {
			name := "var-expansion-ascii"
			c.apply(name, pod(name, "", envCommand,
				`env: [{name: "!\"#$%&'()", value: value-1}, {name: "* +,-./0123456789", value: value-2}, {name: ":;<>?@", value: value-3}, {name: "[\\]^_`+"`"+`{}|~", value: value-4}]`))
			c.expectOutput(name, "dapi-container", "!\"#$%&'()=value-1", "* +,-./0123456789=value-2", ":;<>?@=value-3", "[\\]^_`{}|~=value-4")
		}},
	}
}

// envCommand prints the container's environment. Upstream runs sh -c env; Debian's busybox
// 1.35 ash drops the variables whose names are not shell identifiers (data-1, names from
// envFrom, printable ASCII) before it runs env, where the upstream image's busybox 1.36 keeps
// them, so the scenarios with such names run env itself.
var envCommand = cmd("command", "env")

// ipRegexp is the framework's RegexIPv4|RegexIPv6.
const ipRegexp = `(?:\d+)\.(?:\d+)\.(?:\d+)\.(?:\d+)|(?:[A-Fa-f0-9]{0,4}:){2,7}[A-Fa-f0-9]{1,4}`

func downwardAPIScenarios() []scenario {
	const g = "downwardapi"
	const resources = "resources: {requests: {cpu: 250m, memory: 32Mi}, limits: {cpu: 1250m, memory: 64Mi}}"
	dapi := func(c *conf, name, env string, withResources bool, want ...string) {
		fields := []string{"name: dapi-container", "image: " + busyboxImage, cmd("command", "sh", "-c", "env"), env}
		if withResources {
			fields = append(fields, resources)
		}
		c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr(fields...), "labels: {name: "+name+"}"))
		c.expectOutputRegexp(name, "dapi-container", want...)
	}
	field := func(env, path string) string {
		return fmt.Sprintf("{name: %s, valueFrom: {fieldRef: {apiVersion: v1, fieldPath: %s}}}", env, path)
	}
	res := func(env, r string) string {
		return fmt.Sprintf("{name: %s, valueFrom: {resourceFieldRef: {resource: %s}}}", env, r)
	}
	return []scenario{
		{g, "should provide pod name, namespace and IP address as env vars", func(c *conf) {
			dapi(c, "downward-api-names", "env: ["+field("POD_NAME", "metadata.name")+", "+field("POD_NAMESPACE", "metadata.namespace")+", "+field("POD_IP", "status.podIP")+"]", true,
				"POD_NAME=downward-api-names", "POD_NAMESPACE=default", "POD_IP="+ipRegexp)
		}},
		{g, "should provide host IP as an env var", func(c *conf) {
			dapi(c, "downward-api-hostip", "env: ["+field("HOST_IP", "status.hostIP")+"]", true, "HOST_IP="+ipRegexp)
		}},
		{g, "should provide hostIPs as an env var", func(c *conf) {
			dapi(c, "downward-api-hostips", "env: ["+field("HOST_IP", "status.hostIP")+"]", true, "HOST_IP="+ipRegexp)
		}},
		{g, "should provide host IP and pod IP as an env var if pod uses host network", func(c *conf) {
			name := "downward-api-hostnet"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  hostNetwork: true\n  containers:\n"+ctr("name: dapi-container", "image: "+busyboxImage,
				cmd("command", "sh", "-c", `[[ "${HOST_IP:?}" == "${POD_IP:?}" ]] && echo 'OK' || echo "HOST_IP: '${HOST_IP}' != POD_IP: '${POD_IP}'"`),
				"env: ["+field("HOST_IP", "status.hostIP")+", "+field("POD_IP", "status.podIP")+"]"), "labels: {name: "+name+"}"))
			c.expectOutputRegexp(name, "dapi-container", "OK")
		}},
		{g, "should provide container's limits.cpu/memory and requests.cpu/memory as env vars", func(c *conf) {
			dapi(c, "downward-api-resources", "env: ["+res("CPU_LIMIT", "limits.cpu")+", "+res("MEMORY_LIMIT", "limits.memory")+", "+res("CPU_REQUEST", "requests.cpu")+", "+res("MEMORY_REQUEST", "requests.memory")+"]", true,
				"CPU_LIMIT=2", "MEMORY_LIMIT=67108864", "CPU_REQUEST=1", "MEMORY_REQUEST=33554432")
		}},
		{g, "should provide default limits.cpu/memory from node allocatable", func(c *conf) {
			dapi(c, "downward-api-default", "env: ["+res("CPU_LIMIT", "limits.cpu")+", "+res("MEMORY_LIMIT", "limits.memory")+"]", false,
				"CPU_LIMIT=[1-9]", "MEMORY_LIMIT=[1-9]")
		}},
		{g, "should provide pod UID as env vars", func(c *conf) {
			// A static pod's UID is its config hash (32 hex digits) on a kubelet as here, not the
			// API server's UUID the upstream regexp expects: the variable must hold the pod's UID.
			name := "downward-api-uid"
			dapi(c, name, "env: ["+field("POD_UID", "metadata.uid")+"]", true, "POD_UID=[a-z0-9]{32}")
			p := c.pod(name)
			if p == nil || p.UID == "" || !strings.Contains(c.logs(name, "dapi-container"), "POD_UID="+string(p.UID)+"\n") {
				c.t.Errorf("POD_UID is not the pod's UID")
			}
		}},
		{g, "Downward API tests for pod level resources should provide default limits.cpu/memory from pod level resources", func(c *conf) {
			name := "downward-api-podlevel"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  resources: {requests: {cpu: 250m, memory: 32Mi}, limits: {cpu: 1250m, memory: 64Mi}}\n  containers:\n"+
				ctr("name: dapi-container", "image: "+busyboxImage, cmd("command", "sh", "-c", "env"), "env: ["+res("CPU_LIMIT", "limits.cpu")+", "+res("MEMORY_LIMIT", "limits.memory")+"]")))
			c.expectOutputRegexp(name, "dapi-container", "CPU_LIMIT=2", "MEMORY_LIMIT=67108864")
		}},
		{g, "Downward API tests for pod level resources should provide default limits.cpu/memory from pod level resources or node allocatable", func(c *conf) {
			// The node's allocatable memory: minipod reserves nothing, so the machine's.
			mem := nodeMemory(c)
			name := "downward-api-podlevel-node"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  resources: {requests: {cpu: 250m, memory: 32Mi}, limits: {cpu: 1250m}}\n  containers:\n"+
				ctr("name: dapi-container", "image: "+busyboxImage, cmd("command", "sh", "-c", "env"), "env: ["+res("CPU_LIMIT", "limits.cpu")+", "+res("MEMORY_LIMIT", "limits.memory")+"]")))
			c.expectOutputRegexp(name, "dapi-container", "CPU_LIMIT=2", fmt.Sprintf("MEMORY_LIMIT=%d", mem))
		}},
		{g, "should provide container's limits.hugepages-pagesize and requests.hugepages-pagesize as env vars", func(c *conf) {
			name := "downward-api-hugepages"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: dapi-container", "image: "+busyboxImage, cmd("command", "sh", "-c", "env"),
				"env: ["+res("HUGEPAGES_LIMIT", "limits.hugepages-2Mi")+", "+res("HUGEPAGES_REQUEST", "requests.hugepages-2Mi")+"]",
				"resources: {requests: {cpu: 10m, hugepages-2Mi: 0Mi}, limits: {hugepages-2Mi: 0Mi}}")))
			c.expectOutputRegexp(name, "dapi-container", "HUGEPAGES_LIMIT=0", "HUGEPAGES_REQUEST=0")
		}},
		{g, "should provide default limits.hugepages-pagesize from node allocatable", func(c *conf) {
			dapi(c, "downward-api-hugepages-default", "env: ["+res("HUGEPAGES_LIMIT", "limits.hugepages-2Mi")+"]", false, "HUGEPAGES_LIMIT=((0)|([1-9][0-9]*))\n")
		}},
	}
}

func containersScenarios() []scenario {
	const g = "containers"
	// entrypointTestPod: the agnhost image, terminationGracePeriodSeconds 1, restartPolicy Never.
	entrypoint := func(name string, fields ...string) string {
		return manifest(name, "  terminationGracePeriodSeconds: 1\n  restartPolicy: Never\n  containers:\n"+ctr(append([]string{"name: agnhost-container", "image: " + agnhostImage}, fields...)...))
	}
	return []scenario{
		{g, "should use the image defaults if command and args are blank", func(c *conf) {
			c.apply("client-containers-defaults", entrypoint("client-containers-defaults"))
			c.waitRunning("client-containers-defaults")
			c.until(30*time.Second, "logs Paused", func() (bool, string) {
				out := c.logs("client-containers-defaults", "agnhost-container")
				return strings.Contains(out, "Paused"), out
			})
		}},
		{g, "should be able to override the image's default arguments (container cmd)", func(c *conf) {
			c.apply("client-containers-args", entrypoint("client-containers-args", cmd("args", "entrypoint-tester", "override", "arguments")))
			c.expectOutput("client-containers-args", "agnhost-container", "[/agnhost entrypoint-tester override arguments]")
		}},
		{g, "should be able to override the image's default command (container entrypoint)", func(c *conf) {
			c.apply("client-containers-command", entrypoint("client-containers-command", cmd("command", "/agnhost-2"), cmd("args", "entrypoint-tester")))
			c.expectOutput("client-containers-command", "agnhost-container", "[/agnhost-2 entrypoint-tester]")
		}},
		{g, "should be able to override the image's default command and arguments", func(c *conf) {
			c.apply("client-containers-all", entrypoint("client-containers-all", cmd("command", "/agnhost-2"), cmd("args", "entrypoint-tester", "override", "arguments")))
			c.expectOutput("client-containers-all", "agnhost-container", "[/agnhost-2 entrypoint-tester override arguments]")
		}},
	}
}

func kubeletScenarios() []scenario {
	const g = "kubelet"
	hostAliases := func(c *conf, name string, hostNetwork bool) {
		hn := ""
		if hostNetwork {
			hn = "  hostNetwork: true\n"
		}
		c.apply(name, manifest(name, "  restartPolicy: Never\n"+hn+"  hostAliases: [{ip: 123.45.67.89, hostnames: [foo, bar]}]\n  containers:\n"+
			ctr("name: agnhost-container", "image: "+agnhostImage, cmd("args", "etc-hosts"))))
		p := c.waitPod(name, podStartTimeout, "no longer running", func(p *corev1.Pod) (bool, string) {
			return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, summary(p)
		})
		if out := c.logs(name, "agnhost-container"); !strings.Contains(out, "123.45.67.89\tfoo\tbar") {
			c.t.Errorf("expected hosts file to contain entries from HostAliases. Got:\n%s\n(pod: %s)", out, summary(p))
		}
	}
	return []scenario{
		{g, "when scheduling a busybox command in a pod should print the output to logs", func(c *conf) {
			name := "busybox-scheduling"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: "+name, "image: "+busyboxImage, cmd("command", "sh", "-c", "echo 'Hello World' ; sleep 240"))))
			c.waitRunning(name)
			c.until(time.Minute, "logs", func() (bool, string) {
				out := c.logsWith(name, apiLogSince(name, time.Hour))
				return out == "Hello World\n", fmt.Sprintf("%q", out)
			})
		}},
		{g, "when scheduling a busybox command that always fails in a pod should have an terminated reason", func(c *conf) {
			name := "bin-false"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: "+name, "image: "+busyboxImage, cmd("command", "/bin/false"))))
			c.waitPod(name, podStartTimeout, "terminated with a reason", func(p *corev1.Pod) (bool, string) {
				if len(p.Status.ContainerStatuses) != 1 {
					return false, "expected only one container"
				}
				t := p.Status.ContainerStatuses[0].State.Terminated
				return t != nil && t.ExitCode != 0 && t.Reason != "", summary(p)
			})
		}},
		{g, "when scheduling a busybox command that always fails in a pod should be possible to delete", func(c *conf) {
			name := "bin-false-delete"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: "+name, "image: "+busyboxImage, cmd("command", "/bin/false"))))
			c.waitPod(name, podStartTimeout, "listed", func(p *corev1.Pod) (bool, string) { return true, "" })
			c.remove(name)
			c.waitGone(name, time.Minute)
		}},
		{g, "when scheduling an agnhost Pod with hostAliases should write entries to /etc/hosts", func(c *conf) {
			hostAliases(c, "agnhost-host-aliases", false)
		}},
		{g, "when scheduling a read only busybox container should not write to root filesystem", func(c *conf) {
			name := "busybox-readonly-fs"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: "+name, "image: "+busyboxImage,
				cmd("command", "/bin/sh", "-c", "echo test > /file; sleep 240"), "securityContext: {readOnlyRootFilesystem: true}")))
			c.waitRunning(name)
			c.until(time.Minute, "logs", func() (bool, string) {
				out := c.logs(name, name)
				return out == "/bin/sh: can't create /file: Read-only file system\n", fmt.Sprintf("%q", out)
			})
		}},
		{g, "with pods in a privileged namespace when scheduling an agnhost Pod with hostAliases and hostNetwork should write entries to /etc/hosts when hostNetwork is enabled", func(c *conf) {
			hostAliases(c, "agnhost-host-aliases-hostnet", true)
		}},
	}
}

func podsScenarios() []scenario {
	const g = "pods"
	pause := func(name string, extra string) string {
		return manifest(name, extra+"  containers:\n"+ctr("name: pause", "image: "+pauseImage))
	}
	return []scenario{
		{g, "should get a host IP", func(c *conf) {
			name := "pod-hostip"
			c.apply(name, pause(name, ""))
			c.waitRunning(name)
			c.waitPod(name, 2*time.Minute, "a host IP", func(p *corev1.Pod) (bool, string) { return p.Status.HostIP != "", summary(p) })
		}},
		{g, "should be submitted and removed", func(c *conf) {
			// The watch and label selection of the upstream scenario are the API server's; here a
			// file is submitted and removed, and the pod, running, goes gracefully.
			name := "pod-submit-remove"
			c.apply(name, manifest(name, "  containers:\n"+ctr("name: pause", "image: "+pauseImage), "labels: {name: foo, time: \"1\"}"))
			p := c.waitRunning(name)
			if p.Spec.TerminationGracePeriodSeconds == nil || *p.Spec.TerminationGracePeriodSeconds == 0 {
				c.t.Errorf("terminationGracePeriodSeconds %v, want the default 30", p.Spec.TerminationGracePeriodSeconds)
			}
			c.remove(name)
			c.waitGone(name, time.Minute)
		}},
		{g, "should allow activeDeadlineSeconds to be updated", func(c *conf) {
			// Adapted: a changed file replaces a static pod, so the deadline is in the file from
			// the start rather than set on the running pod.
			name := "pod-activedeadlineseconds"
			c.apply(name, pause(name, "  activeDeadlineSeconds: 5\n"))
			c.waitPod(name, podStartTimeout, "terminated with reason DeadlineExceeded", func(p *corev1.Pod) (bool, string) {
				return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "DeadlineExceeded", summary(p)
			})
		}},
		{g, "should support remote command execution over websockets", func(c *conf) {
			// Through the daemon's exec API (the websocket transport is the API server's).
			name := "pod-exec-websocket"
			c.apply(name, manifest(name, "  containers:\n"+ctr("name: main", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "echo container is alive; sleep 600"))))
			c.waitRunning(name)
			out, errs, code := c.exec(name, "main", "echo", "remote execution test")
			if code != 0 || !strings.Contains(out, "remote execution test") {
				c.t.Errorf("exec: exit %d stdout %q stderr %q", code, out, errs)
			}
		}},
		{g, "should support retrieving logs from the container over websockets", func(c *conf) {
			name := "pod-logs-websocket"
			c.apply(name, manifest(name, "  containers:\n"+ctr("name: main", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "echo container is alive; sleep 10000"))))
			c.waitRunning(name)
			c.until(30*time.Second, "logs", func() (bool, string) {
				out := c.logs(name, "main")
				return out == "container is alive\n", fmt.Sprintf("%q", out)
			})
		}},
	}
}

func miscNodeScenarios() []scenario {
	return []scenario{
		{"kubelet_etc_hosts", "should test kubelet managed /etc/hosts file", func(c *conf) {
			// etcHostsPodName and etcHostsHostNetworkPodName, with the node's /etc/hosts mounted
			// at /etc/hosts-original (and at /etc/hosts in busybox-3).
			vol := "  volumes: [{name: host-etc-hosts, hostPath: {path: /etc/hosts, type: FileOrCreate}}]\n"
			mount := "volumeMounts: [{name: host-etc-hosts, mountPath: /etc/hosts-original}]"
			both := "volumeMounts: [{name: host-etc-hosts, mountPath: /etc/hosts-original}, {name: host-etc-hosts, mountPath: /etc/hosts}]"
			c.apply("test-pod", manifest("test-pod", vol+"  containers:\n"+
				ctr("name: busybox-1", "image: "+agnhostImage, mount)+ctr("name: busybox-2", "image: "+agnhostImage, mount)+ctr("name: busybox-3", "image: "+agnhostImage, both)))
			c.apply("test-host-network-pod", manifest("test-host-network-pod", "  hostNetwork: true\n  securityContext: {}\n"+vol+"  containers:\n"+
				ctr("name: busybox-1", "image: "+agnhostImage, mount)+ctr("name: busybox-2", "image: "+agnhostImage, mount)))
			c.waitRunning("test-pod")
			c.waitRunning("test-host-network-pod")
			managed := func(pod, container string, want bool) {
				var hosts, orig string
				for end := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
					hosts, _, _ = c.exec(pod, container, "cat", "/etc/hosts")
					orig, _, _ = c.exec(pod, container, "cat", "/etc/hosts-original")
					if hosts != "" && orig != "" && (strings.HasPrefix(hosts, "# Kubernetes-managed hosts file.") && hosts != orig) == want {
						return
					}
					if time.Now().After(end) {
						c.t.Errorf("%s/%s: /etc/hosts should be kubelet-managed: %v; /etc/hosts was %q, /etc/hosts-original was %q", pod, container, want, hosts, orig)
						return
					}
				}
			}
			managed("test-pod", "busybox-1", true)
			managed("test-pod", "busybox-2", true)
			managed("test-pod", "busybox-3", false)
			managed("test-host-network-pod", "busybox-1", false)
			managed("test-host-network-pod", "busybox-2", false)
		}},
		{"privileged", "should enable privileged commands", func(c *conf) {
			// The upstream command, ip link add dummy1 type dummy, needs the dummy driver, which
			// the CI kernel lacks; a veth pair needs the same privilege (CAP_NET_ADMIN in the
			// pod's network namespace) and is always there.
			name := "privileged-pod"
			c.apply(name, manifest(name, "  containers:\n"+
				ctr("name: privileged-container", "image: "+busyboxImage, "securityContext: {privileged: true}", cmd("command", "/bin/sleep", "10000"))+
				ctr("name: not-privileged-container", "image: "+busyboxImage, "securityContext: {privileged: false}", cmd("command", "/bin/sleep", "10000"))))
			c.waitRunning(name)
			add := []string{"ip", "link", "add", "mpveth1", "type", "veth", "peer", "name", "mpveth2"}
			if out, errs, code := c.exec(name, "privileged-container", add...); code != 0 {
				c.t.Errorf("privileged: %v: exit %d stdout %q stderr %q", add, code, out, errs)
			} else if _, errs, code := c.exec(name, "privileged-container", "ip", "link", "del", "mpveth1"); code != 0 {
				c.t.Errorf("could not remove mpveth1: %s", errs)
			}
			if out, errs, code := c.exec(name, "not-privileged-container", add...); code == 0 {
				c.t.Errorf("not privileged: %v succeeded: %q %q", add, out, errs)
			}
		}},
		{"sysctl", "should support sysctls", func(c *conf) {
			name := "sysctl-support"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  securityContext: {sysctls: [{name: kernel.shm_rmid_forced, value: \"1\"}]}\n  containers:\n"+
				ctr("name: test-container", "image: "+busyboxImage, cmd("command", "/bin/sysctl", "kernel.shm_rmid_forced"))))
			c.expectOutput(name, "test-container", "kernel.shm_rmid_forced = 1")
		}},
		{"sysctl", "should reject invalid sysctls", func(c *conf) {
			// The API server refuses the pod; here the file is refused, with the same field errors.
			name := "sysctl-invalid"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  securityContext: {sysctls: [{name: foo-, value: bar}, {name: kernel.shmmax, value: \"100000000\"}, {name: safe-and-unsafe, value: \"100000000\"}, {name: bar.., value: \"42\"}]}\n  containers:\n"+
				ctr("name: test-container", "image: "+busyboxImage)))
			p := c.waitPod(name, time.Minute, "refused", func(p *corev1.Pod) (bool, string) {
				return p.Status.Reason == "InvalidManifest", summary(p)
			})
			msg := p.Status.Message
			for _, want := range []string{`Invalid value: "foo-"`, `Invalid value: "bar.."`} {
				if !strings.Contains(msg, want) {
					c.t.Errorf("message lacks %s: %s", want, msg)
				}
			}
			for _, not := range []string{"safe-and-unsafe", "kernel.shmmax"} {
				if strings.Contains(msg, not) {
					c.t.Errorf("message names %s: %s", not, msg)
				}
			}
		}},
		{"sysctl", "should support sysctls with slashes as separator", func(c *conf) {
			name := "sysctl-slashes"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  securityContext: {sysctls: [{name: kernel/shm_rmid_forced, value: \"1\"}]}\n  containers:\n"+
				ctr("name: test-container", "image: "+busyboxImage, cmd("command", "/bin/sysctl", "kernel/shm_rmid_forced"))))
			c.expectOutput(name, "test-container", "kernel.shm_rmid_forced = 1")
		}},
		{"configmap", "should be consumable via environment variable", func(c *conf) {
			c.writeConfigMap("configmap-test-env", map[string]string{"data-1": "value-1", "data-2": "value-2", "data-3": "value-3"})
			name := "pod-configmaps-env"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: env-test", "image: "+busyboxImage, cmd("command", "sh", "-c", "env"),
				"env: [{name: CONFIG_DATA_1, valueFrom: {configMapKeyRef: {name: configmap-test-env, key: data-1}}}]")))
			c.expectOutput(name, "env-test", "CONFIG_DATA_1=value-1")
		}},
		{"configmap", "should be consumable via the environment", func(c *conf) {
			c.writeConfigMap("configmap-test-envfrom", map[string]string{"data-1": "value-1", "data-2": "value-2", "data-3": "value-3"})
			name := "pod-configmaps-envfrom"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: env-test", "image: "+busyboxImage, envCommand,
				"envFrom: [{configMapRef: {name: configmap-test-envfrom}}, {prefix: p-, configMapRef: {name: configmap-test-envfrom}}]")))
			c.expectOutput(name, "env-test", "data-1=value-1", "data-2=value-2", "data-3=value-3", "p-data-1=value-1", "p-data-2=value-2", "p-data-3=value-3")
		}},
		{"configmap", "configMap keys that start with a digit as environment variable names (RelaxedEnvironmentVariableValidation)", func(c *conf) {
			c.writeConfigMap("configmap-test-digits", map[string]string{"1data-1": "value-1", "2data-2": "value-2"})
			name := "pod-configmaps-digits"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: env-test", "image: "+busyboxImage, envCommand,
				"envFrom: [{configMapRef: {name: configmap-test-digits}}]")))
			c.expectOutput(name, "env-test", "1data-1=value-1", "2data-2=value-2")
		}},
		{"secrets", "should be consumable from pods in env vars", func(c *conf) {
			c.writeSecret("secret-test-env", map[string]string{"data-1": "value-1\n", "data-2": "value-2\n", "data-3": "value-3\n"})
			name := "pod-secrets-env"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: secret-env-test", "image: "+busyboxImage, cmd("command", "sh", "-c", "env"),
				"env: [{name: SECRET_DATA, valueFrom: {secretKeyRef: {name: secret-test-env, key: data-1}}}]")))
			c.expectOutput(name, "secret-env-test", "SECRET_DATA=value-1")
		}},
		{"secrets", "should be consumable via the environment", func(c *conf) {
			c.writeSecret("secret-test-envfrom", map[string]string{"data-1": "value-1\n", "data-2": "value-2\n", "data-3": "value-3\n"})
			name := "pod-secrets-envfrom"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: env-test", "image: "+busyboxImage, envCommand,
				"envFrom: [{secretRef: {name: secret-test-envfrom}}, {prefix: p-, secretRef: {name: secret-test-envfrom}}]")))
			c.expectOutput(name, "env-test", "data-1=value-1", "data-2=value-2", "data-3=value-3", "p-data-1=value-1", "p-data-2=value-2", "p-data-3=value-3")
		}},
		{"secrets", "secret keys that start with a digit as environment variable names (RelaxedEnvironmentVariableValidation)", func(c *conf) {
			c.writeSecret("secret-test-digits", map[string]string{"1data-1": "value-1\n", "2data-2": "value-2\n"})
			name := "pod-secrets-digits"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+ctr("name: env-test", "image: "+busyboxImage, envCommand,
				"envFrom: [{secretRef: {name: secret-test-digits}}, {prefix: p_, secretRef: {name: secret-test-digits}}, {prefix: \"1-\", secretRef: {name: secret-test-digits}}]")))
			c.expectOutput(name, "env-test", "1data-1=value-1", "2data-2=value-2", "p_1data-1=value-1", "1-1data-1=value-1")
		}},
		{"container_restart_policy", "Container Restart Rules should restart container on rule match", func(c *conf) {
			restartRulesPod(c, "restart-rules-exit-code", "Never", "exit 42", "restartPolicy: Never", "restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [42]}}]")
			restartedOnce(c, "restart-rules-exit-code")
		}},
		{"container_restart_policy", "Container Restart Rules should not restart container on rule mismatch, container restart policy Never", func(c *conf) {
			restartRulesPod(c, "restart-rules-no-restart", "Never", "exit 1", "restartPolicy: Never", "restartPolicyRules: [{action: Restart, exitCodes: {operator: In, values: [42]}}]")
			notRestarted(c, "restart-rules-no-restart")
		}},
		{"container_restart_policy", "Container Restart Rules should restart container on container-level restart policy Never", func(c *conf) {
			restartRulesPod(c, "restart-rules-ctr-never", "Always", "exit 1", "restartPolicy: Never")
			notRestarted(c, "restart-rules-ctr-never")
		}},
		{"container_restart_policy", "Container Restart Rules should restart container on container-level restart policy Always", func(c *conf) {
			restartRulesPod(c, "restart-rules-ctr-always", "Never", "exit 1", "restartPolicy: Always")
			restartedOnce(c, "restart-rules-ctr-always")
		}},
		{"container_restart_policy", "Container Restart Rules should restart container on pod-level restart policy Always when no container-level restart policy", func(c *conf) {
			restartRulesPod(c, "restart-rules-no-match", "Always", "exit 1")
			restartedOnce(c, "restart-rules-no-match")
		}},
		{"container_restart_policy", "RestartAllContainers should restart all containers on regular container exit", func(c *conf) {
			name := "restart-all-regular"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  initContainers:\n"+
				ctr("name: init", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "exit 0"))+
				ctr("name: sidecar", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"), "restartPolicy: Always")+
				"  containers:\n"+
				ctr("name: source-container", "image: "+busyboxImage,
					cmd("command", "/bin/sh", "-c", "if [ -f /mnt/restart-complete ]; then sleep 10000; else touch /mnt/restart-complete; exit 42; fi"),
					"restartPolicy: Never", restartAllOn42, workdirMount)+
				ctr("name: regular", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"))+
				workdirVolume))
			allRestarted(c, name, "init", "sidecar", "source-container", "regular")
			containersRunning(c, name, "source-container", "regular")
		}},
		{"container_restart_policy", "RestartAllContainers should restart all containers on sidecar container exit", func(c *conf) {
			name := "restart-all-sidecar"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  initContainers:\n"+
				ctr("name: init", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "exit 0"))+
				ctr("name: sidecar", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"), "restartPolicy: Always")+
				ctr("name: source-sidecar", "image: "+busyboxImage,
					cmd("command", "/bin/sh", "-c", "if [ -f /mnt/init-complete ]; then sleep 10000; else touch /mnt/init-complete; sleep 30; exit 42; fi"),
					"restartPolicy: Always", restartAllOn42, workdirMount)+
				"  containers:\n"+
				ctr("name: regular", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"))+
				workdirVolume))
			allRestarted(c, name, "init", "sidecar", "source-sidecar", "regular")
			containersRunning(c, name, "regular", "source-sidecar")
		}},
		{"container_restart_policy", "RestartAllContainers should restart init and sidecar containers on init container exit", func(c *conf) {
			name := "restart-all-init"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  initContainers:\n"+
				ctr("name: sidecar", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"), "restartPolicy: Always")+
				ctr("name: init", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "exit 0"))+
				ctr("name: source-init", "image: "+busyboxImage,
					cmd("command", "/bin/sh", "-c", "if [ -f /mnt/init-complete ]; then exit 0; else touch /mnt/init-complete; exit 42; fi"),
					"restartPolicy: Never", restartAllOn42, workdirMount)+
				"  containers:\n"+
				ctr("name: regular", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"))+
				workdirVolume))
			allRestarted(c, name, "init", "sidecar", "source-init")
			containersRunning(c, name, "regular")
		}},
		{"container_restart_policy", "RestartAllContainers should allow multiple RestartAllContainers actions and not introduce a loop", func(c *conf) {
			name := "restart-all-multiple"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  containers:\n"+
				ctr("name: source-container", "image: "+busyboxImage,
					cmd("command", "/bin/sh", "-c", "if [ -f /mnt/restart-complete ]; then sleep 10000; else touch /mnt/restart-complete; sleep 10; exit 42; fi"),
					"restartPolicy: Never", restartAllOn42, workdirMount)+
				ctr("name: regular", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"), "restartPolicy: Never", restartAllOn42)+
				workdirVolume))
			allRestarted(c, name, "source-container", "regular")
			containersRunning(c, name, "source-container", "regular")
		}},
		{"container_restart_policy", "RestartAllContainers should restart all containers on a previously restarted regular container exit", func(c *conf) {
			name := "restart-all-restarted"
			c.apply(name, manifest(name, "  containers:\n"+
				ctr("name: source-container", "image: "+busyboxImage,
					cmd("command", "/bin/sh", "-c", "if [ -f /mnt/restart-complete ]; then sleep 10000; elif [ -f /mnt/restart-1 ]; then touch /mnt/restart-complete; exit 42; else touch /mnt/restart-1; exit 1; fi"),
					"restartPolicy: Always", restartAllOn42, workdirMount)+
				ctr("name: regular", "image: "+busyboxImage, cmd("command", "/bin/sh", "-c", "sleep 10000"))+
				workdirVolume))
			allRestarted(c, name, "source-container", "regular")
			containersRunning(c, name, "source-container", "regular")
		}},
		{"sysctl", "should not launch unsafe, but not explicitly enabled sysctls on the node", func(c *conf) {
			name := "sysctl-unsafe"
			c.apply(name, manifest(name, "  restartPolicy: Never\n  securityContext: {sysctls: [{name: kernel.msgmax, value: \"10000000000\"}]}\n  containers:\n"+
				ctr("name: test-container", "image: "+busyboxImage)))
			c.waitPod(name, podStartTimeout, "phase Failed, reason SysctlForbidden", func(p *corev1.Pod) (bool, string) {
				return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "SysctlForbidden", summary(p)
			})
		}},
		{"container_restart_backoff", "Should be restarted the container with an exponential backoff", func(c *conf) {
			// Upstream watches ten restarts (about 16 minutes, up to the 5-minute cap) and reads
			// each attempt's start from lastState at the first status that shows a higher
			// restart count. A kubelet shows a crashed container Terminated for up to its 10 s
			// sync retry before CrashLoopBackOff; minipod goes to CrashLoopBackOff at once, so
			// that reading would be one attempt late here. This port measures the backoff itself
			// instead: from each attempt's finishedAt to the next one's startedAt, both read from
			// lastState, over the first five restarts. The kubelet restarts the first crash at
			// once, then waits 10 s, doubling (pkg/kubelet/kuberuntime doBackOff); the cap is the
			// [Slow] pods.go scenario.
			name := "test-container-restart-backoff"
			c.apply(name, manifest(name, "  restartPolicy: Always\n  containers:\n"+ctr("name: c", "image: "+busyboxImage, cmd("command", "false"))))
			// want[k] is the wait before attempt k (restartCount k).
			want := []time.Duration{0, 0, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second}
			var seen int32 = -1 // the attempt lastState last showed
			var finished time.Time
			measured := 0
			c.waitPod(name, 5*time.Minute, "five restarts", func(p *corev1.Pod) (bool, string) {
				if len(p.Status.ContainerStatuses) == 0 {
					return false, "no status"
				}
				s := p.Status.ContainerStatuses[0]
				term := s.LastTerminationState.Terminated
				if term == nil {
					return false, summary(p)
				}
				// lastState is the attempt before the current one: restartCount-1, or the
				// current one itself while it waits in CrashLoopBackOff.
				attempt := s.RestartCount - 1
				if s.State.Waiting != nil && s.State.Waiting.Reason == "CrashLoopBackOff" {
					attempt = s.RestartCount
				}
				if attempt <= seen {
					return false, summary(p)
				}
				if attempt == seen+1 && !finished.IsZero() && int(attempt) < len(want) {
					got := term.StartedAt.Sub(finished)
					c.t.Logf("restart %d: waited %s after the previous attempt ended", attempt, got)
					// Upstream's tolerance: twice the kubelet's 10 s sync retry, either way. The
					// wait includes the start itself, seconds on a loaded machine.
					if d := got - want[attempt]; d > 20*time.Second || d < -20*time.Second {
						c.t.Errorf("restart %d: waited %s after the previous attempt ended, want %s ± 20s", attempt, got, want[attempt])
					}
					measured++
				}
				seen, finished = attempt, term.FinishedAt.Time
				return int(attempt) >= len(want)-1, summary(p)
			})
			if measured < 3 {
				c.t.Errorf("only %d restarts measured", measured)
			}
		}},
	}
}

// restartRulesPod is a pod of container_restart_policy.go: one busybox container main-container
// running command, with the given container fields.
func restartRulesPod(c *conf, name, podPolicy, command string, fields ...string) {
	c.t.Helper()
	c.apply(name, manifest(name, "  restartPolicy: "+podPolicy+"\n  containers:\n"+
		ctr(append([]string{"name: main-container", "image: " + busyboxImage, cmd("command", "/bin/sh", "-c", command)}, fields...)...)))
}

// restartedOnce is createAndValidateRestartableContainer: the container restarts.
func restartedOnce(c *conf, name string) {
	c.t.Helper()
	c.waitPod(name, 10*time.Minute, "container restarted", func(p *corev1.Pod) (bool, string) {
		cs := containerStatus(p, "main-container")
		return cs != nil && cs.RestartCount > 0, summary(p)
	})
}

// notRestarted is createAndValidateNonRestartableContainer: the pod stops running, and the
// container was not restarted.
func notRestarted(c *conf, name string) {
	c.t.Helper()
	p := c.waitPod(name, 10*time.Minute, "no longer running", func(p *corev1.Pod) (bool, string) {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, summary(p)
	})
	if cs := containerStatus(p, "main-container"); cs == nil || cs.RestartCount != 0 {
		c.t.Errorf("container restarted: %s", summary(p))
	}
}

// The RestartAllContainers scenarios' rule (exit code 42), the mount of their emptyDir and the
// volume itself, as container_restart_policy.go has them.
const (
	restartAllOn42 = "restartPolicyRules: [{action: RestartAllContainers, exitCodes: {operator: In, values: [42]}}]"
	workdirMount   = "volumeMounts: [{name: workdir, mountPath: /mnt}]"
	workdirVolume  = "  volumes: [{name: workdir, emptyDir: {}}]\n"
)

// allRestarted is validateAllContainersRestarted: within 3 minutes every named container has
// restarted and has a last termination state (upstream's matcher errs while one has none, which
// Gomega's Eventually takes as another poll).
func allRestarted(c *conf, name string, containers ...string) {
	c.t.Helper()
	c.waitPod(name, 3*time.Minute, "all containers restarted", func(p *corev1.Pod) (bool, string) {
		for _, n := range containers {
			cs := containerStatus(p, n)
			if cs == nil || cs.RestartCount == 0 || cs.LastTerminationState.Terminated == nil {
				return false, summary(p)
			}
		}
		return true, summary(p)
	})
}

// containersRunning is e2epod.WaitForContainerRunning for each named container, 3 minutes each.
func containersRunning(c *conf, name string, containers ...string) {
	c.t.Helper()
	for _, n := range containers {
		c.waitPod(name, 3*time.Minute, n+" running", func(p *corev1.Pod) (bool, string) {
			cs := containerStatus(p, n)
			return cs != nil && cs.State.Running != nil, summary(p)
		})
	}
}

// nodeMemory is the machine's memory in bytes, from /proc/meminfo.
func nodeMemory(c *conf) int64 {
	c.t.Helper()
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		c.t.Fatal(err)
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb * 1024
		}
	}
	c.t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// apiLogSince is a log request for the whole log newer than d, as the upstream scenario's
// SinceTime of an hour ago.
func apiLogSince(container string, d time.Duration) api.LogOptions {
	return api.LogOptions{Container: container, Tail: -1, Since: d}
}
