package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// registry is a Debian docker-registry on a free loopback port, with basic auth when
// user is set. It is stopped and its storage removed at the end of the test.
type registry struct {
	addr string
}

func startRegistry(t *testing.T, user, pass string) *registry {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if user != "" {
		out, err := exec.Command("htpasswd", "-Bbn", user, pass).Output()
		if err != nil {
			t.Fatalf("htpasswd: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "htpasswd"), out, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd: {realm: minipod-test, path: %s}\n", filepath.Join(dir, "htpasswd"))
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, _ := os.Create(filepath.Join(dir, "registry.log"))
	cmd := exec.Command("docker-registry", "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("registry on %s did not come up: %v\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &registry{addr: addr}
}

// push copies the busybox test image from the daemon's namespace into the registry as repo.
func (d *daemon) push(t *testing.T, r *registry, repo, user, pass string) string {
	t.Helper()
	ref := r.addr + "/" + repo
	ctr := func(args ...string) {
		out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ctr %v: %v\n%s", args, err, out)
		}
	}
	ctr("images", "tag", "--force", "minipod.local/busybox:1.35", ref)
	args := []string{"images", "push", "--plain-http"}
	if user != "" {
		args = append(args, "--user", user+":"+pass)
	}
	ctr(append(args, ref)...)
	// Remove the local copy: the daemon must pull it.
	ctr("images", "rm", ref)
	return ref
}

// Images come from registries (anonymous and with basic auth from the auth file), and every
// problem shows as the container's waiting reason.
func TestImagePull(t *testing.T) {
	open := startRegistry(t, "", "")
	locked := startRegistry(t, "edge", "s3cret")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	_, port, _ := net.SplitHostPort(locked.addr)
	// The right password for 127.0.0.1, a wrong one for localhost: the same registry.
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf(`{"auths": {
		%q: {"username": "edge", "password": "s3cret"},
		"localhost:%s": {"auth": "ZWRnZTp3cm9uZw=="}}}`, locked.addr, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := newDaemon(t, "--auth-file", authFile, "--backoff-initial", "1s", "--backoff-max", "2s")
	anon := d.push(t, open, "test/busybox:1.35", "", "")
	private := d.push(t, locked, "private/busybox:1.35", "edge", "s3cret")
	d.start()

	pod := func(name, image, policy string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: %s
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`, name, image, policy)
	}
	d.writeManifest("anon.yaml", pod("anon", anon, "IfNotPresent"))
	d.writeManifest("private.yaml", pod("private", private, "Always"))
	d.writeManifest("wrongpass.yaml", pod("wrongpass", "localhost:"+port+"/private/busybox:1.35", "IfNotPresent"))
	d.writeManifest("never.yaml", pod("never", "minipod.local/absent:1", "Never"))

	for _, n := range []string{"anon", "private"} {
		p := d.waitRunning(n, 60*time.Second)
		if id := p.Status.ContainerStatuses[0].ImageID; !strings.HasPrefix(id, "sha256:") {
			t.Errorf("%s: imageID %q", n, id)
		}
	}
	waiting := func(name string, reasons ...string) {
		d.eventually(60*time.Second, name+" waiting with "+strings.Join(reasons, "/"), func() (bool, string) {
			p := d.pod(name)
			if p == nil || len(p.Status.ContainerStatuses) == 0 {
				return false, "not listed"
			}
			w := p.Status.ContainerStatuses[0].State.Waiting
			if w == nil {
				return false, fmt.Sprintf("%+v", p.Status.ContainerStatuses[0].State)
			}
			for _, r := range reasons {
				if w.Reason == r && w.Message != "" {
					return p.Status.Phase == corev1.PodPending, string(p.Status.Phase)
				}
			}
			return false, w.Reason + ": " + w.Message
		})
	}
	waiting("wrongpass", "ErrImagePull", "ImagePullBackOff")
	waiting("wrongpass", "ImagePullBackOff")
	if p := d.pod("wrongpass"); !strings.Contains(strings.ToLower(p.Status.ContainerStatuses[0].State.Waiting.Message), "unauthorized") {
		t.Errorf("wrong password message: %q", p.Status.ContainerStatuses[0].State.Waiting.Message)
	}
	waiting("never", "ErrImageNeverPull")
	// The pulled pods were not disturbed by the failing ones.
	for _, n := range []string{"anon", "private"} {
		if p := d.pod(n); p.Status.Phase != corev1.PodRunning || p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("%s: %s restarts %d", n, p.Status.Phase, p.Status.ContainerStatuses[0].RestartCount)
		}
	}
}
