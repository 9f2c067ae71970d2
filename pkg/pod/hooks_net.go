package pod

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/probe"
)

// runNetHook runs an httpGet or tcpSocket lifecycle handler with the prober's client: the same
// request a probe would make, towards the pod IP, bounded by ctx.
func runNetHook(ctx context.Context, h *corev1.LifecycleHandler, c *corev1.Container, podIP string) error {
	if h.HTTPGet == nil && h.TCPSocket == nil {
		return errors.New("lifecycle handler has no action")
	}
	p := &corev1.Probe{
		ProbeHandler:   corev1.ProbeHandler{HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket},
		TimeoutSeconds: hookNetTimeoutSeconds,
	}
	r, msg := probe.Do(ctx, p, podIP, c, nil)
	if r != probe.Success && r != probe.Warning {
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// hookNetTimeoutSeconds bounds one httpGet or tcpSocket hook call.
const hookNetTimeoutSeconds = 30
