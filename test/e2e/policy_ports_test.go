package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// hostPort is outside allowHostNetwork: with only that rule, a pod could still declare
// hostPort: 22 and have portmap forward the node's SSH port to it. Under allowedHostPorts:
// ["8000-8999"] that pod is listed with PolicyViolation and the field that broke the rule, and
// nothing of it exists, no DNAT rule for port 22 above all, while a pod whose hostPort is in
// the range runs and answers on it. validate --config says the same before a file is dropped.
func TestPolicyHostPorts(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("policy:\n  allowHostNetwork: false\n  allowedHostPorts: [\"8000-8999\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inRange := testHostPort(8200) // this test network's own port in 8000-8999
	ports := func(hostPort int) string {
		return fmt.Sprintf("    ports:\n    - {containerPort: 8080, hostPort: %d}\n", hostPort)
	}
	files := map[string]string{
		"ssh.yaml": sleeperPod("ssh", ports(22)),
		"web.yaml": sleeperPod("web", ports(inRange)),
	}
	const sshRefusal = "spec.containers[0].ports[0].hostPort: Forbidden: host port 22 is not allowed by this node's policy (allowed: 8000-8999)"

	var paths []string
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, _ := exec.Command(filepath.Join(env.bin, "minipodctl"), append([]string{"validate", "--config", cfg}, paths...)...).CombinedOutput()
	if !hasLine(string(out), filepath.Join(dir, "ssh.yaml")+": PolicyViolation: ", sshRefusal) ||
		!strings.Contains(string(out), filepath.Join(dir, "web.yaml")+": valid") {
		t.Errorf("validate --config does not refuse ssh.yaml alone with %q:\n%s", sshRefusal, out)
	}

	d := newDaemon(t, "--config", cfg)
	d.start()
	for name, content := range files {
		d.writeManifest(name, content)
	}
	d.waitRunning("web", 60*time.Second)
	waitRefused(d, "ssh", "PolicyViolation", sshRefusal)

	// The pod in range answers on its port (through 127.0.0.1 only: no traffic to other
	// addresses of this machine); its DNAT rule is there, so the grep below can see one.
	d.eventually(20*time.Second, fmt.Sprintf("hostPort %d answers on 127.0.0.1", inRange), func() (bool, string) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", inRange))
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.TrimSpace(string(body)) == "web", fmt.Sprintf("body %q", body)
	})
	if rules := natRulesForPort(t, inRange); len(rules) == 0 {
		t.Errorf("no nat rule for the allowed hostPort %d: the check for port 22 would prove nothing", inRange)
	}
	// Nothing of the refused pod: no container, no portmap rule for the node's SSH port.
	if rules := natRulesForPort(t, 22); len(rules) != 0 {
		t.Errorf("nat rules forward port 22 to a refused pod:\n%s", strings.Join(rules, "\n"))
	}
	if got := podsInContainerd(t, d); fmt.Sprint(got) != "map[web:2]" {
		t.Errorf("containers per pod in containerd: %v, want only web's 2", got)
	}
	d.eventually(10*time.Second, "the refusal as an event", func() (bool, string) {
		out, _, _ := d.ctl("events", "ssh")
		return strings.Contains(out, "Warning") && strings.Contains(out, "PolicyViolation") &&
			strings.Contains(out, "spec.containers[0].ports[0].hostPort"), out
	})

	d.removeAndCheck("ssh", "web")
	if rules := natRulesForPort(t, inRange); len(rules) != 0 {
		t.Errorf("nat rules for hostPort %d outlive its pod:\n%s", inRange, strings.Join(rules, "\n"))
	}
}

// Sysctl names are validated as the API server validates them, and a pod may set the
// kubelet's safe sysctls and no other unless the node allows it (allowedUnsafeSysctls, as the
// kubelet's --allowed-unsafe-sysctls), with no policy configured at all: as a kubelet, minipod
// refuses such a pod with SysctlForbidden, and lists it with the field path. A
// daemon restarted with the sysctl allowed runs the pod, with the value set in its network
// namespace, and adopts the safe pod untouched.
func TestPolicySysctls(t *testing.T) {
	pod := func(name, sysctl string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  securityContext:
    sysctls: [%s]
  containers:
  - name: app
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"]
`, name, sysctl)
	}
	files := map[string]string{
		"safe.yaml":    pod("safe", `{name: net.ipv4.ip_unprivileged_port_start, value: "0"}`),
		"unsafe.yaml":  pod("unsafe", `{name: net.ipv4.ip_unprivileged_port_start, value: "0"}, {name: net.core.somaxconn, value: "1234"}`),
		"badname.yaml": pod("badname", `{name: net.core.SOMAXCONN, value: "1234"}`),
	}
	const unsafeRefusal = "spec.securityContext.sysctls[1].name: Forbidden: unsafe sysctl net.core.somaxconn is not allowed by this node's policy " +
		"(allowedUnsafeSysctls: none)"

	d := newDaemon(t) // no policy at all
	d.start()
	for name, content := range files {
		d.writeManifest(name, content)
	}
	d.waitRunning("safe", 60*time.Second)
	waitRefused(d, "unsafe", "SysctlForbidden", unsafeRefusal)
	waitRefused(d, "badname", "InvalidManifest", `spec.securityContext.sysctls[0].name: Invalid value: "net.core.SOMAXCONN": must have at most 253 characters`)
	if got := podsInContainerd(t, d); fmt.Sprint(got) != "map[safe:2]" {
		t.Errorf("containers per pod in containerd: %v, want only safe's 2", got)
	}
	sysctl := func(pod, path string) string {
		out, errs, code := d.ctl("exec", pod, "--", "cat", path)
		if code != 0 {
			t.Errorf("exec %s cat %s: exit %d %s", pod, path, code, errs)
		}
		return strings.TrimSpace(out)
	}
	if got := sysctl("safe", "/proc/sys/net/ipv4/ip_unprivileged_port_start"); got != "0" {
		t.Errorf("safe: ip_unprivileged_port_start = %q, want 0", got)
	}
	safeIDs := containerIDs(d.pod("safe"))

	d.stop(syscall.SIGTERM)
	d.extra = append(d.extra, "--policy", `{"allowedUnsafeSysctls":["net.core.*"]}`)
	d.start()
	d.waitRunning("unsafe", 60*time.Second)
	if got := sysctl("unsafe", "/proc/sys/net/core/somaxconn"); got != "1234" {
		t.Errorf("unsafe: somaxconn = %q, want 1234", got)
	}
	if p := d.pod("safe"); p == nil || p.Status.Phase != corev1.PodRunning || fmt.Sprint(containerIDs(p)) != fmt.Sprint(safeIDs) {
		t.Errorf("safe was not adopted unchanged: %v -> %v", safeIDs, containerIDs(p))
	}
	waitRefused(d, "badname", "InvalidManifest", `spec.securityContext.sysctls[0].name: Invalid value: "net.core.SOMAXCONN"`)

	d.removeAndCheck("safe", "unsafe", "badname")
}

// waitRefused waits until the daemon lists pod name as refused: failed, with the reason and a
// message containing want, and no container.
func waitRefused(d *daemon, name, reason, want string) {
	d.t.Helper()
	d.eventually(30*time.Second, name+" refused with "+reason, func() (bool, string) {
		p := d.pod(name)
		if p == nil {
			return false, name + " not listed"
		}
		if p.Status.Phase != corev1.PodFailed || p.Status.Reason != reason || !strings.Contains(p.Status.Message, want) ||
			filepath.Base(p.Annotations["minipod.io/manifest"]) != name+".yaml" || len(p.Status.ContainerStatuses) != 0 {
			return false, fmt.Sprintf("%s: %s %s %q", name, p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		return true, ""
	})
}

// natRulesForPort lists the rules of the nat table (iptables -t nat -S) that match the
// destination port, as portmap's DNAT rules do.
func natRulesForPort(t *testing.T, port int) []string {
	t.Helper()
	out, err := exec.Command("iptables", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v", err)
	}
	var rules []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l+" ", fmt.Sprintf("--dport %d ", port)) {
			rules = append(rules, l)
		}
	}
	return rules
}
