package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// UserAgent is sent by HTTP and gRPC probes unless the probe sets its own User-Agent header:
// kube-probe/<major>.<minor> of the Kubernetes API minipod is built against.
var UserAgent = "kube-probe/" + kubeVersion()

// kubeVersion derives "1.N" from the k8s.io/api module version v0.N.x in the build info.
func kubeVersion() string {
	const fallback = "1.37"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return fallback
	}
	for _, m := range bi.Deps {
		if m.Path != "k8s.io/api" {
			continue
		}
		parts := strings.SplitN(strings.TrimPrefix(m.Version, "v"), ".", 3)
		if len(parts) >= 2 && parts[0] == "0" {
			if _, err := strconv.Atoi(parts[1]); err == nil {
				return "1." + parts[1]
			}
		}
	}
	return fallback
}

// httpTransport is shared by all HTTP probes, configured like the kubelet's: no certificate
// verification, no keep-alives (each probe opens a fresh connection), no proxy from the
// environment, no transparent compression (so no Accept-Encoding header), and sockets that
// linger only briefly in TIME-WAIT.
var httpTransport = &http.Transport{
	TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, // the kubelet does not verify probe certificates either
	DisableKeepAlives:   true,
	DisableCompression:  true,
	Proxy:               nil,
	DialContext:         probeDialer().DialContext,
	TLSHandshakeTimeout: 10 * time.Second,
}

// doHTTP makes an httpGet probe.
func doHTTP(ctx context.Context, h *corev1.HTTPGetAction, podIP string, c *corev1.Container, timeout time.Duration) (Result, string) {
	req, err := newHTTPRequest(ctx, h, podIP, c)
	if err != nil {
		return Unknown, err.Error()
	}
	client := &http.Client{
		Transport:     httpTransport,
		Timeout:       timeout,
		CheckRedirect: sameHostRedirects,
	}
	res, err := client.Do(req)
	if err != nil {
		return Failure, err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxOutput))
	if err != nil {
		// The kubelet treats an error reading the body as a probe error, not as a failure.
		return Unknown, err.Error()
	}
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			// A redirect to another host was not followed: a success with a warning.
			return Warning, fmt.Sprintf("Probe terminated redirects, Response body: %v", string(body))
		}
		return Success, string(body)
	}
	// Like the kubelet, the failure message never contains the response body.
	return Failure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode)
}

// sameHostRedirects follows redirects only to the same host name (at most 10), and stops at a
// redirect elsewhere, handing its response back to the caller.
func sameHostRedirects(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// newHTTPRequest builds the GET request for an httpGet action like the kubelet does.
func newHTTPRequest(ctx context.Context, h *corev1.HTTPGetAction, podIP string, c *corev1.Container) (*http.Request, error) {
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	port, err := resolvePort(h.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(h.Path)
	if err != nil {
		// Too late to reject a broken path: pass it along as is, as the kubelet does.
		u = &url.URL{Path: h.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	headers := make(http.Header, len(h.HTTPHeaders)+2)
	for _, hh := range h.HTTPHeaders {
		headers.Add(hh.Name, hh.Value)
	}
	if _, ok := headers["User-Agent"]; !ok {
		headers.Set("User-Agent", UserAgent)
	}
	if _, ok := headers["Accept"]; !ok {
		headers.Set("Accept", "*/*")
	} else if headers.Get("Accept") == "" {
		headers.Del("Accept") // overridden with an empty value: send none
	}
	req.Header = headers
	req.Host = headers.Get("Host")
	return req, nil
}
