package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Volumes: init containers hand data to the app through an emptyDir; configMap and secret
// volumes come from local directories and follow their changes; hostPath type checks and a
// missing configMap key are clear reasons; everything goes with the pod.
func TestVolumes(t *testing.T) {
	cmDir, secDir := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(cmDir, "app"), 0o755)
	os.WriteFile(filepath.Join(cmDir, "app", "greeting"), []byte("hello v1"), 0o644)
	os.MkdirAll(filepath.Join(secDir, "db"), 0o700)
	os.WriteFile(filepath.Join(secDir, "db", "password"), []byte("hunter2"), 0o600)
	host := t.TempDir()
	d := newDaemon(t, "--configmap-dir", cmDir, "--secret-dir", secDir)
	d.start()
	d.writeManifest("vol.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: vol, labels: {tier: backend}}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: first
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo first >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  - name: second
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo second >> /work/order"]
    volumeMounts: [{name: work, mountPath: /work}]
  containers:
  - name: app
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env:
    - {name: PW, valueFrom: {secretKeyRef: {name: db, key: password}}}
    volumeMounts:
    - {name: work, mountPath: /work}
    - {name: mem, mountPath: /mem}
    - {name: cfg, mountPath: /etc/cfg}
    - {name: sec, mountPath: /etc/sec}
    - {name: info, mountPath: /etc/podinfo}
    - {name: host, mountPath: /host, readOnly: true}
  volumes:
  - {name: work, emptyDir: {}}
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 8Mi}}
  - {name: cfg, configMap: {name: app}}
  - {name: sec, secret: {secretName: db}}
  - {name: info, downwardAPI: {items: [{path: labels, fieldRef: {fieldPath: metadata.labels}}]}}
  - {name: host, hostPath: {path: %s, type: Directory}}
`, host))
	d.writeManifest("badhost.yaml", `apiVersion: v1
kind: Pod
metadata: {name: badhost}
spec:
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["true"]
    volumeMounts: [{name: h, mountPath: /h}]
  volumes:
  - {name: h, hostPath: {path: /nonexistent/minipod-test, type: Directory}}
`)
	d.writeManifest("nokey.yaml", `apiVersion: v1
kind: Pod
metadata: {name: nokey}
spec:
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["true"]
    env: [{name: X, valueFrom: {configMapKeyRef: {name: app, key: missing}}}]
`)
	d.waitRunning("vol", 60*time.Second)
	exec := func(cmd string) string {
		out, errs, code := d.ctl("exec", "vol", "-c", "app", "--", "sh", "-c", cmd)
		if code != 0 {
			t.Errorf("exec %q: code %d: %s", cmd, code, errs)
		}
		return out
	}
	if got := exec("cat /work/order"); got != "first\nsecond\n" {
		t.Errorf("init containers' output = %q, want first then second", got)
	}
	if got := exec("cat /etc/cfg/greeting; echo; cat /etc/sec/password; echo; echo $PW"); got != "hello v1\nhunter2\nhunter2\n" {
		t.Errorf("configMap/secret = %q", got)
	}
	if got := exec("cat /etc/podinfo/labels"); !strings.Contains(got, `tier="backend"`) {
		t.Errorf("downwardAPI labels = %q", got)
	}
	if got := exec("grep ' /mem ' /proc/mounts"); !strings.Contains(got, "tmpfs") || !strings.Contains(got, "size=8192k") {
		t.Errorf("memory emptyDir: %q", got)
	}
	if _, _, code := d.ctl("exec", "vol", "-c", "app", "--", "touch", "/host/x"); code == 0 {
		t.Errorf("readOnly hostPath is writable")
	}
	// A changed configMap reaches the mounted volume without a restart.
	os.WriteFile(filepath.Join(cmDir, "app", "greeting"), []byte("hello v2"), 0o644)
	d.eventually(30*time.Second, "configMap update visible", func() (bool, string) {
		out, _, _ := d.ctl("exec", "vol", "-c", "app", "--", "cat", "/etc/cfg/greeting")
		return out == "hello v2", out
	})
	if n := d.pod("vol").Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("configMap update restarted the container %d times", n)
	}
	reason := func(name, want, msgPart string) {
		d.eventually(30*time.Second, name+" "+want, func() (bool, string) {
			p := d.pod(name)
			if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
				return false, "not waiting"
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			return w.Reason == want && strings.Contains(w.Message, msgPart), w.Reason + ": " + w.Message
		})
	}
	reason("badhost", "ContainerCreating", "FailedMount")
	reason("nokey", "CreateContainerConfigError", "couldn't find key missing in configmap app")

	podDir := filepath.Join(d.state, "pods", string(d.pod("vol").UID))
	d.removeManifest("vol.yaml")
	d.waitGone("vol", 30*time.Second)
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod dir %s left: %v", podDir, err)
	}
	if _, err := os.Stat(host); err != nil {
		t.Errorf("the hostPath directory was removed with the pod: %v", err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), podDir) {
		t.Errorf("mounts of the pod's volumes left:\n%s", mi)
	}
}
