package probe

import (
	"context"
	"fmt"
)

// Kind is the purpose of a probe.
type Kind int

// The probe kinds, in the order Manager runs them.
const (
	Startup Kind = iota
	Liveness
	Readiness
)

// kinds lists every Kind, for loops.
var kinds = [...]Kind{Startup, Liveness, Readiness}

// String returns the kind as the kubelet names it in events ("Liveness probe failed: ...").
func (k Kind) String() string {
	switch k {
	case Startup:
		return "Startup"
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Result is the outcome of a probe attempt, or a probe's verdict.
type Result int

// The results. Unknown is the zero value. Warning is an attempt that succeeded with something
// to report (an HTTP redirect to another host, not followed), as the kubelet's probe.Warning:
// it counts as a Success, and the kubelet records a ProbeWarning event with its message. A
// verdict is never Warning.
const (
	Unknown Result = iota
	Success
	Failure
	Warning
)

// String returns the result as the kubelet spells it.
func (r Result) String() string {
	switch r {
	case Unknown:
		return "Unknown"
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	case Warning:
		return "Warning"
	}
	return fmt.Sprintf("Result(%d)", int(r))
}

// ExecFunc runs cmd in the container and returns its exit code and combined output (the pod
// worker supplies it). It should honour ctx: Do gives it the probe's timeoutSeconds, and a
// cancelled or expired ctx makes an error wrapping ctx.Err() the expected answer.
type ExecFunc func(ctx context.Context, cmd []string) (exitCode int, output []byte, err error)
