package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The attack of issue 20, item 1, on a node whose policy allows hostPath volumes only below
// one directory. The planting pod may mount that directory, and its init container plants two
// symlinks there: pwn -> / and out -> a host directory outside it. Its app container then
// mounts hostPath <allowed>/pwn, a path the policy's text check admits: it must be refused,
// naming the field, and never run with the host's / (it would touch a file outside). A second
// pod asks for <allowed>/out/made with type DirectoryOrCreate: it must be refused too, and
// nothing may be made outside. A third pod mounts a symlink that stays inside, and runs. When
// the pods are gone, nothing of them is left, their binds included.
func TestHostPathEscape(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	outside := filepath.Join(dir, "outside")
	for _, p := range []string{allowed, outside} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "keep"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	pwned := filepath.Join(outside, "pwned") // what the app touches through the host's /
	made := filepath.Join(outside, "made")   // what DirectoryOrCreate would make through the link
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte("policy:\n  allowPrivileged: false\n  allowedHostPaths: ["+allowed+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	const image = "minipod.local/busybox:1.35"
	const sleep = `trap 'exit 0' TERM; while :; do sleep 3600 & wait; done`
	plant := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: plant}
spec:
  terminationGracePeriodSeconds: 1
  initContainers:
  - name: plant
    image: %[1]s
    command: ["sh", "-c", "ln -s / /data/pwn && ln -s %[2]s /data/out && mkdir /data/real && echo inside > /data/real/f && ln -s real /data/in"]
    volumeMounts: [{name: data, mountPath: /data}]
  containers:
  - name: app
    image: %[1]s
    command: ["sh", "-c", "touch /host%[3]s; %[4]s"]
    volumeMounts: [{name: pwn, mountPath: /host}]
  volumes:
  - name: data
    hostPath: {path: %[5]s, type: Directory}
  - name: pwn
    hostPath: {path: %[5]s/pwn}
`, image, outside, pwned, sleep, allowed)
	create := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: create}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", "touch /made/pwned; %s"]
    volumeMounts: [{name: made, mountPath: /made}]
  volumes:
  - name: made
    hostPath: {path: %s/out/made, type: DirectoryOrCreate}
`, image, sleep, allowed)
	inside := fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: inside}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: %s
    command: ["sh", "-c", "cat /in/f > /in/seen; %s"]
    volumeMounts: [{name: in, mountPath: /in}]
  volumes:
  - name: in
    hostPath: {path: %s/in, type: Directory}
`, image, sleep, allowed)

	d := newDaemon(t, "--config", cfg)
	d.start()
	d.writeManifest("plant.yaml", plant)

	// The init container plants the links (the policy admits the pod: its paths are text
	// below the allowed directory).
	d.eventually(60*time.Second, "the init container planted its links", func() (bool, string) {
		p := d.pod("plant")
		if p == nil {
			return false, "not listed"
		}
		if len(p.Status.InitContainerStatuses) == 0 || p.Status.InitContainerStatuses[0].State.Terminated == nil {
			return false, fmt.Sprintf("%s %s %s", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		if code := p.Status.InitContainerStatuses[0].State.Terminated.ExitCode; code != 0 {
			t.Fatalf("init container exited %d", code)
		}
		return true, ""
	})
	if target, err := os.Readlink(filepath.Join(allowed, "pwn")); err != nil || target != "/" {
		t.Fatalf("planted link: %q, %v", target, err)
	}

	// The app container is refused with the field and the link named, and never runs. (If it
	// runs, that is an error, and the test goes on to show what it did on the host.)
	waiting := func(name, reason string, parts ...string) func() (bool, string) {
		return func() (bool, string) {
			p := d.pod(name)
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, "no container status"
			}
			st := p.Status.ContainerStatuses[0].State
			if st.Running != nil || st.Terminated != nil {
				t.Errorf("%s: the app container ran with the hostPath through the planted link: %+v", name, st)
				return true, ""
			}
			if st.Waiting == nil || st.Waiting.Reason != reason {
				return false, fmt.Sprintf("%+v", st)
			}
			for _, part := range parts {
				if !strings.Contains(st.Waiting.Message, part) {
					return false, st.Waiting.Reason + ": " + st.Waiting.Message
				}
			}
			t.Logf("%s: %s: %s", name, st.Waiting.Reason, st.Waiting.Message)
			return true, ""
		}
	}
	d.eventually(60*time.Second, "the app container refused with CreateContainerConfigError", waiting("plant", "CreateContainerConfigError",
		`volume "pwn": spec.volumes[1].hostPath.path: Forbidden: host path `+allowed+"/pwn leaves "+allowed,
		"the symbolic link "+allowed+"/pwn points to /"))

	// DirectoryOrCreate through the other planted link: refused when the volume is made.
	d.writeManifest("create.yaml", create)
	d.eventually(60*time.Second, "DirectoryOrCreate through a link refused", waiting("create", "ContainerCreating",
		`FailedMount: volume "made": spec.volumes[0].hostPath.path: Forbidden: host path `+allowed+"/out/made leaves "+allowed,
		"the symbolic link "+allowed+"/out points to "+outside))

	// A link that stays inside is followed, on a real runtime: the container gets the bind.
	d.writeManifest("inside.yaml", inside)
	d.waitRunning("inside", 60*time.Second)
	d.eventually(30*time.Second, "the inside pod read its file through the link", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(allowed, "real", "seen"))
		return err == nil && string(b) == "inside\n", fmt.Sprintf("%q %v", b, err)
	})

	// The refusals hold over retries: give the worker time to try again.
	time.Sleep(6 * time.Second)
	for _, name := range []string{"plant", "create"} {
		if p := d.pod(name); p == nil {
			t.Errorf("%s not listed", name)
		} else if p.Status.Phase != corev1.PodPending {
			t.Errorf("%s: phase %s, want Pending: %+v", name, p.Status.Phase, p.Status.ContainerStatuses)
		}
	}
	ents, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "keep" {
			t.Errorf("made outside the allowed directory: %s", filepath.Join(outside, e.Name()))
		}
	}
	if _, err := os.Lstat(pwned); err == nil {
		t.Errorf("the app container wrote %s through the host's / at <allowed>/pwn", pwned)
	}
	if _, err := os.Lstat(made); err == nil {
		t.Errorf("DirectoryOrCreate made %s through <allowed>/out", made)
	}

	for _, name := range []string{"plant", "create", "inside"} {
		d.removeManifest(name + ".yaml")
	}
	for _, name := range []string{"plant", "create", "inside"} {
		d.waitGone(name, 60*time.Second)
	}
	d.eventually(30*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers()
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
			for _, line := range strings.Split(string(mi), "\n") {
				if strings.Contains(line, d.state) {
					left = append(left, "mount "+line)
				}
			}
		}
		return len(left) == 0, strings.Join(left, "\n")
	})
	if b, err := os.ReadFile(filepath.Join(outside, "keep")); err != nil || string(b) != "host" {
		t.Errorf("host file outside: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(allowed, "real", "f")); err != nil || string(b) != "inside\n" {
		t.Errorf("host data inside the allowed directory: %q, %v", b, err)
	}
}
