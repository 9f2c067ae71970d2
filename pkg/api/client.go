package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DefaultSocket is where the daemon listens unless configured otherwise.
const DefaultSocket = "/run/minipod/minipod.sock"

// Client talks to the daemon over its unix socket. The zero value uses DefaultSocket.
type Client struct {
	Socket string
}

// StatusError is an error answer of the server.
type StatusError struct {
	Code    int    // HTTP status code
	Message string // the server's message
}

func (e *StatusError) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for 404 answers.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Code == http.StatusNotFound
}

// unreachableError says the daemon's socket could not be reached.
type unreachableError struct {
	msg string
	err error
}

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return e.err }

func (c *Client) socket() string {
	if c == nil || c.Socket == "" {
		return DefaultSocket
	}
	return c.Socket
}

func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	sock := c.socket()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", sock)
	if err == nil {
		return conn, nil
	}
	prefix := "cannot reach minipod at " + sock
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
		return nil, &unreachableError{prefix + ": is the daemon running?", err}
	case errors.Is(err, fs.ErrPermission):
		return nil, &unreachableError{prefix + ": permission denied (run as root or as a member of the socket's group)", err}
	case ctx.Err() != nil:
		return nil, ctx.Err()
	}
	return nil, &unreachableError{prefix + ": " + err.Error(), err}
}

// do sends req over a fresh connection. The returned client must be closed with
// CloseIdleConnections when done.
func (c *Client) do(req *http.Request) (*http.Response, *http.Client, error) {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
		// The socket is local: nothing to gain from compression or proxies.
		DisableCompression: true,
		Proxy:              nil,
	}
	hc := &http.Client{Transport: tr}
	resp, err := hc.Do(req)
	if err != nil {
		tr.CloseIdleConnections()
		var ue *unreachableError
		if errors.As(err, &ue) {
			return nil, nil, ue
		}
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, nil, ctxErr
		}
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, nil, fmt.Errorf("minipod API at %s: %w", c.socket(), err)
	}
	return resp, hc, nil
}

func (c *Client) newRequest(ctx context.Context, method, path string, query url.Values, body io.Reader) (*http.Request, error) {
	u := url.URL{Scheme: "http", Host: "minipod", Path: path, RawQuery: query.Encode()}
	return http.NewRequestWithContext(ctx, method, u.String(), body)
}

// podPath is /v1/pods/{namespace}/{name} with both segments escaped.
func podPath(namespace, name string) string {
	if namespace == "" {
		namespace = "default"
	}
	return "/v1/pods/" + url.PathEscape(namespace) + "/" + url.PathEscape(name)
}

// readError turns a non-success answer into a *StatusError.
func readError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body errorBody
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		msg = body.Error
	}
	if msg == "" {
		msg = resp.Status
	}
	return &StatusError{Code: resp.StatusCode, Message: msg}
}

// Pods returns all pods the daemon knows about.
func (c *Client) Pods(ctx context.Context) (*corev1.PodList, error) {
	data, err := c.PodListJSON(ctx)
	if err != nil {
		return nil, err
	}
	var list corev1.PodList
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("decode pod list: %w", err)
	}
	return &list, nil
}

// Events returns the daemon's events, of one pod when name is set. With follow, each later
// event is passed to fn until ctx ends.
func (c *Client) Events(ctx context.Context, namespace, name string, follow bool, fn func(corev1.Event)) (*corev1.EventList, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set("namespace", namespace)
	}
	if name != "" {
		q.Set("name", name)
	}
	if follow {
		q.Set("follow", "1")
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/v1/events", q, nil)
	if err != nil {
		return nil, err
	}
	resp, hc, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	var list corev1.EventList
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("decode events: %w", err)
	}
	if !follow {
		return &list, nil
	}
	for _, e := range list.Items {
		fn(e)
	}
	for {
		var e corev1.Event
		if err := dec.Decode(&e); err != nil {
			if ctx.Err() != nil {
				return &list, nil
			}
			return &list, err
		}
		fn(e)
	}
}

// Health asks the daemon whether it can do its work; the error says why not (containerd
// not answering, say).
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/v1/health", nil)
}

// PodListJSON returns the v1 PodList exactly as the daemon sent it (compact JSON), for callers
// that re-print it without losing fields this package's API types might not know.
func (c *Client) PodListJSON(ctx context.Context) ([]byte, error) {
	return c.raw(ctx, http.MethodGet, "/v1/pods", true)
}

// call sends a request without a body and decodes the JSON answer into out (nil: the answer
// is not read).
func (c *Client) call(ctx context.Context, method, path string, out any) error {
	data, err := c.raw(ctx, method, path, out != nil)
	if err != nil || out == nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// raw sends a request without a body and returns the answer's body when read is set; an
// answer other than 200 is a *StatusError.
func (c *Client) raw(ctx context.Context, method, path string, read bool) ([]byte, error) {
	req, err := c.newRequest(ctx, method, path, nil, nil)
	if err != nil {
		return nil, err
	}
	resp, hc, err := c.do(req)
	if err != nil {
		return nil, err
	}
	defer hc.CloseIdleConnections()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	if !read {
		return nil, nil
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

// Logs copies the container's log to w. With follow it keeps copying appended data until ctx
// ends (then it returns ctx.Err()) or the server ends the stream (log rotated, container
// restarted). container may be empty when the pod has a single container.
func (c *Client) Logs(ctx context.Context, namespace, name, container string, follow, previous bool, w io.Writer) error {
	return c.LogsWith(ctx, namespace, name, LogOptions{Container: container, Follow: follow, Previous: previous, Tail: -1}, w)
}

// LogOptions select and shape a container's log, as kubectl logs does.
type LogOptions struct {
	Container  string
	Follow     bool
	Previous   bool
	Tail       int           // last lines only; -1 means all
	Since      time.Duration // only lines newer than this; 0 means all
	Timestamps bool          // prefix lines with their RFC3339Nano time
}

// LogsWith writes a container's log to w; with Follow it keeps writing until ctx ends or the
// container's attempt ends.
func (c *Client) LogsWith(ctx context.Context, namespace, name string, o LogOptions, w io.Writer) error {
	q := url.Values{}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Follow {
		q.Set("follow", "1")
	}
	if o.Previous {
		q.Set("previous", "1")
	}
	if o.Tail >= 0 {
		q.Set("tail", strconv.Itoa(o.Tail))
	}
	if o.Since > 0 {
		q.Set("sinceSeconds", strconv.FormatInt(int64((o.Since+time.Second-1)/time.Second), 10))
	}
	if o.Timestamps {
		q.Set("timestamps", "1")
	}
	req, err := c.newRequest(ctx, http.MethodGet, podPath(namespace, name)+"/logs", q, nil)
	if err != nil {
		return err
	}
	resp, hc, err := c.do(req)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return readError(resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("reading log: %w", err)
	}
	return nil
}

// Exec runs cmd in the container and returns its exit code. stdout and stderr receive the
// command's output as it is produced; when stdin is not nil it is forwarded to the command and
// its EOF closes the command's stdin. Note that a goroutine blocked reading stdin (e.g. a
// terminal) stays blocked after Exec returns until that read completes. Cancelling ctx closes
// the connection, which makes the daemon cancel the command.
func (c *Client) Exec(ctx context.Context, namespace, name, container string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	body, err := json.Marshal(ExecRequest{Container: container, Command: cmd, TTY: tty, Stdin: stdin != nil})
	if err != nil {
		return -1, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, podPath(namespace, name)+"/exec", nil, bytes.NewReader(body))
	if err != nil {
		return -1, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", ExecProtocol)
	resp, hc, err := c.do(req)
	if err != nil {
		return -1, err
	}
	defer hc.CloseIdleConnections()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer resp.Body.Close()
		return -1, readError(resp)
	}
	conn, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		resp.Body.Close()
		return -1, errors.New("exec: server did not switch protocols")
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	fw := &frameWriter{w: conn}
	if stdin != nil {
		go func() {
			buf := make([]byte, chunkSize)
			for {
				n, err := stdin.Read(buf)
				if n > 0 {
					if werr := fw.writeFrame(StreamStdin, buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					// EOF (or a read error): tell the command its stdin ended.
					_ = fw.writeFrame(StreamStdin, nil)
					return
				}
			}
		}()
	}

	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	for {
		stream, payload, err := readFrame(conn)
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return -1, errors.New("exec: connection closed before the command finished")
			}
			return -1, fmt.Errorf("exec: %w", err)
		}
		switch stream {
		case StreamStdout:
			if _, err := stdout.Write(payload); err != nil {
				return -1, fmt.Errorf("exec: writing stdout: %w", err)
			}
		case StreamStderr:
			if _, err := stderr.Write(payload); err != nil {
				return -1, fmt.Errorf("exec: writing stderr: %w", err)
			}
		case StreamExit:
			return decodeExitCode(payload)
		case StreamError:
			return -1, errors.New(string(payload))
		}
	}
}
