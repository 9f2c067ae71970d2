package pod

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// runNetHook runs an httpGet or tcpSocket lifecycle handler.
func (w *worker) runNetHook(ctx context.Context, h *corev1.LifecycleHandler) error {
	return fmt.Errorf("this lifecycle handler is not supported yet")
}
