package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// configFile is a ConfigMap, a Secret and a pod that uses both, by env and by volume.
func configFile(greeting string) string { return objectsFile("objects", "app", "db", greeting, false) }

// objectsFile is configFile with other names, and an immutable ConfigMap if asked.
func objectsFile(pod, cm, secret, greeting string, immutable bool) string {
	imm := ""
	if immutable {
		imm = "immutable: true\n"
	}
	return fmt.Sprintf(`apiVersion: v1
kind: ConfigMap
metadata: {name: %[2]s}
%[5]sdata:
  greeting: %[4]s
binaryData:
  raw.bin: AAEC
---
apiVersion: v1
kind: Secret
metadata: {name: %[3]s}
data:
  password: b2xk
stringData:
  password: s3cr3t
---
apiVersion: v1
kind: Pod
metadata: {name: %[1]s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    env:
    - {name: GREETING, valueFrom: {configMapKeyRef: {name: %[2]s, key: greeting}}}
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: %[3]s, key: password}}}
    volumeMounts:
    - {name: cfg, mountPath: /etc/app}
    - {name: sec, mountPath: /etc/db}
  volumes:
  - {name: cfg, configMap: {name: %[2]s}}
  - {name: sec, secret: {secretName: %[3]s}}
`, pod, cm, secret, greeting, imm)
}

// A file's ConfigMap and Secret reach its pod by env and by volume, before the directory's of
// the same name (and the pod says so); editing the ConfigMap's document updates the mounted
// file without restarting the container, also after the daemon restarted; a world-readable file with a Secret and a Deployment
// are reported with the way out; removing the file removes the pod and leaves nothing behind.
func TestManifestConfigMapSecret(t *testing.T) {
	t.Parallel()
	cmDir, secDir := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(cmDir, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cmDir, "app", "greeting"), []byte("from-dir"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "--configmap-dir", cmDir, "--secret-dir", secDir)
	d.start()
	path := d.writeManifestMode("objects.yaml", configFile("hello"), 0o600)
	p := d.waitRunning("objects", 60*time.Second)
	if got := p.Annotations["minipod.io/manifest"]; got != path {
		t.Fatalf("minipod.io/manifest %q, want %q", got, path)
	}
	out, errOut, code := d.ctl("exec", "objects", "--", "sh", "-c", `echo "$GREETING $PASSWORD"; cat /etc/app/greeting; echo; cat /etc/db/password; echo; od -An -tx1 /etc/app/raw.bin`)
	if want := "hello s3cr3t\nhello\ns3cr3t\n 00 01 02\n"; code != 0 || out != want {
		t.Fatalf("exec: code %d out %q err %q, want %q", code, out, errOut, want)
	}
	want := fmt.Sprintf("ManifestOverride: ConfigMap app is defined by %s and by %s: the manifest file's is used", path, filepath.Join(cmDir, "app"))
	d.eventually(10*time.Second, "the override told", func() (bool, string) {
		p := d.pod("objects")
		return p != nil && p.Status.Message == want, fmt.Sprintf("%+v", p.Status.Message)
	})
	if out, _, _ := d.ctl("describe", "objects"); !strings.Contains(out, "ManifestOverride") {
		t.Errorf("describe shows no ManifestOverride event:\n%s", out)
	}
	ids := containerIDs(d.pod("objects"))

	// Editing the ConfigMap's document: the mounted file follows, the container stays.
	d.writeManifestMode("objects.yaml", configFile("hello-again"), 0o600)
	d.eventually(45*time.Second, "the mounted greeting updated", func() (bool, string) {
		out, _, code := d.ctl("exec", "objects", "--", "cat", "/etc/app/greeting")
		return code == 0 && out == "hello-again", out
	})
	p = d.pod("objects")
	if got := containerIDs(p); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("editing the ConfigMap restarted the pod: %v -> %v", ids, got)
	}
	if rc := p.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Fatalf("restartCount %d, want 0", rc)
	}

	// A restarted daemon reads the file again: the pod is adopted as it runs, and the next
	// edit still reaches it.
	d.stop(syscall.SIGTERM)
	d.start()
	d.waitRunning("objects", 30*time.Second)
	d.writeManifestMode("objects.yaml", configFile("after-restart"), 0o600)
	d.eventually(45*time.Second, "the mounted greeting updated after a restart", func() (bool, string) {
		out, _, code := d.ctl("exec", "objects", "--", "cat", "/etc/app/greeting")
		return code == 0 && out == "after-restart", out
	})
	if got := containerIDs(d.pod("objects")); strings.Join(got, ",") != strings.Join(ids, ",") {
		t.Fatalf("the daemon's restart restarted the pod: %v -> %v", ids, got)
	}

	// An immutable ConfigMap whose document changes: the file is refused as the API server
	// refuses the update, and the pod keeps the old content. Another file that defines app
	// again is a NameConflict, listed under its file name since it holds no pod.
	d.writeManifestMode("frozen.yaml", objectsFile("frozen", "frozen", "frozen", "frozen", true), 0o600)
	d.waitRunning("frozen", 60*time.Second)
	d.writeManifestMode("frozen.yaml", objectsFile("frozen", "frozen", "frozen", "thawed", true), 0o600)
	d.writeManifest("dup.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\ndata: {greeting: dup}\n")
	d.eventually(30*time.Second, "the immutable change refused and the conflict listed", func() (bool, string) {
		p := d.pod("frozen")
		if p == nil || !strings.Contains(p.Status.Message, "ConfigMap frozen: data: Forbidden: field is immutable when `immutable` is set") {
			return false, fmt.Sprintf("frozen: %+v", p)
		}
		c := d.pod("dup.yaml")
		if c == nil || c.Status.Reason != "NameConflict" || c.Status.Message != "ConfigMap default/app is already defined by "+path+"; this file's definition is ignored" {
			return false, fmt.Sprintf("dup: %+v", c)
		}
		return true, ""
	})
	if out, _, code := d.ctl("exec", "frozen", "--", "cat", "/etc/app/greeting"); code != 0 || out != "frozen" {
		t.Fatalf("the immutable ConfigMap's volume holds %q (exit %d), want frozen", out, code)
	}
	if out, _, code := d.ctl("exec", "objects", "--", "cat", "/etc/app/greeting"); code != 0 || out != "after-restart" {
		t.Fatalf("the conflicting file changed the ConfigMap: %q (exit %d)", out, code)
	}
	d.removeManifest("dup.yaml")
	d.removeManifest("frozen.yaml")

	// A file with a Secret that others may read is refused, with the fix; a Deployment is
	// told to be a Pod.
	open := d.writeManifest("open.yaml", objectsFile("open", "open", "open", "x", false))
	d.writeManifest("deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: deploy}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: busybox}]\n")
	d.eventually(30*time.Second, "the open file and the deployment reported", func() (bool, string) {
		p := d.pod("open")
		if p == nil || p.Status.Reason != "InsecureManifestPermissions" || !strings.Contains(p.Status.Message, "chmod 600 "+open) {
			return false, fmt.Sprintf("open: %+v", p)
		}
		dp := d.pod("deploy")
		if dp == nil || dp.Status.Reason != "InvalidManifest" ||
			dp.Status.Message != "kind: Deployment is not supported: minipod runs v1 Pods, ConfigMaps and Secrets; use the Deployment's pod template (spec.template) as a Pod" {
			return false, fmt.Sprintf("deploy: %+v", dp)
		}
		return true, ""
	})
	out, _, _ = d.ctl("status")
	if !strings.Contains(out, "InsecureManifestPermissions") {
		t.Errorf("status does not show the refusal:\n%s", out)
	}
	d.removeManifest("open.yaml")
	d.removeManifest("deploy.yaml")

	// Removing the file removes the pod, and nothing of it is left.
	ip := d.pod("objects").Status.PodIP
	d.removeManifest("objects.yaml")
	d.waitGone("objects", 30*time.Second)
	d.waitGone("frozen", 30*time.Second)
	d.eventually(15*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(ip)
		return len(left) == 0, strings.Join(left, "\n")
	})
}
