package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Store gives the server the current pods (each a full corev1.Pod with status filled; items
// already sorted).
type Store interface {
	List() []corev1.Pod
}

// Runtime is what logs and exec need from the daemon.
type Runtime interface {
	// LogPath returns the log file of the container's current attempt (or the previous one).
	LogPath(namespace, name, container string, previous bool) (string, error)
	// Exec runs cmd in the container and returns its exit code. Streams may be nil.
	Exec(ctx context.Context, namespace, name, container string, cmd []string, tty bool,
		stdin io.Reader, stdout, stderr io.Writer) (int, error)
}

// ErrNotFound is what Runtime errors wrap when the pod, container or log does not exist; the
// server maps them to 404.
var ErrNotFound = errors.New("not found")

// Server serves the API. Create it with NewServer.
type Server struct {
	health func(ctx context.Context) error
	events *events.Recorder
	store  Store
	rt     Runtime
	log    *slog.Logger
	mux    *http.ServeMux

	// followCheck is how often a followed log is checked for rotation and for a new container
	// attempt, in addition to the fsnotify wake-ups.
	followCheck time.Duration
	// timeouts bound each connection (see Timeouts); tests shorten them.
	timeouts Timeouts
}

// Timeouts are the API server's limits on a connection. Every client is local and root (or in
// the socket's group), so they are generous: they are there so that a client that stalls, or
// a program that opens connections and forgets them, cannot hold the daemon's goroutines and
// buffers for ever.
type Timeouts struct {
	// ReadHeader bounds reading a request's headers.
	ReadHeader time.Duration
	// Read bounds reading a whole request, body included (exec's JSON body is the only one).
	Read time.Duration
	// Write bounds writing an answer, from the end of the request's headers. Streams are
	// exempt: GET .../logs (followed or not: a client piping a long log into a pager may
	// rightly read it slowly), GET /v1/events?follow=1 and an exec session once upgraded run
	// for as long as the client reads, until it goes away or the daemon stops. Those handlers
	// lift the deadline for their own connection (http.ResponseController.SetWriteDeadline;
	// exec clears it on the hijacked connection). It stays above net/http/pprof's default
	// 30 s profile, which pprof refuses when it would not fit in the WriteTimeout.
	Write time.Duration
	// Idle closes a kept-alive connection that sends no new request.
	Idle time.Duration
}

// DefaultTimeouts are the limits NewServer sets.
var DefaultTimeouts = Timeouts{
	ReadHeader: 10 * time.Second,
	Read:       30 * time.Second,
	Write:      2 * time.Minute,
	Idle:       2 * time.Minute,
}

// NewServer returns a server for store and rt. log may be nil.
func NewServer(store Store, rt Runtime, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: store, rt: rt, log: log, mux: http.NewServeMux(), followCheck: 2 * time.Second,
		timeouts: DefaultTimeouts}
	s.route("GET", "/v1/pods", s.handleList)
	s.route("GET", "/v1/pods/{namespace}/{name}", s.handleGet)
	s.route("GET", "/v1/pods/{namespace}/{name}/logs", s.handleLogs)
	s.route("POST", "/v1/pods/{namespace}/{name}/exec", s.handleExec)
	s.route("GET", "/v1/health", s.handleHealth)
	s.route("GET", "/v1/events", s.handleEvents)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s
}

// SetEvents makes GET /v1/events serve rec's events. Call it before serving.
func (s *Server) SetEvents(rec *events.Recorder) { s.events = rec }

// Handle adds another handler to the API's mux (the metrics endpoint). Call it before serving.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// handleEvents answers a v1 EventList, optionally of one pod (namespace and name query
// parameters); with follow=1 it then streams each new event as one JSON line.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ns, name := q.Get("namespace"), q.Get("name")
	var sub <-chan events.Event
	if isTrue(q.Get("follow")) {
		// A stream: it lasts as long as the client reads (see Timeouts.Write).
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		// Subscribed before the list is taken, so that nothing falls between the two.
		sub = s.events.Subscribe(r.Context())
	}
	list := events.ToCoreV1(s.events.List(ns, name))
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	if err := enc.Encode(list); err != nil || sub == nil {
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	for ev := range sub {
		if (ns != "" && ev.Namespace != ns) || (name != "" && ev.Name != name) {
			continue
		}
		one := events.ToCoreV1([]events.Event{ev})
		if len(one.Items) == 0 || enc.Encode(one.Items[0]) != nil || rc.Flush() != nil {
			return
		}
	}
}

// SetHealth sets the check behind GET /v1/health (containerd reachable, say). Call it before
// serving.
func (s *Server) SetHealth(check func(ctx context.Context) error) { s.health = check }

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if s.health != nil {
		if err := s.health(r.Context()); err != nil {
			writeError(w, http.StatusServiceUnavailable, err.Error())
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
}

// route registers h for method+path and a JSON 405 for the other methods on path.
func (s *Server) route(method, path string, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+path, h)
	s.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed (use %s)", r.Method, method))
	})
}

// Handler exposes the mux for tests and for an optional TCP listener later.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		s.mux.ServeHTTP(w, r)
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "duration", time.Since(start))
	})
}

// ServeUnix blocks until ctx is cancelled, serving on a unix socket at path. It removes a stale
// socket file (refusing to when another server still answers on it, or when path is not a
// socket), creates the parent directory (0755), listens, and sets the socket's mode: mode, or
// 0600 by default, 0660 by default when gid >= 0, in which case the socket's group is set to gid
// (its owner stays the daemon's user, root in production). The socket is never reachable with
// looser permissions than mode, whatever the process umask (see listenUnix). It returns nil
// after a clean shutdown.
func (s *Server) ServeUnix(ctx context.Context, path string, mode os.FileMode, gid int) error {
	if mode == 0 {
		mode = 0o600
		if gid >= 0 {
			mode = 0o660
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	if err := removeStaleSocket(path); err != nil {
		return err
	}
	ln, err := listenUnix(path, mode, gid)
	if err != nil {
		return err
	}
	ours, _ := os.Lstat(path)
	defer func() {
		// Remove the socket file unless someone already replaced it.
		if cur, err := os.Lstat(path); err == nil && ours != nil && os.SameFile(cur, ours) {
			_ = os.Remove(path)
		}
	}()

	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.timeouts.ReadHeader,
		ReadTimeout:       s.timeouts.Read,
		WriteTimeout:      s.timeouts.Write,
		IdleTimeout:       s.timeouts.Idle,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("api listening", "socket", path, "mode", fmt.Sprintf("%#o", mode))

	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", path, err)
	case <-ctx.Done():
	}
	// Request contexts derive from ctx, so streams are ending already; give them a moment.
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// removeStaleSocket removes path if it is a socket nobody answers on.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("refusing to replace %s: it exists and is not a socket", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("another server is already listening on %s", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// boundHook, when set (by tests), is called with the socket's path right after it is bound,
// before its group and mode are set.
var boundHook func(path string)

// listenUnix listens on path with the given mode and group.
//
// The socket file is created by bind(2) with the mode of the socket itself less the umask. The
// socket's mode is set to 0600 before the bind (prebind), so the file appears owner-only
// whatever the umask; only then is its group set and its mode widened to mode. A client can
// therefore never connect through looser permissions than asked for, even for a moment: a
// connection made in such a moment would stay in the backlog and be served once accepted.
// The umask is not touched, as it belongs to the whole process (other goroutines create
// files and directories meanwhile). As a guard, a socket found with group or other bits
// right after the bind (a kernel that ignored the socket's own mode) is closed before anything
// is accepted, which drops any connection already queued, and the error says so.
func listenUnix(path string, mode os.FileMode, gid int) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) { err = prebind(fd) }); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("set socket mode before bind: %w", err)
		}
		return nil
	}}
	l, err := lc.Listen(context.Background(), "unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	ln := l.(*net.UnixListener)
	ln.SetUnlinkOnClose(false) // ServeUnix removes the file, and only if it is still ours
	fail := func(err error) (net.Listener, error) {
		ln.Close()
		_ = os.Remove(path)
		return nil, err
	}
	if boundHook != nil {
		boundHook(path)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return fail(fmt.Errorf("stat socket: %w", err))
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fail(fmt.Errorf("socket %s was created with mode %#o, open to group or others: refusing to serve on it (run minipod under umask 077)", path, perm))
	}
	if gid >= 0 {
		if err := os.Chown(path, -1, gid); err != nil {
			return fail(fmt.Errorf("chown socket to group %d: %w", gid, err))
		}
	}
	if err := os.Chmod(path, mode); err != nil {
		return fail(fmt.Errorf("chmod socket: %w", err))
	}
	return ln, nil
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// statusFor maps a Runtime error to a status code.
func statusFor(err error) int {
	if errors.Is(err, ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		return http.StatusNotFound
	}
	if errors.Is(err, ErrNoRollback) {
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// withTypeMeta returns a copy of pods with apiVersion and kind set like the API server does.
func withTypeMeta(pods []corev1.Pod) []corev1.Pod {
	out := slices.Clone(pods)
	if out == nil {
		out = []corev1.Pod{}
	}
	for i := range out {
		if out[i].APIVersion == "" {
			out[i].APIVersion = "v1"
		}
		if out[i].Kind == "" {
			out[i].Kind = "Pod"
		}
	}
	return out
}

// podListWire is a v1 PodList with its fields in the order kubectl users expect to read them
// (corev1.PodList would encode kind before apiVersion).
type podListWire struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   metav1.ListMeta `json:"metadata"`
	Items      []corev1.Pod    `json:"items"`
}

// JSONLister is a Store that also has its pods' JSON as the API sends them (see withTypeMeta),
// kept from list to list: a list is then mostly a copy of bytes.
type JSONLister interface {
	ListJSON() ([][]byte, error)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	jl, ok := s.store.(JSONLister)
	if !ok {
		writeJSON(w, podListWire{APIVersion: "v1", Kind: "PodList", Items: withTypeMeta(s.store.List())})
		return
	}
	items, err := jl.ListJSON()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// What writeJSON makes of a podListWire, with the items written as they are kept: joining
	// them first copied every pod's JSON into a new buffer for each request, the daemon's
	// largest allocation while a client polls a busy node.
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"apiVersion":"v1","kind":"PodList","metadata":{},"items":[`)
	for i, it := range items {
		if i > 0 {
			_, _ = io.WriteString(w, ",")
		}
		_, _ = w.Write(it)
	}
	_, _ = io.WriteString(w, "]}\n")
}

// PodGetter is implemented by stores that can hand out one pod without copying all of them.
type PodGetter interface {
	Get(namespace, name string) (*corev1.Pod, bool)
}

// findPod returns the pod namespace/name from the store.
func (s *Server) findPod(namespace, name string) (*corev1.Pod, bool) {
	if g, ok := s.store.(PodGetter); ok {
		return g.Get(namespace, name)
	}
	for _, p := range s.store.List() {
		ns := p.Namespace
		if ns == "" {
			ns = "default"
		}
		if ns == namespace && p.Name == name {
			return &p, true
		}
	}
	return nil, false
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	pod, ok := s.findPod(ns, name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod %s/%s not found", ns, name))
		return
	}
	writeJSON(w, withTypeMeta([]corev1.Pod{*pod})[0])
}

// podContainer looks up the pod and the container the request is about. container may be empty
// when the pod has exactly one (app) container. On failure it writes the error answer.
func (s *Server) podContainer(w http.ResponseWriter, r *http.Request, container string) (*corev1.Pod, string, bool) {
	ns, name := r.PathValue("namespace"), r.PathValue("name")
	pod, ok := s.findPod(ns, name)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("pod %s/%s not found", ns, name))
		return nil, "", false
	}
	names := containerNames(pod)
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf(
				"a container name must be specified for pod %s/%s, choose one of: [%s]",
				ns, name, strings.Join(names, " ")))
			return nil, "", false
		}
		return pod, pod.Spec.Containers[0].Name, true
	}
	if !slices.Contains(names, container) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("container %q not found in pod %s/%s", container, ns, name))
		return nil, "", false
	}
	return pod, container, true
}

// containerNames lists the pod's app, init and ephemeral containers.
func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	return names
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "y", "on":
		return true
	}
	return false
}
