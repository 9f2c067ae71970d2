package e2e

import (
	"fmt"
	"os"
	"os/exec"
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

// mountPropagation on hostPath volumeMounts, on the kubelet's terms: None (rprivate) sees no
// host mount made after the container started, HostToContainer (rslave) sees it, Bidirectional
// (rshared, privileged containers only) also hands the container's own mounts back to the
// host. The host path must be a shared mount for either; this host's / is private, so the test
// makes its own (bind H on itself, make it shared) and a private one to see the refusal.
func TestMountPropagation(t *testing.T) {
	base := t.TempDir()
	shared, private := filepath.Join(base, "shared"), filepath.Join(base, "private")
	// Registered after TempDir, so it runs before the directory is removed, and before newDaemon,
	// so after the daemon's cleanup: lazily unmount, innermost first, whatever is mounted below
	// base (the test's own mounts and what the Bidirectional container mounted), even on failure.
	t.Cleanup(func() { unmountUnder(base) })
	mount := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v: %s", args, err, out)
		}
	}
	for _, dir := range []string{shared, private} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		mount("--bind", dir, dir)
	}
	mount("--make-rshared", shared)
	mount("--make-rprivate", private)

	d := newDaemon(t)
	d.start()
	loop := `trap 'exit 0' TERM; while true; do sleep 1; done`
	d.writeManifest("h2c.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: h2c}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", %q]
    volumeMounts:
    - {name: h, mountPath: /slave, mountPropagation: HostToContainer}
    - {name: h, mountPath: /private, mountPropagation: None}
    - {name: h, mountPath: /default}
  volumes:
  - {name: h, hostPath: {path: %s, type: Directory}}
`, loop, shared))
	d.writeManifest("bidi.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: bidi}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "mkdir -p /h/fromctr && mount -t tmpfs -o size=1m fromctr /h/fromctr && echo from-container > /h/fromctr/marker && %s"]
    securityContext: {privileged: true}
    volumeMounts:
    - {name: h, mountPath: /h, mountPropagation: Bidirectional}
  volumes:
  - {name: h, hostPath: {path: %s}}
`, loop, shared))
	// Kubernetes validation: Bidirectional only for privileged containers.
	d.writeManifest("bidi-unpriv.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: bidi-unpriv}
spec:
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["true"]
    volumeMounts:
    - {name: h, mountPath: /h, mountPropagation: Bidirectional}
  volumes:
  - {name: h, hostPath: {path: %s}}
`, shared))
	// As under containerd's CRI: propagation from a private host mount is refused.
	d.writeManifest("h2c-private.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: h2c-private}
spec:
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["true"]
    volumeMounts:
    - {name: h, mountPath: /h, mountPropagation: HostToContainer}
  volumes:
  - {name: h, hostPath: {path: %s}}
`, private))

	d.waitRunning("h2c", 60*time.Second)
	d.waitRunning("bidi", 60*time.Second)
	sh := func(pod, cmd string) (string, int) {
		out, errs, code := d.ctl("exec", pod, "--", "sh", "-c", cmd)
		return out + errs, code
	}

	// Bidirectional: the container's tmpfs reaches the host, and from there the
	// HostToContainer mount of the other pod, but not its None mounts.
	d.eventually(30*time.Second, "the container's mount seen on the host", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(shared, "fromctr", "marker"))
		return err == nil && string(b) == "from-container\n", fmt.Sprint(string(b), err)
	})
	if !isMountPoint(t, filepath.Join(shared, "fromctr")) {
		t.Errorf("%s/fromctr is not a mount point on the host", shared)
	}
	if out, code := sh("h2c", "cat /slave/fromctr/marker"); code != 0 || out != "from-container\n" {
		t.Errorf("HostToContainer does not see the Bidirectional container's mount: %d %q", code, out)
	}

	// A host mount made after the containers started.
	hostSub := filepath.Join(shared, "fromhost")
	if err := os.Mkdir(hostSub, 0o755); err != nil {
		t.Fatal(err)
	}
	mount("-t", "tmpfs", "-o", "size=1m", "fromhost", hostSub)
	if err := os.WriteFile(filepath.Join(hostSub, "marker"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := sh("h2c", "cat /slave/fromhost/marker && grep ' /slave/fromhost ' /proc/self/mountinfo"); code != 0 || !strings.HasPrefix(out, "from-host\n") || !strings.Contains(out, "tmpfs") {
		t.Errorf("HostToContainer: host mount not seen: %d %q", code, out)
	}
	if out, code := sh("bidi", "cat /h/fromhost/marker"); code != 0 || out != "from-host\n" {
		t.Errorf("Bidirectional: host mount not seen: %d %q", code, out)
	}
	for _, dir := range []string{"/private", "/default"} {
		// The directory is there (it was made before the container started), the mount is not.
		out, code := sh("h2c", fmt.Sprintf("ls -A %[1]s/fromhost; grep -c ' %[1]s/fromhost ' /proc/self/mountinfo", dir))
		if code == 0 || strings.Contains(out, "marker") || strings.TrimSpace(out) != "0" {
			t.Errorf("propagation None (%s): host mount seen: %d %q", dir, code, out)
		}
	}
	// A HostToContainer mount is a slave: the container's own mounts there stay inside (and
	// an unprivileged container may not mount at all); check the mount's propagation instead.
	if out, _ := sh("h2c", "grep ' /slave ' /proc/self/mountinfo"); !strings.Contains(out, "master:") || strings.Contains(out, "shared:") {
		t.Errorf("HostToContainer mount is not a plain slave: %q", out)
	}
	if out, _ := sh("h2c", "grep ' /private ' /proc/self/mountinfo"); strings.Contains(out, "master:") || strings.Contains(out, "shared:") {
		t.Errorf("None mount is not private: %q", out)
	}
	if out, _ := sh("bidi", "grep ' /h ' /proc/self/mountinfo"); !strings.Contains(out, "shared:") {
		t.Errorf("Bidirectional mount is not shared: %q", out)
	}

	// The refusals: the field path of the invalid manifest, and CreateContainerError for a
	// private host mount, with the daemon and the other pods unaffected.
	d.eventually(30*time.Second, "bidi-unpriv refused", func() (bool, string) {
		p := d.pod("bidi-unpriv")
		if p == nil {
			return false, "not listed"
		}
		return p.Status.Reason == "InvalidManifest" && strings.Contains(p.Status.Message,
			"spec.containers[0].volumeMounts[0].mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers"), p.Status.Reason + ": " + p.Status.Message
	})
	d.eventually(30*time.Second, "h2c-private waiting", func() (bool, string) {
		p := d.pod("h2c-private")
		if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, "not waiting"
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w.Reason == "CreateContainerError" && strings.Contains(w.Message, "not a shared or slave mount"), w.Reason + ": " + w.Message
	})
	for _, name := range []string{"h2c", "bidi"} {
		if p := d.pod(name); p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("%s restarted", name)
		}
	}

	d.removeManifest("bidi-unpriv.yaml")
	d.removeManifest("h2c-private.yaml")
	d.removeAndCheck("h2c", "bidi")
	// The host keeps what the Bidirectional container mounted, as on a kubelet; the cleanup
	// above unmounts it.
	if !isMountPoint(t, filepath.Join(shared, "fromctr")) {
		t.Errorf("the Bidirectional container's mount went with the pod")
	}
}

// isMountPoint tells whether p is a mount point in this mount namespace.
func isMountPoint(t *testing.T, p string) bool {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == p {
			return true
		}
	}
	return false
}

// Secrets are root's alone: a secret file others can read keeps the pods that use it waiting
// with a reason that names the file and the fix, the daemon warns at start, other pods run,
// and the pods start once the file is fixed.
func TestSecretRootOnly(t *testing.T) {
	secDir := t.TempDir()
	write := func(path string, mode os.FileMode) {
		p := filepath.Join(secDir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("hunter2"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	write("open/password", 0o644)
	write("tight/password", 0o600)
	d := newDaemon(t, "--secret-dir", secDir, "--backoff-initial", "1s")
	d.start()
	loop := `trap 'exit 0' TERM; while true; do sleep 1; done`
	podOf := func(name, secret string, asVolume bool) string {
		use := fmt.Sprintf("    env: [{name: PW, valueFrom: {secretKeyRef: {name: %s, key: password}}}]\n", secret)
		vols := ""
		if asVolume {
			use = "    volumeMounts: [{name: s, mountPath: /s}]\n"
			vols = fmt.Sprintf("  volumes: [{name: s, secret: {secretName: %s}}]\n", secret)
		}
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: minipod.local/busybox:1.35\n    command: [\"sh\", \"-c\", %q]\n%s%s", name, loop, use, vols)
	}
	d.writeManifest("env-open.yaml", podOf("env-open", "open", false))
	d.writeManifest("vol-open.yaml", podOf("vol-open", "open", true))
	d.writeManifest("tight.yaml", podOf("tight", "tight", true))
	d.waitRunning("tight", 60*time.Second)
	bad := filepath.Join(secDir, "open", "password")
	waiting := func(name, reason string, parts ...string) {
		d.eventually(30*time.Second, name+" "+reason, func() (bool, string) {
			p := d.pod(name)
			if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
				return false, "not waiting"
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			ok := w.Reason == reason
			for _, part := range parts {
				ok = ok && strings.Contains(w.Message, part)
			}
			return ok && !strings.Contains(w.Message, "hunter2"), w.Reason + ": " + w.Message
		})
	}
	waiting("env-open", "CreateContainerConfigError", `secret "open": `+bad+" is owned by root with mode 0644", "chmod go-rwx "+bad)
	waiting("vol-open", "ContainerCreating", "FailedMount", bad+" is owned by root with mode 0644", "chmod go-rwx "+bad)
	if log, _ := os.ReadFile(d.logPath); !strings.Contains(string(log), "secret not used: insecure permissions") || !strings.Contains(string(log), bad) {
		t.Errorf("no warning at start about %s:\n%s", bad, log)
	}
	if err := os.Chmod(bad, 0o600); err != nil {
		t.Fatal(err)
	}
	d.waitRunning("env-open", 60*time.Second)
	d.waitRunning("vol-open", 60*time.Second)
	if out, _, code := d.ctl("exec", "vol-open", "--", "cat", "/s/password"); code != 0 || out != "hunter2" {
		t.Errorf("secret volume after the fix: %d %q", code, out)
	}
	d.removeAndCheck("env-open", "vol-open", "tight")
}
