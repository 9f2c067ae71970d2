package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A node policy in the config file refuses pods that break it, each with the field path and
// rule in status, creates nothing in containerd for them, and leaves the other pods alone; a
// running pod edited into breaking it keeps its last good version; validate --config applies
// the same policy before a file is dropped.
func TestNodePolicy(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	if err := os.MkdirAll(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`policy:
  allowPrivileged: false
  allowHostNetwork: false
  allowHostPID: false
  allowedHostPaths: [%s]
  allowedCapabilities: [NET_BIND_SERVICE]
`, allowed)), 0o644)

	pod := func(name, spec, ctr string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
%s  containers:
  - name: app
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"]
%s`, name, spec, ctr)
	}
	hostPathVol := func(path string) string {
		return fmt.Sprintf("  volumes:\n  - name: h\n    hostPath: {path: %s, type: DirectoryOrCreate}\n", path)
	}
	mount := "    volumeMounts: [{name: h, mountPath: /h}]\n"
	files := map[string]string{
		"good.yaml":       pod("good", hostPathVol(filepath.Join(allowed, "sub")), mount+"    securityContext: {capabilities: {add: [NET_BIND_SERVICE]}}\n"),
		"privileged.yaml": pod("privileged", "", "    securityContext: {privileged: true}\n"),
		"hostnet.yaml":    pod("hostnet", "  hostNetwork: true\n", ""),
		"hostpid.yaml":    pod("hostpid", "  hostPID: true\n", ""),
		"outside.yaml":    pod("outside", hostPathVol("/etc"), mount),
		"lookalike.yaml":  pod("lookalike", hostPathVol(allowed+"-not"), mount),
		"caps.yaml":       pod("caps", "", "    securityContext: {capabilities: {add: [SYS_ADMIN]}}\n"),
	}
	want := map[string]string{ // file -> field path in the refusal
		"privileged.yaml": "spec.containers[0].securityContext.privileged: Forbidden",
		"hostnet.yaml":    "spec.hostNetwork: Forbidden",
		"hostpid.yaml":    "spec.hostPID: Forbidden",
		"outside.yaml":    "spec.volumes[0].hostPath.path: Forbidden: host path /etc is not under",
		"lookalike.yaml":  "spec.volumes[0].hostPath.path: Forbidden",
		"caps.yaml":       "spec.containers[0].securityContext.capabilities.add[0]: Forbidden: capability SYS_ADMIN",
	}

	// validate --config says the same before anything runs.
	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o644)
		paths = append(paths, p)
	}
	out, err := exec.Command(filepath.Join(env.bin, "minipodctl"), append([]string{"validate", "--config", cfg}, paths...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("validate --config: %v, want exit 1\n%s", err, out)
	}
	for name, w := range want {
		if !regexpLine(string(out), filepath.Join(dir, name)+": PolicyViolation: ", w) {
			t.Errorf("validate --config does not refuse %s with %q:\n%s", name, w, out)
		}
	}
	if !strings.Contains(string(out), filepath.Join(dir, "good.yaml")+": valid") {
		t.Errorf("validate --config refused the good pod:\n%s", out)
	}
	// Without the policy every file is valid.
	out, err = exec.Command(filepath.Join(env.bin, "minipodctl"), append([]string{"validate"}, paths...)...).CombinedOutput()
	if err != nil {
		t.Errorf("validate without --config: %v\n%s", err, out)
	}

	d := newDaemon(t, "--config", cfg)
	d.start()
	for name, content := range files {
		d.writeManifest(name, content)
	}
	d.waitRunning("good", 60*time.Second)
	d.eventually(30*time.Second, "every refusal in status -o json", func() (bool, string) {
		byFile := map[string]corev1.Pod{}
		for _, p := range d.pods() {
			byFile[filepath.Base(p.Annotations["minipod.io/manifest"])] = p
		}
		for name, w := range want {
			p, ok := byFile[name]
			if !ok {
				return false, name + " not listed"
			}
			if p.Status.Reason != "PolicyViolation" || !strings.Contains(p.Status.Message, w) {
				return false, fmt.Sprintf("%s: %s %q", name, p.Status.Reason, p.Status.Message)
			}
			if p.Name != strings.TrimSuffix(name, ".yaml") {
				return false, fmt.Sprintf("%s listed as %q", name, p.Name)
			}
		}
		return true, ""
	})
	// Nothing of the refused pods exists in containerd: only the good pod's sandbox and app.
	ctrOut, _ := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "containers", "ls", "-q").Output()
	if n := len(strings.Fields(string(ctrOut))); n != 2 {
		t.Errorf("%d containers in containerd, want the good pod's 2:\n%s", n, ctrOut)
	}
	// The good pod uses its host path.
	if _, err := os.Stat(filepath.Join(allowed, "sub")); err != nil {
		t.Errorf("the allowed host path was not created: %v", err)
	}

	// Editing the running pod into a refused one keeps the last good version running.
	ids := containerIDs(d.pod("good"))
	d.writeManifest("good.yaml", pod("good", "  hostNetwork: true\n", ""))
	d.eventually(20*time.Second, "refusal reported on the running pod", func() (bool, string) {
		p := d.pod("good")
		return p != nil && p.Status.Phase == corev1.PodRunning && strings.Contains(p.Status.Message, "PolicyViolation") &&
			strings.Contains(p.Status.Message, "spec.hostNetwork"), fmt.Sprintf("%+v", p.Status.Message)
	})
	if got := containerIDs(d.pod("good")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("the running pod was restarted by a refused edit: %v -> %v", ids, got)
	}
	// A fixed file applies.
	d.writeManifest("privileged.yaml", pod("privileged", "", "    securityContext: {privileged: false}\n"))
	d.waitRunning("privileged", 60*time.Second)
	for name := range files {
		d.removeManifest(name)
	}
	d.waitGone("good", 60*time.Second)
	d.waitGone("privileged", 60*time.Second)
}

// regexpLine reports whether some line of out starts with prefix and contains want.
func regexpLine(out, prefix, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, want) {
			return true
		}
	}
	return false
}
