package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A node policy in the config file refuses the pods that break it: each is listed by
// `status -o json` with the reason PolicyViolation and the field path and rule it broke, told
// as a Warning event, and has nothing in containerd (not even a host directory it asked to
// have created), while the other pods run. A running pod edited into breaking it keeps its
// last good version; a fixed file runs; and since the policy is read at start, a restart with
// another policy admits what it now allows and stops what it now refuses. validate --config
// says the same before a file is dropped.
func TestPolicy(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	if err := os.MkdirAll(allowed, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	writeConfig := func(hostNetwork bool, caps string) {
		t.Helper()
		content := fmt.Sprintf(`# a node policy, as an operator writes it
resync: 20s
policy:
  allowPrivileged: false
  allowHostNetwork: %t
  allowHostPID: false
  allowHostIPC: false
  allowedHostPaths: [%s]
  allowedCapabilities: [%s]
`, hostNetwork, allowed, caps)
		if err := os.WriteFile(cfg, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig(false, "NET_BIND_SERVICE")

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
	privInit := `  initContainers:
  - name: setup
    image: minipod.local/busybox:1.35
    command: ["true"]
    securityContext: {privileged: true}
`
	lookalike := allowed + "-not"                          // shares the prefix's characters, not its directory
	escaped := filepath.Join(dir, "escaped")               // where the traversal would land
	traversal := allowed + "/../" + filepath.Base(escaped) // cleans to escaped
	files := map[string]string{
		"good.yaml":       pod("good", hostPathVol(filepath.Join(allowed, "sub")), mount+"    securityContext: {capabilities: {add: [NET_BIND_SERVICE]}}\n"),
		"privileged.yaml": pod("privileged", "", "    securityContext: {privileged: true}\n"),
		"privinit.yaml":   pod("privinit", privInit, ""),
		"hostnet.yaml":    pod("hostnet", "  hostNetwork: true\n", ""),
		"hostpid.yaml":    pod("hostpid", "  hostPID: true\n", ""),
		"hostipc.yaml":    pod("hostipc", "  hostIPC: true\n", ""),
		"outside.yaml":    pod("outside", hostPathVol("/etc"), mount),
		"lookalike.yaml":  pod("lookalike", hostPathVol(lookalike), mount),
		"traversal.yaml":  pod("traversal", hostPathVol(traversal), mount),
		"caps.yaml":       pod("caps", "", "    securityContext: {capabilities: {add: [SYS_ADMIN]}}\n"),
	}
	type refusal struct{ reason, message string }
	want := map[string]refusal{ // pod -> its reason and a part of its message
		"privileged": {"PolicyViolation", "spec.containers[0].securityContext.privileged: Forbidden: a privileged container is not allowed by this node's policy"},
		"privinit":   {"PolicyViolation", "spec.initContainers[0].securityContext.privileged: Forbidden"},
		"hostnet":    {"PolicyViolation", "spec.hostNetwork: Forbidden: the host's network namespace is not allowed by this node's policy"},
		"hostpid":    {"PolicyViolation", "spec.hostPID: Forbidden"},
		"hostipc":    {"PolicyViolation", "spec.hostIPC: Forbidden"},
		"outside":    {"PolicyViolation", "spec.volumes[0].hostPath.path: Forbidden: host path /etc is not under a directory this node's policy allows (" + allowed + ")"},
		"lookalike":  {"PolicyViolation", "spec.volumes[0].hostPath.path: Forbidden: host path " + lookalike + " is not under"},
		// The API server's validation refuses '..' in a host path before the policy is asked;
		// the policy would refuse it too (it compares cleaned paths).
		"traversal": {"InvalidManifest", "spec.volumes[0].hostPath.path: Invalid value: \"" + traversal + "\": must not contain '..'"},
		"caps":      {"PolicyViolation", "spec.containers[0].securityContext.capabilities.add[0]: Forbidden: capability SYS_ADMIN is not allowed by this node's policy (allowed: NET_BIND_SERVICE)"},
	}

	// validate --config says the same before anything runs; without it every file is valid.
	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	sort.Strings(paths)
	out, err := exec.Command(filepath.Join(env.bin, "minipodctl"), append([]string{"validate", "--config", cfg}, paths...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("validate --config: %v, want exit 1\n%s", err, out)
	}
	for name, w := range want {
		prefix := filepath.Join(dir, name) + ".yaml: "
		if w.reason == "PolicyViolation" {
			prefix += "PolicyViolation: "
		}
		if !hasLine(string(out), prefix, w.message) {
			t.Errorf("validate --config does not refuse %s with %q:\n%s", name, w.message, out)
		}
	}
	if !strings.Contains(string(out), filepath.Join(dir, "good.yaml")+": valid") {
		t.Errorf("validate --config refused the good pod:\n%s", out)
	}
	out, err = exec.Command(filepath.Join(env.bin, "minipodctl"), append([]string{"validate"}, paths...)...).CombinedOutput()
	if strings.Count(string(out), ": valid\n") != len(files)-1 || !strings.Contains(string(out), "traversal.yaml: spec.volumes[0].hostPath.path") {
		t.Errorf("validate without --config: %v, want every file but traversal.yaml valid\n%s", err, out)
	}

	d := newDaemon(t, "--config", cfg)
	d.start()
	for name, content := range files {
		d.writeManifest(name, content)
	}
	d.waitRunning("good", 60*time.Second)
	refused := func(name string, w refusal) func() (bool, string) {
		return func() (bool, string) {
			p := d.pod(name)
			if p == nil {
				return false, name + " not listed"
			}
			if p.Status.Phase != corev1.PodFailed || p.Status.Reason != w.reason || !strings.Contains(p.Status.Message, w.message) ||
				filepath.Base(p.Annotations["minipod.io/manifest"]) != name+".yaml" || len(p.Status.ContainerStatuses) != 0 {
				return false, fmt.Sprintf("%s: %s %s %q %s", name, p.Status.Phase, p.Status.Reason, p.Status.Message, p.Annotations["minipod.io/manifest"])
			}
			return true, ""
		}
	}
	for name, w := range want {
		d.eventually(30*time.Second, name+" refused in status -o json", refused(name, w))
		// A Warning event with the same reason and message, for describe and events.
		d.eventually(10*time.Second, name+" refusal as an event", func() (bool, string) {
			out, _, _ := d.ctl("events", name)
			return strings.Contains(out, "Warning") && strings.Contains(out, w.reason) && strings.Contains(out, strings.SplitN(w.message, ":", 2)[0]), out
		})
	}
	if out, _, _ := d.ctl("status"); !strings.Contains(out, "PolicyViolation") {
		t.Errorf("the table does not show PolicyViolation:\n%s", out)
	}
	if out, _, _ := d.ctl("describe", "caps"); !strings.Contains(out, "capability SYS_ADMIN") {
		t.Errorf("describe caps does not say why:\n%s", out)
	}

	// Nothing of the refused pods exists: only the good pod's sandbox and app container, and
	// no host directory that a refused pod asked to have created.
	if got := podsInContainerd(t, d); fmt.Sprint(got) != "map[good:2]" {
		t.Errorf("containers per pod in containerd: %v, want only good's 2", got)
	}
	for _, p := range []string{lookalike, escaped} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was created for a refused pod", p)
		}
	}
	if _, err := os.Stat(filepath.Join(allowed, "sub")); err != nil {
		t.Errorf("the allowed host path was not created for the good pod: %v", err)
	}

	// Editing the running pod into a refused one keeps the last good version running, says
	// why on the pod, and tells it as an event.
	ids := containerIDs(d.pod("good"))
	d.writeManifest("good.yaml", pod("good", "  hostNetwork: true\n", ""))
	d.eventually(20*time.Second, "refusal reported on the running pod", func() (bool, string) {
		p := d.pod("good")
		return p != nil && p.Status.Phase == corev1.PodRunning && strings.HasPrefix(p.Status.Message, "PolicyViolation: spec.hostNetwork: Forbidden") &&
			strings.HasSuffix(p.Status.Message, "the last good version keeps running"), fmt.Sprintf("%+v", p.Status.Message)
	})
	d.eventually(10*time.Second, "the refused edit as an event", func() (bool, string) {
		out, _, _ := d.ctl("events", "good")
		return strings.Contains(out, "PolicyViolation") && strings.Contains(out, "spec.hostNetwork"), out
	})
	if got := containerIDs(d.pod("good")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("the running pod was restarted by a refused edit: %v -> %v", ids, got)
	}
	// Back to the good version: the same pod, nothing restarted, the message gone.
	d.writeManifest("good.yaml", files["good.yaml"])
	d.eventually(20*time.Second, "good's message cleared", func() (bool, string) {
		p := d.pod("good")
		return p != nil && p.Status.Message == "" && fmt.Sprint(containerIDs(p)) == fmt.Sprint(ids), fmt.Sprintf("%+v", p)
	})

	// A fixed file runs.
	d.writeManifest("privileged.yaml", pod("privileged", "", "    securityContext: {privileged: false}\n"))
	d.waitRunning("privileged", 60*time.Second)
	privIDs := containerIDs(d.pod("privileged"))

	// The policy is read at start. Restarted with hostNetwork allowed and no capability
	// allowed: hostnet runs, good (which adds NET_BIND_SERVICE) is refused and stopped, and
	// privileged, which breaks neither policy, is adopted without a restart.
	d.stop(syscall.SIGTERM)
	writeConfig(true, "")
	d.start()
	d.waitRunning("hostnet", 60*time.Second)
	d.eventually(60*time.Second, "good refused by the new policy", refused("good", refusal{"PolicyViolation",
		"spec.containers[0].securityContext.capabilities.add[0]: Forbidden: capability NET_BIND_SERVICE is not allowed by this node's policy (allowed: none)"}))
	d.eventually(30*time.Second, "good's containers removed", func() (bool, string) {
		got := podsInContainerd(t, d)
		return fmt.Sprint(got) == "map[hostnet:2 privileged:2]", fmt.Sprint(got)
	})
	if p := d.pod("privileged"); p == nil || p.Status.Phase != corev1.PodRunning || fmt.Sprint(containerIDs(p)) != fmt.Sprint(privIDs) {
		t.Errorf("privileged was not adopted unchanged: %v -> %v", privIDs, containerIDs(p))
	}
	for _, name := range []string{"hostpid", "hostipc", "outside"} {
		d.eventually(10*time.Second, name+" still refused", refused(name, want[name]))
	}
	d.eventually(10*time.Second, "caps still refused", refused("caps", refusal{"PolicyViolation", "capability SYS_ADMIN is not allowed by this node's policy (allowed: none)"}))

	var names []string
	for name := range files {
		names = append(names, strings.TrimSuffix(name, ".yaml"))
	}
	sort.Strings(names)
	d.removeAndCheck(names...)
}

// podsInContainerd counts the containers of each pod in the daemon's containerd namespace, by
// their pod-name label. A container removed between the listing and its info is not counted.
func podsInContainerd(t *testing.T, d *daemon) map[string]int {
	t.Helper()
	ctr := func(args ...string) ([]byte, error) {
		return exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).Output()
	}
	ids, err := ctr("containers", "ls", "-q")
	if err != nil {
		t.Fatalf("ctr containers ls: %v", err)
	}
	n := map[string]int{}
	for _, id := range strings.Fields(string(ids)) {
		out, err := ctr("containers", "info", id)
		if err != nil {
			continue
		}
		var info struct{ Labels map[string]string }
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("ctr containers info %s: %v\n%s", id, err, out)
		}
		n[info.Labels["minipod.io/pod-name"]]++
	}
	return n
}

// hasLine reports whether some line of out starts with prefix and contains want.
func hasLine(out, prefix, want string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) && strings.Contains(l, want) {
			return true
		}
	}
	return false
}
