package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
)

// shortTimeouts are the server's limits shrunk for tests.
var shortTimeouts = Timeouts{
	ReadHeader: 300 * time.Millisecond,
	Read:       300 * time.Millisecond,
	Write:      300 * time.Millisecond,
	Idle:       300 * time.Millisecond,
}

// startServerWith is startServer with the server's timeouts set and setup applied before it
// serves.
func startServerWith(t *testing.T, store Store, rt Runtime, tm Timeouts, setup func(*Server)) (*Client, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "minipod.sock")
	srv := NewServer(store, rt, nil)
	srv.timeouts = tm
	srv.followCheck = time.Hour // follows end on fsnotify events in these tests
	if setup != nil {
		setup(srv)
	}
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
	return &Client{Socket: sock}, sock
}

func TestDefaultTimeouts(t *testing.T) {
	srv := NewServer(&fakeStore{}, &fakeRuntime{}, nil)
	tm := srv.timeouts
	if tm.ReadHeader <= 0 || tm.Read <= 0 || tm.Write <= 0 || tm.Idle <= 0 {
		t.Fatalf("timeouts = %+v: every one must be set", tm)
	}
	// net/http/pprof refuses a profile that would not end within the WriteTimeout; its default
	// is 30 s.
	if tm.Write <= 30*time.Second {
		t.Errorf("write timeout %v leaves no room for a default 30 s CPU profile", tm.Write)
	}
}

// A client that keeps a connection open after its answer is cut off after the idle timeout.
func TestIdleConnectionClosed(t *testing.T) {
	_, sock := startServerWith(t, &fakeStore{}, &fakeRuntime{}, shortTimeouts, nil)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /v1/health HTTP/1.1\r\nHost: minipod\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.Close {
		t.Fatal("the server closed the connection after the answer: nothing left to test")
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = br.ReadByte()
	if !errors.Is(err, io.EOF) {
		t.Fatalf("idle connection: read = %v after %v, want EOF (closed by the server)", err, time.Since(start).Round(time.Millisecond))
	}
}

// A client that sends headers and then stalls on its body is answered, not waited on for ever.
func TestSlowRequestBodyCutOff(t *testing.T) {
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"))
	_, sock := startServerWith(t, store, &fakeRuntime{}, shortTimeouts, nil)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A body of 100 bytes announced, one sent.
	req := "POST /v1/pods/default/web/exec HTTP/1.1\r\nHost: minipod\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	data, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server still waits for the body after %v", time.Since(start).Round(time.Millisecond))
	}
	// The handler's read fails: it answers 400, or the connection just ends.
	if len(data) > 0 && !strings.HasPrefix(string(data), "HTTP/1.1 400") {
		t.Errorf("answer to a stalled body: %q", data)
	}
}

// An ordinary answer must be written within the write timeout; a handler slower than that
// gets its connection closed, the client no answer.
func TestWriteTimeoutOnPlainRoutes(t *testing.T) {
	c, sock := startServerWith(t, &fakeStore{}, &fakeRuntime{}, shortTimeouts, func(s *Server) {
		s.Handle("GET /slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(3 * shortTimeouts.Write)
			_, _ = io.WriteString(w, "late\n")
		}))
	})
	if err := c.Health(context.Background()); err != nil {
		t.Fatalf("a quick answer: %v", err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get("http://minipod/slow")
	if err == nil {
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil {
			t.Fatalf("a handler slower than the write timeout still answered %d %q", resp.StatusCode, body)
		}
	}
}

// Streams outlive the write timeout: a followed log, followed events and an exec session
// still deliver what comes well after it.
func TestStreamsOutliveWriteTimeout(t *testing.T) {
	dir := t.TempDir()
	store := &fakeStore{}
	store.set(testPod("default", "web", "app"))
	rec := events.NewRecorder(100)
	c, _ := startServerWith(t, store, &fakeRuntime{dir: dir}, shortTimeouts, func(s *Server) { s.SetEvents(rec) })
	later := 3 * shortTimeouts.Write
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("logs -f", func(t *testing.T) {
		path := filepath.Join(dir, "default_web_app.log")
		if err := os.WriteFile(path, []byte("first\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		lctx, lcancel := context.WithCancel(ctx)
		defer lcancel()
		lw := &lineWriter{ch: make(chan string, 100)}
		done := make(chan error, 1)
		go func() { done <- c.Logs(lctx, "default", "web", "app", true, false, lw) }()
		var acc strings.Builder
		collect(t, lw.ch, &acc, "first\n")
		time.Sleep(later)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, "after the write timeout")
		collect(t, lw.ch, &acc, "after the write timeout\n")
		select {
		case err := <-done:
			t.Fatalf("follow ended: %v", err)
		default:
		}
	})

	t.Run("events -f", func(t *testing.T) {
		ectx, ecancel := context.WithCancel(ctx)
		defer ecancel()
		got := make(chan string, 10)
		done := make(chan error, 1)
		go func() {
			_, err := c.Events(ectx, "", "", true, func(e corev1.Event) { got <- e.Reason })
			done <- err
		}()
		time.Sleep(later)
		rec.Emit("default", "web", "uid", "", corev1.EventTypeNormal, "Late", "after the write timeout")
		select {
		case r := <-got:
			if r != "Late" {
				t.Errorf("event reason %q", r)
			}
		case err := <-done:
			t.Fatalf("events follow ended: %v", err)
		case <-ctx.Done():
			t.Fatal("no event after the write timeout")
		}
	})

	t.Run("exec", func(t *testing.T) {
		pr, pw := io.Pipe()
		outR, outW := io.Pipe()
		res := make(chan error, 1)
		go func() {
			_, err := c.Exec(ctx, "default", "web", "app", []string{"cat"}, false, pr, outW, io.Discard)
			outW.CloseWithError(err)
			res <- err
		}()
		time.Sleep(later)
		go func() { _, _ = io.WriteString(pw, "after the write timeout\n") }()
		line, err := bufio.NewReader(outR).ReadString('\n')
		if err != nil || line != "after the write timeout\n" {
			t.Fatalf("exec echo after the write timeout: %q, %v", line, err)
		}
		pw.Close()
		if err := <-res; err != nil {
			t.Fatalf("exec: %v", err)
		}
	})
}
