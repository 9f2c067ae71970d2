package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/pod"
)

// sleeper is a container that runs until told to stop.
const sleeper = `image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`

// waitingState returns the first container's waiting reason and message, and whether it runs.
func waitingState(p *corev1.Pod) (reason, message string, running bool) {
	if p == nil || len(p.Status.ContainerStatuses) == 0 {
		return "", "", false
	}
	st := p.Status.ContainerStatuses[0].State
	if st.Running != nil {
		return "", "", true
	}
	if st.Waiting != nil {
		return st.Waiting.Reason, st.Waiting.Message, false
	}
	return "", "", false
}

// A configMap key that is a symbolic link to a root-only host file is refused, for env,
// envFrom and a volume, with the kubelet's reasons in status (issue 20): the file's content
// reaches no container, no status and no file of the daemon's. A plain configMap beside it
// is used as always.
func TestConfigMapSafety(t *testing.T) {
	cmDir, host := t.TempDir(), t.TempDir()
	const content = "root-only-content-7d3f91"
	private := filepath.Join(host, "private")
	if err := os.WriteFile(private, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"leak", "good"} {
		if err := os.Mkdir(filepath.Join(cmDir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(private, filepath.Join(cmDir, "leak", "passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cmDir, "good", "greeting"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "--configmap-dir", cmDir)
	d.start()
	manifest := func(name, body string) {
		d.writeManifest(name+".yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    %s
%s`, name, sleeper, body))
	}
	manifest("good", `    env: [{name: GREETING, valueFrom: {configMapKeyRef: {name: good, key: greeting}}}]
    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes: [{name: cfg, configMap: {name: good}}]
`)
	manifest("envleak", `    env: [{name: X, valueFrom: {configMapKeyRef: {name: leak, key: passwd}}}]
`)
	manifest("envfromleak", `    envFrom: [{configMapRef: {name: leak}}]
`)
	manifest("volleak", `    volumeMounts: [{name: cfg, mountPath: /cfg}]
  volumes: [{name: cfg, configMap: {name: leak}}]
`)
	d.waitRunning("good", 60*time.Second)
	if out, errs, code := d.ctl("exec", "good", "--", "sh", "-c", "echo $GREETING; cat /cfg/greeting"); code != 0 || out != "hello\nhello" {
		t.Errorf("plain configMap: %q (exit %d, %s), want hello twice", out, code, errs)
	}

	for _, tc := range []struct{ pod, reason, part string }{
		{"envleak", "CreateContainerConfigError", `configmap "leak"`},
		{"envfromleak", "CreateContainerConfigError", `configmap "leak"`},
		{"volleak", "ContainerCreating", `FailedMount: volume "cfg": configmap "leak"`},
	} {
		var reason, msg string
		d.eventually(60*time.Second, tc.pod+" refused", func() (bool, string) {
			var running bool
			reason, msg, running = waitingState(d.pod(tc.pod))
			if running {
				return true, ""
			}
			return reason == tc.reason && strings.Contains(msg, "passwd"), reason + ": " + msg
		})
		t.Logf("%s: %s: %s", tc.pod, reason, msg)
		if reason != tc.reason || !strings.Contains(msg, tc.part) || !strings.Contains(msg, "symbolic link") {
			t.Errorf("%s: waiting %q %q, want %s naming %s, the key and the link", tc.pod, reason, msg, tc.reason, tc.part)
		}
		if out, _, _ := d.ctl("exec", tc.pod, "--", "sh", "-c", "env; cat /cfg/* 2>/dev/null"); strings.Contains(out, content) {
			t.Errorf("%s: the root-only file's content is in the container:\n%s", tc.pod, out)
		}
	}
	// Nowhere else either: status, describe, the state and log directories.
	for _, args := range [][]string{{"status", "-o", "json"}, {"describe", "volleak"}, {"describe", "envleak"}, {"events"}} {
		if out, _, _ := d.ctl(args...); strings.Contains(out, content) {
			t.Errorf("minipodctl %v shows the root-only file's content", args)
		}
	}
	for _, dir := range []string{d.state, d.logs} {
		filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() {
				return nil
			}
			if b, _ := os.ReadFile(p); strings.Contains(string(b), content) {
				t.Errorf("%s holds the root-only file's content", p)
			}
			return nil
		})
	}
}

// A FIFO as a configMap key used in env is refused at once with CreateContainerConfigError
// (issue 20): reading it does not hang the pod's start, which would hold one of the node's
// start slots for good. With every slot's pod on such a FIFO, a pod written afterwards still
// starts.
func TestConfigMapSafetyFIFO(t *testing.T) {
	cmDir := t.TempDir()
	if err := os.Mkdir(filepath.Join(cmDir, "fifo"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(cmDir, "fifo", "key"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "--configmap-dir", cmDir)
	d.start()
	// As many as the daemon starts at once (the same machine, so the same CPU count);
	// host-network pods, which are cheap to make.
	n := pod.StartSlots(goruntime.NumCPU())
	for i := range n {
		d.writeManifest(fmt.Sprintf("fifo-%d.yaml", i), fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: fifo-%d}
spec:
  hostNetwork: true
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    %s
    env: [{name: X, valueFrom: {configMapKeyRef: {name: fifo, key: key}}}]
`, i, sleeper))
	}
	written := time.Now()
	reported := map[string]string{}
	for deadline := time.Now().Add(90 * time.Second); len(reported) < n && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, p := range d.pods() {
			if reason, msg, _ := waitingState(&p); strings.HasPrefix(p.Name, "fifo-") && reason == "CreateContainerConfigError" {
				reported[p.Name] = msg
			}
		}
	}
	t.Logf("%d of %d FIFO pods reported within %s", len(reported), n, time.Since(written).Round(time.Second))
	for name, msg := range reported {
		if name == "fifo-0" {
			t.Logf("%s: CreateContainerConfigError: %s", name, msg)
		}
		if !strings.Contains(msg, `configmap "fifo"`) || !strings.Contains(msg, "key") || !strings.Contains(msg, "not a regular file") {
			t.Errorf("%s: message %q, want it to name the configMap, the key and why", name, msg)
		}
	}
	d.writeManifest("after.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: after}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    %s
`, sleeper))
	d.waitRunning("after", 60*time.Second)
	if len(reported) < n {
		t.Errorf("only %d of %d pods whose env reads a FIFO reported CreateContainerConfigError within 90 s", len(reported), n)
	}
}
