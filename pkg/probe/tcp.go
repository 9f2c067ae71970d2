package probe

import (
	"context"
	"net"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// doTCP makes a tcpSocket probe: success if a connection can be opened within the timeout.
func doTCP(ctx context.Context, h *corev1.TCPSocketAction, podIP string, c *corev1.Container, timeout time.Duration) (Result, string) {
	port, err := resolvePort(h.Port, c)
	if err != nil {
		return Unknown, err.Error()
	}
	host := h.Host
	if host == "" {
		host = podIP
	}
	d := probeDialer()
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return Failure, err.Error()
	}
	_ = conn.Close()
	return Success, ""
}
