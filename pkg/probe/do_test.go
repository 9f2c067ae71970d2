package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// hostPort splits a test server's URL into host and port.
func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return u.Hostname(), port
}

func httpProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{
		TimeoutSeconds:   1,
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}},
		PeriodSeconds:    10,
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

func TestUserAgent(t *testing.T) {
	if !regexp.MustCompile(`^kube-probe/1\.[0-9]+$`).MatchString(UserAgent) {
		t.Fatalf("UserAgent = %q", UserAgent)
	}
}

func TestDoHTTPStatus(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "all good") })
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/created", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "secret body", http.StatusNotFound) })
	mux.HandleFunc("/boom", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "secret body", http.StatusInternalServerError)
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, strings.Repeat("a", 3*maxOutput)) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	// A redirect to "localhost" leaves the host 127.0.0.1: the kubelet does not follow it.
	mux.HandleFunc("/elsewhere", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, fmt.Sprintf("http://localhost:%d/ok", port), http.StatusFound)
	})

	tests := []struct {
		path    string
		want    Result
		wantMsg string
	}{
		{"/ok", Success, "all good"},
		{"/created", Success, ""},
		{"/redirect", Success, "all good"},
		{"/elsewhere", Warning, "Probe terminated redirects, Response body: "},
		{"/loop", Failure, "stopped after 10 redirects"},
		{"/missing", Failure, "HTTP probe failed with statuscode: 404"},
		{"/boom", Failure, "HTTP probe failed with statuscode: 500"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r, msg := Do(context.Background(), httpProbe(tt.path, intstr.FromInt32(int32(port))), host, &corev1.Container{}, nil)
			if r != tt.want {
				t.Fatalf("result %v (%q), want %v", r, msg, tt.want)
			}
			if !strings.Contains(msg, tt.wantMsg) || (tt.wantMsg == "" && msg != "") {
				t.Fatalf("message %q, want it to contain %q", msg, tt.wantMsg)
			}
		})
	}

	t.Run("body truncated to 10KiB", func(t *testing.T) {
		r, msg := Do(context.Background(), httpProbe("/big", intstr.FromInt32(int32(port))), host, &corev1.Container{}, nil)
		if r != Success || len(msg) != maxOutput {
			t.Fatalf("got %v with %d bytes, want Success with %d", r, len(msg), maxOutput)
		}
	})
}

func TestDoHTTPTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the prober gives up
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)

	start := time.Now()
	r, msg := Do(context.Background(), httpProbe("/", intstr.FromInt32(int32(port))), host, &corev1.Container{}, nil)
	if r != Failure || !strings.Contains(msg, "Client.Timeout exceeded") {
		t.Fatalf("got %v %q, want a timeout failure", r, msg)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Fatalf("took %v, want about timeoutSeconds (1s)", d)
	}
}

func TestDoHTTPCancelledIsUnknown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	if r, msg := Do(ctx, httpProbe("/", intstr.FromInt32(int32(port))), host, &corev1.Container{}, nil); r != Unknown {
		t.Fatalf("got %v %q, want Unknown when the caller cancels", r, msg)
	}
}

func TestDoHTTPRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r
	}))
	defer srv.Close()
	_, port := hostPort(t, srv.URL)
	c := &corev1.Container{Ports: []corev1.ContainerPort{
		{Name: "metrics", ContainerPort: 1},
		{Name: "http", ContainerPort: int32(port)},
	}}

	tests := []struct {
		name    string
		action  corev1.HTTPGetAction
		podIP   string
		check   func(t *testing.T, r *http.Request)
		wantErr string
	}{
		{
			name:   "defaults, named port, pod IP",
			action: corev1.HTTPGetAction{Path: "/healthz?verbose=1", Port: intstr.FromString("http")},
			podIP:  "127.0.0.1",
			check: func(t *testing.T, r *http.Request) {
				if r.Method != http.MethodGet || r.URL.Path != "/healthz" || r.URL.RawQuery != "verbose=1" {
					t.Errorf("request %s %s", r.Method, r.URL)
				}
				if ua := r.Header.Get("User-Agent"); ua != UserAgent {
					t.Errorf("User-Agent %q, want %q", ua, UserAgent)
				}
				if a := r.Header.Get("Accept"); a != "*/*" {
					t.Errorf("Accept %q", a)
				}
				if ae := r.Header.Get("Accept-Encoding"); ae != "" {
					t.Errorf("Accept-Encoding %q, want none", ae)
				}
				if r.Host != net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) {
					t.Errorf("Host %q", r.Host)
				}
			},
		},
		{
			name: "custom headers, Host override, explicit host",
			action: corev1.HTTPGetAction{Path: "/", Host: "127.0.0.1", Port: intstr.FromInt32(int32(port)), HTTPHeaders: []corev1.HTTPHeader{
				{Name: "x-custom", Value: "a"}, {Name: "X-Custom", Value: "b"},
				{Name: "Host", Value: "example.com"},
				{Name: "User-Agent", Value: "mine/1"},
				{Name: "Accept", Value: ""},
			}},
			podIP: "192.0.2.1", // must not be used
			check: func(t *testing.T, r *http.Request) {
				if v := r.Header.Values("X-Custom"); len(v) != 2 || v[0] != "a" || v[1] != "b" {
					t.Errorf("X-Custom %q", v)
				}
				if r.Host != "example.com" {
					t.Errorf("Host %q, want example.com", r.Host)
				}
				if ua := r.Header.Get("User-Agent"); ua != "mine/1" {
					t.Errorf("User-Agent %q", ua)
				}
				if _, ok := r.Header["Accept"]; ok {
					t.Errorf("Accept %q, want none", r.Header.Get("Accept"))
				}
			},
		},
		{
			name:   "numeric string port",
			action: corev1.HTTPGetAction{Port: intstr.FromString(strconv.Itoa(port))},
			podIP:  "127.0.0.1",
			check: func(t *testing.T, r *http.Request) {
				if r.URL.Path != "/" {
					t.Errorf("path %q", r.URL.Path)
				}
			},
		},
		{name: "unknown named port", action: corev1.HTTPGetAction{Port: intstr.FromString("nope")}, podIP: "127.0.0.1", wantErr: "port nope not found"},
		{name: "port out of range", action: corev1.HTTPGetAction{Port: intstr.FromInt32(70000)}, podIP: "127.0.0.1", wantErr: "invalid port number: 70000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &corev1.Probe{TimeoutSeconds: 5, ProbeHandler: corev1.ProbeHandler{HTTPGet: &tt.action}}
			r, msg := Do(context.Background(), p, tt.podIP, c, nil)
			if tt.wantErr != "" {
				if r != Unknown || msg != tt.wantErr {
					t.Fatalf("got %v %q, want Unknown %q", r, msg, tt.wantErr)
				}
				return
			}
			if r != Success {
				t.Fatalf("got %v %q", r, msg)
			}
			tt.check(t, <-got)
		})
	}
}

func TestDoHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil {
			http.Error(w, "not TLS", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	host, port := hostPort(t, srv.URL)
	p := httpProbe("/", intstr.FromInt32(int32(port)))
	p.HTTPGet.Scheme = corev1.URISchemeHTTPS
	if r, msg := Do(context.Background(), p, host, &corev1.Container{}, nil); r != Success {
		t.Fatalf("HTTPS with a self-signed certificate: %v %q", r, msg)
	}
	p.HTTPGet.Scheme = corev1.URISchemeHTTP // plain HTTP to a TLS port is answered 400
	if r, _ := Do(context.Background(), p, host, &corev1.Container{}, nil); r != Failure {
		t.Fatalf("HTTP to a TLS port: %v", r)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

func TestDoTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	open := l.Addr().(*net.TCPAddr).Port
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "svc", ContainerPort: int32(open)}}}
	tcp := func(host string, port intstr.IntOrString) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Host: host, Port: port}}}
	}

	if r, msg := Do(context.Background(), tcp("", intstr.FromInt32(int32(open))), "127.0.0.1", c, nil); r != Success || msg != "" {
		t.Errorf("open port: %v %q", r, msg)
	}
	if r, msg := Do(context.Background(), tcp("127.0.0.1", intstr.FromString("svc")), "192.0.2.1", c, nil); r != Success {
		t.Errorf("named port, explicit host: %v %q", r, msg)
	}
	if r, msg := Do(context.Background(), tcp("", intstr.FromInt32(int32(closedPort(t)))), "127.0.0.1", c, nil); r != Failure || !strings.Contains(msg, "connection refused") {
		t.Errorf("closed port: %v %q", r, msg)
	}
	if r, msg := Do(context.Background(), tcp("", intstr.FromString("other")), "127.0.0.1", c, nil); r != Unknown || msg != "port other not found" {
		t.Errorf("unknown named port: %v %q", r, msg)
	}
}

func TestDoGRPC(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	defer srv.Stop()

	bare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	noHealth := grpc.NewServer() // no health service registered
	go noHealth.Serve(bare)
	defer noHealth.Stop()

	grpcProbe := func(port int, service *string) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 2, ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(port), Service: service}}}
	}
	str := func(s string) *string { return &s }
	port := l.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name    string
		probe   *corev1.Probe
		want    Result
		wantMsg string
	}{
		{"serving", grpcProbe(port, nil), Success, "service healthy"},
		{"serving, empty service", grpcProbe(port, str("")), Success, "service healthy"},
		{"not serving", grpcProbe(port, str("db")), Failure, `service unhealthy (responded with "NOT_SERVING")`},
		{"unknown service", grpcProbe(port, str("nope")), Failure, "error: health rpc probe failed"},
		{"unimplemented", grpcProbe(bare.Addr().(*net.TCPAddr).Port, nil), Failure, "does not implement the grpc health protocol"},
		{"closed port", grpcProbe(closedPort(t), nil), Failure, "failed to connect service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, msg := Do(context.Background(), tt.probe, "127.0.0.1", &corev1.Container{}, nil)
			if r != tt.want || !strings.Contains(msg, tt.wantMsg) {
				t.Fatalf("got %v %q, want %v containing %q", r, msg, tt.want, tt.wantMsg)
			}
		})
	}
}

func TestDoExec(t *testing.T) {
	execProbe := func(cmd ...string) *corev1.Probe {
		return &corev1.Probe{TimeoutSeconds: 1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: cmd}}}
	}
	c := &corev1.Container{Env: []corev1.EnvVar{
		{Name: "FILE", Value: "/tmp/healthy"},
		{Name: "SECRET", ValueFrom: &corev1.EnvVarSource{}},
	}}
	var gotCmd []string
	fake := func(code int, out string, err error) ExecFunc {
		return func(ctx context.Context, cmd []string) (int, []byte, error) {
			gotCmd = cmd
			return code, []byte(out), err
		}
	}

	tests := []struct {
		name    string
		fn      ExecFunc
		want    Result
		wantMsg string
	}{
		{"exit 0", fake(0, "fine\n", nil), Success, "fine\n"},
		{"exit 1", fake(1, "cat: /tmp/healthy: No such file or directory\n", nil), Failure, "cat: /tmp/healthy: No such file or directory\n"},
		{"exec error", fake(-1, "", errors.New("container not running")), Unknown, "container not running"},
		{"output truncated", fake(2, strings.Repeat("x", 2*maxOutput), nil), Failure, strings.Repeat("x", maxOutput)},
		{"no exec support", nil, Unknown, "exec probes are not supported here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, msg := Do(context.Background(), execProbe("cat", "$(FILE)", "$(SECRET)$(UNSET)"), "", c, tt.fn)
			if r != tt.want || msg != tt.wantMsg {
				t.Fatalf("got %v %q, want %v %q", r, msg, tt.want, tt.wantMsg)
			}
		})
	}
	if want := []string{"cat", "/tmp/healthy", "$(UNSET)"}; strings.Join(gotCmd, "|") != strings.Join(want, "|") {
		t.Errorf("command %q, want %q", gotCmd, want)
	}

	t.Run("timeout", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			block := func(ctx context.Context, cmd []string) (int, []byte, error) {
				<-ctx.Done()
				return -1, nil, fmt.Errorf("exec: %w", ctx.Err())
			}
			start := time.Now()
			p := execProbe("sleep", "10")
			p.TimeoutSeconds = 3
			r, msg := Do(context.Background(), p, "", c, block)
			if r != Failure || msg != `command "sleep 10" timed out` {
				t.Fatalf("got %v %q", r, msg)
			}
			if d := time.Since(start); d != 3*time.Second {
				t.Fatalf("timed out after %v, want timeoutSeconds", d)
			}
		})
	})
	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		fn := func(ctx context.Context, cmd []string) (int, []byte, error) { return -1, nil, ctx.Err() }
		if r, _ := Do(ctx, execProbe("true"), "", c, fn); r != Unknown {
			t.Fatalf("got %v, want Unknown", r)
		}
	})
}

func TestDoNoHandler(t *testing.T) {
	if r, _ := Do(context.Background(), &corev1.Probe{}, "127.0.0.1", &corev1.Container{Name: "app"}, nil); r != Unknown {
		t.Fatalf("got %v", r)
	}
	if r, _ := Do(context.Background(), nil, "127.0.0.1", nil, nil); r != Unknown {
		t.Fatalf("got %v", r)
	}
}
