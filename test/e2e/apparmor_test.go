package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/apparmor"
)

// A pod that asks for an AppArmor profile is never run without it. On a node without AppArmor
// (this test's usual host: /sys/module/apparmor/parameters/enabled absent or N) the kubelet
// refuses such a pod at admission with the reason AppArmor and "Cannot enforce AppArmor:
// AppArmor is not enabled on the host"; minipod lists it so, tells it as a Warning event and
// makes nothing of it, for the field (RuntimeDefault) as for the legacy annotation
// (localhost/foo). A pod that asks for Unconfined runs, with no profile in its OCI spec. On a
// node with AppArmor the same pods are checked the way containerd's CRI treats them: the
// default profile applied, a profile that is not loaded a CreateContainerError.
func TestAppArmor(t *testing.T) {
	pod := func(name, meta, podSC, ctrSC string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
%sspec:
  terminationGracePeriodSeconds: 1
%s  containers:
  - name: app
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"]
%s`, name, meta, podSC, ctrSC)
	}
	files := map[string]string{
		"aa-default.yaml": pod("aa-default", "", "  securityContext:\n    appArmorProfile: {type: RuntimeDefault}\n", ""),
		"aa-legacy.yaml": pod("aa-legacy",
			"  annotations:\n    container.apparmor.security.beta.kubernetes.io/app: localhost/foo\n", "", ""),
		"aa-unconfined.yaml": pod("aa-unconfined", "", "",
			"    securityContext:\n      appArmorProfile: {type: Unconfined}\n"),
	}

	d := newDaemon(t)
	d.start()
	for name, content := range files {
		d.writeManifest(name, content)
	}
	d.waitRunning("aa-unconfined", 60*time.Second)

	host := apparmor.Detect("/")
	switch {
	case !host.Enabled:
		const refusal = "Cannot enforce AppArmor: AppArmor is not enabled on the host"
		for _, name := range []string{"aa-default", "aa-legacy"} {
			waitRefused(d, name, "AppArmor", refusal)
			if p := d.pod(name); p != nil && p.Status.Message != refusal {
				t.Errorf("%s: message %q, want the kubelet's %q", name, p.Status.Message, refusal)
			}
			d.eventually(10*time.Second, name+"'s refusal as an event", func() (bool, string) {
				out, _, _ := d.ctl("events", name)
				return strings.Contains(out, "Warning") && strings.Contains(out, "AppArmor") &&
					strings.Contains(out, "AppArmor is not enabled on the host"), out
			})
		}
		if got := podsInContainerd(t, d); fmt.Sprint(got) != "map[aa-unconfined:2]" {
			t.Errorf("containers per pod in containerd: %v, want only aa-unconfined's 2", got)
		}
		if out, _, _ := d.ctl("status"); !hasLine(out, "aa-default ", "AppArmor") || !hasLine(out, "aa-legacy ", "AppArmor") {
			t.Errorf("status does not show the refused pods with the reason AppArmor:\n%s", out)
		}
	case host.Supported:
		// Not run on the machine this test was written on (no AppArmor there): the decisions
		// are unit-tested with the host injected (pkg/apparmor, pkg/runtime).
		d.waitRunning("aa-default", 60*time.Second)
		if got := ociAppArmor(t, d, "aa-default"); got != apparmor.DefaultProfile {
			t.Errorf("aa-default: apparmor profile in the OCI spec %q, want %q", got, apparmor.DefaultProfile)
		}
		d.eventually(30*time.Second, "aa-legacy waits for its profile", func() (bool, string) {
			p := d.pod("aa-legacy")
			if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
				return false, fmt.Sprintf("%+v", p)
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			return w.Reason == "CreateContainerError" && strings.Contains(w.Message, "apparmor profile not found foo"), w.Reason + ": " + w.Message
		})
	default:
		t.Fatalf("AppArmor is enabled in the kernel but /sbin/apparmor_parser is missing (or $container is set): " +
			"install apparmor, or run this test on a host without AppArmor")
	}
	if got := ociAppArmor(t, d, "aa-unconfined"); got != "" {
		t.Errorf("aa-unconfined: apparmor profile in the OCI spec %q, want none", got)
	}

	d.removeAndCheck("aa-default", "aa-legacy", "aa-unconfined")
}

// ociAppArmor returns the AppArmor profile in the OCI spec of pod's app container.
func ociAppArmor(t *testing.T, d *daemon, pod string) string {
	t.Helper()
	p := d.pod(pod)
	if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].ContainerID == "" {
		t.Fatalf("%s has no container: %+v", pod, p)
	}
	id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://")
	out, err := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "containers", "info", id).Output()
	if err != nil {
		t.Fatalf("ctr containers info %s: %v", id, err)
	}
	var info struct {
		Spec struct {
			Process struct {
				ApparmorProfile string `json:"apparmorProfile"`
			} `json:"process"`
		}
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatalf("ctr containers info %s: %v", id, err)
	}
	return info.Spec.Process.ApparmorProfile
}
