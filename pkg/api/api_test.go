package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type fakeStore struct {
	mu   sync.Mutex
	pods []corev1.Pod
}

func (s *fakeStore) List() []corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]corev1.Pod(nil), s.pods...)
}

func (s *fakeStore) set(pods ...corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pods = pods
}

type fakeRuntime struct {
	dir string // logs live at dir/ns_name_container[.prev].log
}

func (r *fakeRuntime) LogPath(ns, name, container string, previous bool) (string, error) {
	if name == "ghost" {
		return "", fmt.Errorf("pod %s/%s: %w", ns, name, ErrNotFound)
	}
	suffix := ".log"
	if previous {
		suffix = ".prev.log"
	}
	return filepath.Join(r.dir, ns+"_"+name+"_"+container+suffix), nil
}

func (r *fakeRuntime) Exec(ctx context.Context, ns, name, container string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	switch cmd[0] {
	case "cat": // echo stdin back
		if stdin == nil {
			return 0, nil
		}
		_, err := io.Copy(stdout, stdin)
		return 0, err
	case "fail":
		fmt.Fprintf(stdout, "out from %s\n", container)
		fmt.Fprintln(stderr, "something went wrong")
		return 3, nil
	case "whoami":
		fmt.Fprintf(stdout, "%s/%s/%s tty=%v\n", ns, name, container, tty)
		return 0, nil
	case "sleep":
		<-ctx.Done()
		return 137, nil
	case "gone":
		return -1, fmt.Errorf("container %s: %w", container, ErrNotFound)
	}
	return -1, errors.New("executable file not found in $PATH")
}

func testPod(ns, name string, containers ...string) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c, ContainerID: "containerd://" + c, Ready: true,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}})
	}
	p.Status.Phase = corev1.PodRunning
	return p
}

// startServer serves on a socket in a temp dir and returns a client for it.
func startServer(t *testing.T, store Store, rt Runtime) (*Client, string, *Server) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "run", "minipod.sock")
	srv := NewServer(store, rt, nil)
	srv.followCheck = 100 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock, 0, -1) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("ServeUnix: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("ServeUnix did not return after cancel")
		}
	})
	waitForSocket(t, sock)
	return &Client{Socket: sock}, sock, srv
}

func waitForSocket(t *testing.T, sock string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("socket %s never came up", sock)
}

func TestSocketModeAndCleanup(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "a", "b", "minipod.sock")
	// A stale socket from a previous run must be replaced.
	if err := os.MkdirAll(filepath.Dir(sock), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	srv := NewServer(&fakeStore{}, &fakeRuntime{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeUnix(ctx, sock, 0, -1) }()
	waitForSocket(t, sock)

	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		t.Errorf("not a socket: %v", fi.Mode())
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode = %#o, want 0600", perm)
	}
	di, err := os.Stat(filepath.Dir(sock))
	if err != nil {
		t.Fatal(err)
	}
	if perm := di.Mode().Perm(); perm != 0o755 {
		t.Errorf("dir mode = %#o, want 0755", perm)
	}
	if entries, _ := os.ReadDir(filepath.Dir(sock)); len(entries) != 1 {
		t.Errorf("socket dir has leftovers: %v", entries)
	}

	// A second server must refuse to steal a live socket.
	err = NewServer(&fakeStore{}, &fakeRuntime{}, nil).ServeUnix(context.Background(), sock, 0, -1)
	if err == nil || !strings.Contains(err.Error(), "already listening") {
		t.Errorf("second ServeUnix: %v", err)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeUnix: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket not removed on shutdown: %v", err)
	}
}

func TestSocketGroupMode(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "minipod.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- NewServer(&fakeStore{}, &fakeRuntime{}, nil).ServeUnix(ctx, sock, 0, os.Getgid()) }()
	waitForSocket(t, sock)
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o660 {
		t.Errorf("socket mode = %#o, want 0660", perm)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRefuseNonSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "minipod.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := NewServer(&fakeStore{}, &fakeRuntime{}, nil).ServeUnix(context.Background(), path, 0, -1)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("ServeUnix over a regular file: %v", err)
	}
}

func TestClientNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "missing.sock")
	_, err := (&Client{Socket: sock}).Pods(context.Background())
	want := "cannot reach minipod at " + sock + ": is the daemon running?"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}
	var zero Client
	if got := zero.socket(); got != DefaultSocket {
		t.Errorf("zero client socket = %q", got)
	}
}

func TestPodsRoundTrip(t *testing.T) {
	store := &fakeStore{}
	c, sock, _ := startServer(t, store, &fakeRuntime{})

	// Empty store: an empty list, never null items.
	raw := rawGet(t, sock, "/v1/pods")
	if want := `{"apiVersion":"v1","kind":"PodList","metadata":{},"items":[]}`; strings.TrimSpace(raw) != want {
		t.Errorf("empty list = %s, want %s", raw, want)
	}

	a, b := testPod("default", "web", "app"), testPod("kube-system", "dns", "coredns", "sidecar")
	a.Annotations = map[string]string{"minipod.io/manifest": "/etc/minipod/manifests/web.yaml"}
	a.Status.PodIP = "10.88.0.2"
	store.set(a, b)
	list, err := c.Pods(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if list.APIVersion != "v1" || list.Kind != "PodList" || len(list.Items) != 2 {
		t.Fatalf("list = %+v", list)
	}
	got := list.Items[0]
	if got.Name != "web" || got.Kind != "Pod" || got.APIVersion != "v1" || got.Status.PodIP != "10.88.0.2" ||
		got.Annotations["minipod.io/manifest"] != "/etc/minipod/manifests/web.yaml" ||
		!got.CreationTimestamp.Equal(&a.CreationTimestamp) {
		t.Errorf("pod did not round trip: %+v", got)
	}
	if list.Items[1].Namespace != "kube-system" || len(list.Items[1].Spec.Containers) != 2 {
		t.Errorf("second pod = %+v", list.Items[1])
	}
	if store.List()[0].Kind != "" {
		t.Errorf("server mutated the store's pods")
	}

	if raw := rawGet(t, sock, "/v1/pods/kube-system/dns"); !strings.Contains(raw, `"name":"dns"`) {
		t.Errorf("single pod = %s", raw)
	}
}

// rawGet does a GET over the socket without the Client and returns the body.
func rawGet(t *testing.T, sock, path string) string {
	t.Helper()
	code, body := rawRequest(t, sock, http.MethodGet, path, "")
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	return body
}

func rawRequest(t *testing.T, sock, method, path, body string) (int, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, err := http.NewRequest(method, "http://minipod"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestLogs(t *testing.T) {
	dir := t.TempDir()
	rt := &fakeRuntime{dir: dir}
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"), testPod("prod", "api", "server", "proxy"))
	c, _, _ := startServer(t, store, rt)
	ctx := context.Background()

	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("default_web_app.log", "line 1\nline 2\n")
	write("default_web_app.prev.log", "old attempt\n")
	write("prod_api_proxy.log", "proxy up\n")

	var buf bytes.Buffer
	if err := c.Logs(ctx, "default", "web", "app", false, false, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "line 1\nline 2\n" {
		t.Errorf("logs = %q", buf.String())
	}
	buf.Reset()
	// Single-container pod: container may be omitted.
	if err := c.Logs(ctx, "default", "web", "", false, true, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "old attempt\n" {
		t.Errorf("previous logs = %q", buf.String())
	}
	buf.Reset()
	if err := c.Logs(ctx, "prod", "api", "proxy", false, false, &buf); err != nil || buf.String() != "proxy up\n" {
		t.Errorf("logs prod/api proxy = %q, %v", buf.String(), err)
	}

	// Errors.
	cases := []struct {
		ns, name, container string
		previous            bool
		code                int
		msg                 string
	}{
		{"default", "nope", "app", false, 404, "pod default/nope not found"},
		{"prod", "web", "app", false, 404, "pod prod/web not found"},
		{"default", "web", "db", false, 404, `container "db" not found in pod default/web`},
		{"prod", "api", "", false, 400, "a container name must be specified for pod prod/api, choose one of: [server proxy]"},
		{"prod", "api", "server", false, 404, `log of container "server" in pod prod/api not found`},
		{"prod", "api", "proxy", true, 404, `previous log of container "proxy" in pod prod/api not found`},
	}
	for _, tc := range cases {
		err := c.Logs(ctx, tc.ns, tc.name, tc.container, false, tc.previous, io.Discard)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code || se.Message != tc.msg {
			t.Errorf("logs %s/%s -c %q: err = %#v, want %d %q", tc.ns, tc.name, tc.container, err, tc.code, tc.msg)
		}
		if tc.code == 404 && !errors.Is(err, ErrNotFound) {
			t.Errorf("404 error does not match ErrNotFound: %v", err)
		}
	}
	// Runtime's ErrNotFound maps to 404 too.
	store.set(testPod("default", "ghost", "app"))
	if err := c.Logs(ctx, "default", "ghost", "app", false, false, io.Discard); !errors.Is(err, ErrNotFound) {
		t.Errorf("runtime not found: %v", err)
	}
}

// lineWriter hands every write to a channel.
type lineWriter struct{ ch chan string }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.ch <- string(p)
	return len(p), nil
}

// collect reads from ch until the accumulated text contains want.
func collect(t *testing.T, ch <-chan string, acc *strings.Builder, want string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for !strings.Contains(acc.String(), want) {
		select {
		case s := <-ch:
			acc.WriteString(s)
		case <-timeout:
			t.Fatalf("timed out waiting for %q, got %q", want, acc.String())
		}
	}
}

func TestLogsFollow(t *testing.T) {
	dir := t.TempDir()
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"))
	c, _, srv := startServer(t, store, &fakeRuntime{dir: dir})
	srv.followCheck = time.Hour // wake-ups must come from fsnotify, not from the periodic check
	path := filepath.Join(dir, "default_web_app.log")
	if err := os.WriteFile(path, []byte("first\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	lw := &lineWriter{ch: make(chan string, 100)}
	done := make(chan error, 1)
	go func() { done <- c.Logs(ctx, "default", "web", "app", true, false, lw) }()

	var acc strings.Builder
	collect(t, lw.ch, &acc, "first\n")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 3 {
		fmt.Fprintf(f, "appended %d\n", i)
		collect(t, lw.ch, &acc, fmt.Sprintf("appended %d\n", i))
	}
	if acc.String() != "first\nappended 0\nappended 1\nappended 2\n" {
		t.Errorf("followed = %q", acc.String())
	}
	select {
	case err := <-done:
		t.Fatalf("follow ended early: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Logs after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Logs did not return after cancel")
	}
}

func TestLogsFollowEndsOnRotation(t *testing.T) {
	dir := t.TempDir()
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"))
	c, _, srv := startServer(t, store, &fakeRuntime{dir: dir})
	srv.followCheck = time.Hour
	path := filepath.Join(dir, "default_web_app.log")
	if err := os.WriteFile(path, []byte("before\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lw := &lineWriter{ch: make(chan string, 100)}
	done := make(chan error, 1)
	go func() { done <- c.Logs(context.Background(), "default", "web", "app", true, false, lw) }()
	var acc strings.Builder
	collect(t, lw.ch, &acc, "before\n")

	// Rotate: a new file replaces the followed one.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte("new file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end when the file was replaced")
	}
	if strings.Contains(acc.String(), "new file") {
		t.Errorf("streamed the replacement file: %q", acc.String())
	}
}

func TestLogsFollowEndsOnNewAttempt(t *testing.T) {
	dir := t.TempDir()
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"))
	c, _, _ := startServer(t, store, &fakeRuntime{dir: dir}) // followCheck is 100ms
	if err := os.WriteFile(filepath.Join(dir, "default_web_app.log"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lw := &lineWriter{ch: make(chan string, 100)}
	done := make(chan error, 1)
	go func() { done <- c.Logs(context.Background(), "default", "web", "app", true, false, lw) }()
	var acc strings.Builder
	collect(t, lw.ch, &acc, "x\n")
	restarted := testPod("default", "web", "app")
	restarted.Status.ContainerStatuses[0].RestartCount = 1
	restarted.Status.ContainerStatuses[0].ContainerID = "containerd://other"
	store.set(restarted)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Logs = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end when the container restarted")
	}
}

func TestExec(t *testing.T) {
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"), testPod("prod", "api", "server", "proxy"))
	c, sock, _ := startServer(t, store, &fakeRuntime{})
	ctx := context.Background()

	// stdin echo through a cat-like command, with a payload larger than one frame.
	input := strings.Repeat("hello minipod\n", 10000)
	var out, errOut bytes.Buffer
	code, err := c.Exec(ctx, "default", "web", "app", []string{"cat"}, false, strings.NewReader(input), &out, &errOut)
	if err != nil || code != 0 {
		t.Fatalf("exec cat: code %d err %v", code, err)
	}
	if out.String() != input || errOut.Len() != 0 {
		t.Errorf("cat echoed %d bytes (want %d), stderr %q", out.Len(), len(input), errOut.String())
	}

	// Interactive: output streams back while stdin is still open.
	pr, pw := io.Pipe()
	outR, outW := io.Pipe()
	res := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "default", "web", "", []string{"cat"}, false, pr, outW, io.Discard)
		outW.Close()
		res <- err
	}()
	br := bufio.NewReader(outR)
	for _, line := range []string{"one\n", "two\n"} {
		if _, err := io.WriteString(pw, line); err != nil {
			t.Fatal(err)
		}
		got, err := br.ReadString('\n')
		if err != nil || got != line {
			t.Fatalf("interactive echo: %q, %v", got, err)
		}
	}
	pw.Close()
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}
	if err := <-res; err != nil {
		t.Fatalf("interactive exec: %v", err)
	}

	// stdout + stderr + exit code 3.
	out.Reset()
	errOut.Reset()
	code, err = c.Exec(ctx, "prod", "api", "proxy", []string{"fail"}, false, nil, &out, &errOut)
	if err != nil || code != 3 {
		t.Fatalf("exec fail: code %d err %v", code, err)
	}
	if out.String() != "out from proxy\n" || errOut.String() != "something went wrong\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}

	out.Reset()
	if code, err := c.Exec(ctx, "prod", "api", "server", []string{"whoami"}, true, nil, &out, nil); err != nil || code != 0 || out.String() != "prod/api/server tty=true\n" {
		t.Errorf("whoami: %d %v %q", code, err, out.String())
	}

	// Errors before the upgrade are status errors; after it, error frames.
	for _, tc := range []struct {
		ns, name, container string
		cmd                 []string
		code                int
	}{
		{"default", "nope", "app", []string{"cat"}, 404},
		{"default", "web", "db", []string{"cat"}, 404},
		{"prod", "api", "", []string{"cat"}, 400},
		{"default", "web", "app", nil, 400},
	} {
		_, err := c.Exec(ctx, tc.ns, tc.name, tc.container, tc.cmd, false, nil, io.Discard, io.Discard)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != tc.code {
			t.Errorf("exec %s/%s -c %q %v: err = %v, want status %d", tc.ns, tc.name, tc.container, tc.cmd, err, tc.code)
		}
	}
	if _, err := c.Exec(ctx, "default", "web", "app", []string{"nosuchcmd"}, false, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "executable file not found") {
		t.Errorf("exec of a missing command: %v", err)
	}
	if _, err := c.Exec(ctx, "default", "web", "app", []string{"gone"}, false, nil, nil, nil); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("exec in a vanished container: %v", err)
	}

	// Without the upgrade headers the server refuses.
	if code, body := rawRequest(t, sock, http.MethodPost, "/v1/pods/default/web/exec", `{"command":["cat"]}`); code != http.StatusUpgradeRequired || !strings.Contains(body, `"error"`) {
		t.Errorf("exec without upgrade: %d %s", code, body)
	}
}

func TestExecCancel(t *testing.T) {
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"))
	c, _, _ := startServer(t, store, &fakeRuntime{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(ctx, "default", "web", "app", []string{"sleep"}, false, nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
}

func TestErrorsAreJSON(t *testing.T) {
	c, sock, _ := startServer(t, &fakeStore{}, &fakeRuntime{})
	_ = c
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/v1/pods/default/x", 404},
		{"GET", "/v1/pods/default/x/logs", 404},
		{"POST", "/v1/pods/default/x/exec", 400}, // empty body
		{"POST", "/v1/pods", 405},
		{"GET", "/v1/pods/default/x/exec", 405},
		{"GET", "/nope", 404},
	} {
		code, body := rawRequest(t, sock, tc.method, tc.path, "")
		if code != tc.code || !strings.HasPrefix(body, `{"error":`) {
			t.Errorf("%s %s = %d %s, want %d with a JSON error", tc.method, tc.path, code, body, tc.code)
		}
	}
}

// jsonStore is a Store with its pods' JSON at hand (JSONLister), as the daemon's status view.
type jsonStore struct{ fakeStore }

func (s *jsonStore) ListJSON() ([][]byte, error) {
	var out [][]byte
	for _, p := range withTypeMeta(s.List()) {
		b, err := json.Marshal(&p)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// A store's ready JSON makes the same list, byte for byte, as encoding its pods.
func TestPodsListJSON(t *testing.T) {
	a, b := testPod("default", "web", "app"), testPod("kube-system", "dns", "coredns", "sidecar")
	a.Status.Message = `<refused> & "quoted"` // JSON's HTML escaping must match too
	plain, ready := &fakeStore{}, &jsonStore{}
	_, plainSock, _ := startServer(t, plain, &fakeRuntime{})
	_, readySock, _ := startServer(t, ready, &fakeRuntime{})
	for _, pods := range [][]corev1.Pod{nil, {a}, {a, b}} {
		plain.set(pods...)
		ready.set(pods...)
		want, got := rawGet(t, plainSock, "/v1/pods"), rawGet(t, readySock, "/v1/pods")
		if got != want {
			t.Errorf("%d pods:\n got %s\nwant %s", len(pods), got, want)
		}
	}
}
