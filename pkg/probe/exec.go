package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/envvar"
)

// doExec runs an exec probe: exit code 0 succeeds, any other fails with the command's output as
// the message, and running past the timeout fails with "command ... timed out", as with the
// kubelet's exec probe timeout. Other errors from execFn are Unknown.
func doExec(ctx context.Context, h *corev1.ExecAction, c *corev1.Container, execFn ExecFunc, timeout time.Duration) (Result, string) {
	if execFn == nil {
		return Unknown, "exec probes are not supported here"
	}
	cmd := expandCommand(h.Command, c.Env)
	if len(cmd) == 0 {
		return Unknown, "exec probe has no command"
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	code, out, err := execFn(tctx, cmd)
	if len(out) > maxOutput {
		out = out[:maxOutput]
	}
	if err != nil {
		if ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || tctx.Err() != nil) {
			return Failure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " "))
		}
		return Unknown, err.Error()
	}
	if code == 0 {
		return Success, string(out)
	}
	return Failure, string(out)
}

// expandCommand substitutes $(VAR) references to the container's env in cmd as the kubelet does
// for exec probes: only the static value of each entry counts (an entry set by valueFrom reads as
// empty), "$$" is an escaped "$", and a reference to an undefined variable is left as written.
func expandCommand(cmd []string, env []corev1.EnvVar) []string {
	if len(cmd) == 0 {
		return nil
	}
	vals := make(map[string]string, len(env))
	for _, e := range env {
		vals[e.Name] = e.Value
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = envvar.Expand(s, vals)
	}
	return out
}
