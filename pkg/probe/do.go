package probe

import (
	"context"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// maxOutput is how much of an HTTP body or exec output is kept for the message (the kubelet's
// 10 KiB).
const maxOutput = 10 << 10

// Do performs one probe attempt with the probe's timeoutSeconds: httpGet, tcpSocket and grpc are
// made by minipod itself towards the handler's host, or podIP when that is empty (grpc always
// uses podIP, like the kubelet); exec runs through execFn. It returns the result and a message
// worded as the kubelet words it: for a Failure what follows "<Kind> probe failed: " in the
// kubelet's event, for a Warning (a success) what follows "<Kind> probe warning: ", for Unknown
// the error that kept the attempt from being made.
//
// A Failure caused by ctx being cancelled (rather than by the probe's own timeout) is reported
// as Unknown, since nothing was learned about the container.
func Do(ctx context.Context, p *corev1.Probe, podIP string, c *corev1.Container, execFn ExecFunc) (Result, string) {
	if p == nil {
		return Unknown, "no probe"
	}
	if c == nil {
		c = &corev1.Container{}
	}
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second // the API default
	}
	var (
		r   Result
		msg string
	)
	switch {
	case p.Exec != nil:
		r, msg = doExec(ctx, p.Exec, c, execFn, timeout)
	case p.HTTPGet != nil:
		r, msg = doHTTP(ctx, p.HTTPGet, podIP, c, timeout)
	case p.TCPSocket != nil:
		r, msg = doTCP(ctx, p.TCPSocket, podIP, c, timeout)
	case p.GRPC != nil:
		r, msg = doGRPC(ctx, p.GRPC, podIP, timeout)
	default:
		return Unknown, fmt.Sprintf("missing probe handler for container %q", c.Name)
	}
	if r == Failure && ctx.Err() != nil {
		return Unknown, "probe cancelled: " + context.Cause(ctx).Error()
	}
	return r, msg
}

// resolvePort turns a probe's port into a number the way the kubelet does: an int is taken as
// is, a string names one of the container's ports or, failing that, is parsed as a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("port %s not found", p.StrVal)
			}
			port = n
		}
	default:
		return -1, fmt.Errorf("intOrString had no kind: %+v", p)
	}
	if port > 0 && port < 65536 {
		return port, nil
	}
	return port, fmt.Errorf("invalid port number: %v", port)
}
