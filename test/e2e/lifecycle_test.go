package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

func onePod(name, policy, initCmd, cmd string) string {
	s := fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  restartPolicy: %s\n  terminationGracePeriodSeconds: 2\n", name, policy)
	if initCmd != "" {
		s += fmt.Sprintf("  initContainers:\n  - name: init\n    image: minipod.local/busybox:1.35\n    command: [\"sh\", \"-c\", %q]\n", initCmd)
	}
	return s + fmt.Sprintf("  containers:\n  - name: main\n    image: minipod.local/busybox:1.35\n    command: [\"sh\", \"-c\", %q]\n", cmd)
}

// Restart policies end pods in the phases a kubelet gives them.
func TestRestartPolicyPhases(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "2s")
	d.start()
	d.writeManifest("ok.yaml", onePod("ok", "OnFailure", "", "echo done"))
	d.writeManifest("fail.yaml", onePod("fail", "Never", "", "echo failing; exit 3"))
	d.writeManifest("initfail.yaml", onePod("initfail", "Never", "exit 2", "echo never runs"))
	d.writeManifest("retry.yaml", onePod("retry", "OnFailure", "", "exit 1"))

	phase := func(name string, want corev1.PodPhase) {
		d.eventually(60*time.Second, name+" "+string(want), func() (bool, string) {
			p := d.pod(name)
			if p == nil {
				return false, "not listed"
			}
			return p.Status.Phase == want, fmt.Sprintf("%s %+v %+v", p.Status.Phase, p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
		})
	}
	phase("ok", corev1.PodSucceeded)
	phase("fail", corev1.PodFailed)
	phase("initfail", corev1.PodFailed)

	if cs := d.pod("fail").Status.ContainerStatuses[0]; cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 || cs.State.Terminated.Reason != "Error" || cs.RestartCount != 0 {
		t.Errorf("fail: state %+v restarts %d", cs.State, cs.RestartCount)
	}
	if cs := d.pod("ok").Status.ContainerStatuses[0]; cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
		t.Errorf("ok: state %+v", cs.State)
	}
	p := d.pod("initfail")
	if cs := p.Status.ContainerStatuses[0]; cs.State.Running != nil || cs.State.Terminated != nil {
		t.Errorf("initfail: app container ran: %+v", cs.State)
	}
	out, _, _ := d.ctl("status")
	for _, want := range []string{"Completed", "Error", "Init:Error"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	// OnFailure with a failing container keeps restarting and shows CrashLoopBackOff.
	d.eventually(60*time.Second, "retry in CrashLoopBackOff", func() (bool, string) {
		p := d.pod("retry")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		cs := p.Status.ContainerStatuses[0]
		w := cs.State.Waiting
		return cs.RestartCount >= 2 && w != nil && w.Reason == "CrashLoopBackOff" && strings.Contains(w.Message, "back-off"),
			fmt.Sprintf("restarts %d state %+v", cs.RestartCount, cs.State)
	})
	// A finished pod stays listed until its file goes, and then leaves nothing.
	d.removeAndCheck("ok", "fail", "initfail", "retry")
}

// The termination message comes from terminationMessagePath, or from the log's tail with
// FallbackToLogsOnError.
func TestTerminationMessage(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("msg.yaml", `apiVersion: v1
kind: Pod
metadata: {name: msg}
spec:
  restartPolicy: Never
  containers:
  - name: file
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo -n 'bye from file' > /dev/termination-log; exit 4"]
  - name: custom
    image: minipod.local/busybox:1.35
    terminationMessagePath: /tmp/why
    command: ["sh", "-c", "echo -n custom-path > /tmp/why"]
  - name: logs
    image: minipod.local/busybox:1.35
    terminationMessagePolicy: FallbackToLogsOnError
    command: ["sh", "-c", "echo first; echo last words; exit 1"]
`)
	// The log's tail keeps its last newline, as the kubelet reads it.
	want := map[string]string{"file": "bye from file", "custom": "custom-path", "logs": "first\nlast words\n"}
	d.eventually(60*time.Second, "termination messages", func() (bool, string) {
		p := d.pod("msg")
		if p == nil || p.Status.Phase != corev1.PodFailed {
			return false, "not failed yet"
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Terminated == nil || cs.State.Terminated.Message != want[cs.Name] {
				return false, fmt.Sprintf("%s: %+v", cs.Name, cs.State.Terminated)
			}
		}
		return true, ""
	})
}

// A container that ignores SIGTERM is killed when its grace period is over, after its preStop
// hook ran; a failing postStart hook kills its container.
func TestGracePeriodAndHooks(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("stubborn.yaml", `apiVersion: v1
kind: Pod
metadata: {name: stubborn}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'echo ignoring TERM' TERM; while true; do sleep 1; done"]
    lifecycle:
      preStop:
        exec:
          command: ["sh", "-c", "echo prestop ran > /proc/1/fd/1"]
`)
	d.writeManifest("badhook.yaml", `apiVersion: v1
kind: Pod
metadata: {name: badhook}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sleep", "3600"]
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "exit 3"]
`)
	d.waitRunning("stubborn", 60*time.Second)
	d.eventually(60*time.Second, "badhook killed", func() (bool, string) {
		p := d.pod("badhook")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return p.Status.Phase == corev1.PodFailed && term != nil && strings.Contains(term.Message, "FailedPostStartHook"),
			fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State)
	})

	// Follow the log while the pod stops: the preStop hook's line comes before the trap's.
	logs := d.followLogs("stubborn", "c")
	start := time.Now()
	d.removeManifest("stubborn.yaml")
	d.waitGone("stubborn", 30*time.Second)
	took := time.Since(start)
	t.Logf("stopped in %s (grace 3s)", took)
	// The upper bound leaves two seconds for the SIGKILL, the removal of the containers and
	// the network, and the status poll: on this 2-CPU machine under the load of a full run
	// they took 1.0-1.4 s.
	if took < 3*time.Second || took > 5*time.Second {
		t.Errorf("stop took %s, want within two seconds after the 3s grace period", took)
	}
	out := logs()
	i, j := strings.Index(out, "prestop ran"), strings.Index(out, "ignoring TERM")
	if i < 0 || j < 0 || i > j {
		t.Errorf("want the preStop line before the TERM line, got log:\n%s", out)
	}
}

// Logs are kept per attempt in the CRI format: --previous shows the last attempt's output, and
// --tail and --timestamps shape it.
func TestLogs(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "2s")
	d.start()
	d.writeManifest("talk.yaml", onePod("talk", "Always", "",
		"echo attempt-$(cat /proc/sys/kernel/random/uuid); echo to-stderr >&2; echo last-line; sleep 2; exit 1"))
	d.eventually(60*time.Second, "a restart", func() (bool, string) {
		p := d.pod("talk")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		cs := p.Status.ContainerStatuses[0]
		return cs.RestartCount >= 1 && cs.State.Running != nil, fmt.Sprintf("%d %+v", cs.RestartCount, cs.State)
	})
	var cur string
	d.eventually(10*time.Second, "current attempt logged", func() (bool, string) {
		cur, _, _ = d.ctl("logs", "talk")
		return strings.Contains(cur, "last-line"), cur
	})
	prev, errs, code := d.ctl("logs", "talk", "--previous")
	if code != 0 || !strings.Contains(prev, "attempt-") || !strings.Contains(prev, "to-stderr") {
		t.Fatalf("logs --previous: code %d out %q err %q", code, prev, errs)
	}
	// Each attempt prints its own random line; stdout and stderr may interleave either way.
	attemptLine := func(log string) string {
		for _, l := range strings.Split(log, "\n") {
			if strings.HasPrefix(l, "attempt-") {
				return l
			}
		}
		return ""
	}
	if a, b := attemptLine(prev), attemptLine(cur); a == "" || a == b {
		t.Fatalf("previous attempt line %q, current %q: want two different ones", a, b)
	}
	if strings.Contains(prev, " stdout F ") {
		t.Fatalf("logs shows the raw CRI format:\n%s", prev)
	}
	// stdout and stderr are read concurrently, so their lines may interleave either way: compare
	// the tail with the end of the whole log.
	lines := strings.Split(strings.TrimSuffix(prev, "\n"), "\n")
	tail, _, _ := d.ctl("logs", "talk", "--previous", "--tail", "2")
	if want := strings.Join(lines[len(lines)-2:], "\n") + "\n"; tail != want {
		t.Fatalf("--tail 2 = %q, want %q", tail, want)
	}
	ts, _, _ := d.ctl("logs", "talk", "--previous", "--timestamps")
	for _, line := range strings.Split(strings.TrimSpace(ts), "\n") {
		stamp, _, _ := strings.Cut(line, " ")
		if _, err := time.Parse(time.RFC3339Nano, stamp); err != nil {
			t.Fatalf("--timestamps line %q: %v", line, err)
		}
	}
}

// Resource limits become cgroup limits; a container over its memory limit is OOMKilled.
func TestResourcesAndOOM(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("limits.yaml", `apiVersion: v1
kind: Pod
metadata: {name: limits}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    resources:
      limits: {cpu: 500m, memory: 48Mi}
`)
	d.writeManifest("oom.yaml", `apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: hog
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "head -c 200m /dev/zero | tail > /dev/null"]
    resources:
      limits: {memory: 24Mi}
`)
	d.waitRunning("limits", 60*time.Second)
	mem, _, _ := d.ctl("exec", "limits", "--", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	if strings.TrimSpace(mem) != "50331648" {
		t.Errorf("memory limit inside = %q, want 50331648", mem)
	}
	cpu, _, _ := d.ctl("exec", "limits", "--", "sh", "-c", "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu.max")
	if f := strings.Fields(cpu); len(f) == 0 || f[0] != "50000" {
		t.Errorf("cpu quota inside = %q, want 50000", cpu)
	}
	d.eventually(60*time.Second, "hog OOMKilled", func() (bool, string) {
		p := d.pod("oom")
		if p == nil || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		return term != nil && term.Reason == "OOMKilled" && term.ExitCode == 137 && p.Status.Phase == corev1.PodFailed,
			fmt.Sprintf("%s %+v", p.Status.Phase, p.Status.ContainerStatuses[0].State)
	})
	d.removeAndCheck("limits", "oom")
}

// A sidecar (an init container with restartPolicy Always) starts before the app containers,
// once its startup probe passed, and keeps running beside them.
func TestSidecar(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("side.yaml", `apiVersion: v1
kind: Pod
metadata: {name: side}
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: proxy
    image: minipod.local/busybox:1.35
    restartPolicy: Always
    command: ["sh", "-c", "sleep 1; echo proxied > /tmp/index.html; exec httpd -f -p 9090 -h /tmp"]
    startupProbe:
      tcpSocket: {port: 9090}
      periodSeconds: 1
      failureThreshold: 30
  containers:
  - name: app
    image: minipod.local/busybox:1.35
    # Fails at once unless the sidecar already serves.
    command: ["sh", "-c", "wget -qO- http://127.0.0.1:9090/ || exit 1; trap 'exit 0' TERM; while true; do sleep 1; done"]
`)
	d.eventually(60*time.Second, "sidecar and app running", func() (bool, string) {
		p := d.pod("side")
		if p == nil || len(p.Status.InitContainerStatuses) == 0 || len(p.Status.ContainerStatuses) == 0 {
			return false, "not listed"
		}
		side, app := p.Status.InitContainerStatuses[0], p.Status.ContainerStatuses[0]
		return p.Status.Phase == corev1.PodRunning && side.State.Running != nil && side.Ready && app.State.Running != nil && app.Ready,
			fmt.Sprintf("%s side %+v app %+v", p.Status.Phase, side.State, app.State)
	})
	if app := d.pod("side").Status.ContainerStatuses[0]; app.RestartCount != 0 {
		t.Errorf("the app started before its sidecar served: %d restarts", app.RestartCount)
	}
	// The app's output reaches its log a moment after it runs: poll for it.
	d.eventually(10*time.Second, "the sidecar's answer in the app's log", func() (bool, string) {
		out, errOut, _ := d.ctl("logs", "side", "-c", "app")
		return strings.Contains(out, "proxied"), fmt.Sprintf("log %q %s", out, errOut)
	})
	d.removeAndCheck("side")
}
