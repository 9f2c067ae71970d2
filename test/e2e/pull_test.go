package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/imagebuild"
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

	// While a pull runs, the container waits in ContainerCreating with the bytes in hand in
	// its message. The registry is reached through a proxy that holds the big layer after its
	// first MiB until the progress has been seen, so the check does not race the pull.
	big, total := pushBigImage(t, open, "test/big:1")
	proxy, release := gatedProxy(t, open, big, 1<<20)
	ref := proxy + "/test/big:1"
	d.writeManifest("big.yaml", pod("big", ref, "IfNotPresent"))
	progress := regexp.MustCompile(`^Pulling image "` + regexp.QuoteMeta(ref) + `": ([0-9.]+) (B|KiB|MiB) of ([0-9.]+ MiB)$`)
	seen := ""
	d.eventually(60*time.Second, "big pulling with progress", func() (bool, string) {
		p := d.pod("big")
		if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, "not waiting"
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		m := progress.FindStringSubmatch(w.Message)
		seen = w.Reason + ": " + w.Message
		return w.Reason == "ContainerCreating" && m != nil && m[1] != "0" && m[3] == total, seen
	})
	t.Logf("while pulling: %s", seen)

	// The pull runs under a lease of minipod's own. A daemon killed mid-pull leaves it, holding
	// what was fetched, and the next daemon ends it when it starts (not 24 hours later, as the
	// containerd client's own lease would); it then pulls again, past the gate once open.
	before := d.leases() // the pull's, and the big pod's sandbox start's
	if len(before) == 0 {
		t.Fatal("no lease during the pull")
	}
	for id, run := range before {
		if run == "" {
			t.Errorf("lease %s during the pull is not minipod's", id)
		}
	}
	d.stop(syscall.SIGKILL)
	d.start()
	d.eventually(30*time.Second, "the killed daemon's leases ended", func() (bool, string) {
		now := d.leases()
		for id := range before {
			if _, ok := now[id]; ok {
				return false, fmt.Sprintf("leases %v", now)
			}
		}
		return true, ""
	})
	release()
	d.waitRunning("big", 60*time.Second)
	if out, _, code := d.ctl("exec", "big", "--", "sh", "-c", "wc -c </big"); code != 0 || strings.TrimSpace(out) != fmt.Sprint(bigSize) {
		t.Errorf("the pulled image's big file: %d %q", code, out)
	}
}

// bigSize is the random (incompressible) file that makes the big test image's layer.
const bigSize = 3 << 20

// pushBigImage uploads the busybox test image plus bigSize random bytes straight to the
// registry over its HTTP API, so that no containerd holds any of its blobs, and returns the
// layer's digest and the image's size as pull progress shows it (manifest, config and layer).
func pushBigImage(t *testing.T, r *registry, repo string) (layer, total string) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "big")
	data := make([]byte, bigSize)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := imagebuild.Busybox("minipod.local/big:1", "")
	if err != nil {
		t.Fatal(err)
	}
	img.Files = append(img.Files, imagebuild.File{Path: "big", Source: src})
	var buf bytes.Buffer
	res, err := imagebuild.Build(&buf, img)
	if err != nil {
		t.Fatal(err)
	}
	blobs := map[string][]byte{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(tr); strings.HasPrefix(hdr.Name, "blobs/sha256/") {
			blobs["sha256:"+strings.TrimPrefix(hdr.Name, "blobs/sha256/")] = b
		}
	}
	name, tag, _ := strings.Cut(repo, ":")
	base := "http://" + r.addr + "/v2/" + name
	do := func(method, u, ctype string, body []byte, want int) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, u, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %s: %s", method, u, resp.Status, msg)
		}
		return resp
	}
	for _, d := range []string{res.Config.Digest.String(), res.Layer.Digest.String()} {
		loc, err := do("POST", base+"/blobs/uploads/", "", nil, http.StatusAccepted).Location()
		if err != nil {
			t.Fatal(err)
		}
		q := loc.Query()
		q.Set("digest", d)
		loc.RawQuery = q.Encode()
		do("PUT", loc.String(), "application/octet-stream", blobs[d], http.StatusCreated)
	}
	do("PUT", base+"/manifests/"+tag, res.Index.MediaType, blobs[res.Index.Digest.String()], http.StatusCreated)
	size := res.Index.Size + res.Config.Size + res.Layer.Size
	return res.Layer.Digest.String(), fmt.Sprintf("%.1f MiB", float64(size)/(1<<20))
}

// gatedProxy serves the registry on another loopback port, passing the blob's first limit
// bytes and then holding the rest until release is called (also at the end of the test).
func gatedProxy(t *testing.T, r *registry, blob string, limit int64) (addr string, release func()) {
	t.Helper()
	target, _ := url.Parse("http://" + r.addr)
	g := &gate{limit: limit, open: make(chan struct{})}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1
	rp.ModifyResponse = func(resp *http.Response) error {
		if resp.Request.Method == http.MethodGet && strings.HasSuffix(resp.Request.URL.Path, "/blobs/"+blob) {
			resp.Body = &gatedBody{ReadCloser: resp.Body, g: g, ctx: resp.Request.Context()}
		}
		return nil
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	var once sync.Once
	release = func() { once.Do(func() { close(g.open) }) }
	t.Cleanup(release) // runs before srv.Close, which waits for the held response
	return strings.TrimPrefix(srv.URL, "http://"), release
}

// gate lets limit bytes through in all, then nothing until open is closed.
type gate struct {
	mu     sync.Mutex
	passed int64
	limit  int64
	open   chan struct{}
}

type gatedBody struct {
	io.ReadCloser
	g   *gate
	ctx context.Context
}

func (b *gatedBody) Read(p []byte) (int, error) {
	g := b.g
	g.mu.Lock()
	allow := g.limit - g.passed
	g.mu.Unlock()
	select {
	case <-g.open:
	default:
		if allow <= 0 {
			select {
			case <-g.open:
			case <-b.ctx.Done():
				return 0, b.ctx.Err()
			}
		} else if int64(len(p)) > allow {
			p = p[:allow]
		}
	}
	n, err := b.ReadCloser.Read(p)
	g.mu.Lock()
	g.passed += int64(n)
	g.mu.Unlock()
	return n, err
}

// leases returns the leases in the daemon's namespace by ID, each with the value of minipod's
// label (the Runtime that made it), "" for a lease minipod did not label.
func (d *daemon) leases() map[string]string {
	d.t.Helper()
	out, err := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "leases", "ls").Output()
	if err != nil {
		d.t.Fatalf("ctr leases ls: %v", err)
	}
	leases := map[string]string{}
	for _, line := range strings.Split(string(out), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		leases[f[0]] = ""
		for _, field := range f {
			for _, kv := range strings.Split(field, ",") {
				if v, ok := strings.CutPrefix(kv, "minipod.io/lease="); ok {
					leases[f[0]] = v
				}
			}
		}
	}
	return leases
}
