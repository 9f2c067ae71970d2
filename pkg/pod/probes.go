package pod

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/logs"
	"github.com/minipod/minipod/pkg/metrics"
	"github.com/minipod/minipod/pkg/probe"
)

type probeEvent struct {
	id      string
	kind    probe.Kind
	result  probe.Result
	msg     string
	attempt bool // one attempt (failed, or succeeded with a warning), not a verdict
}

// startProbes starts the container's probes; their verdicts come back to the worker's loop
// through its inbox, which never blocks the prober.
func (w *worker) startProbes(s *podState, c *ctrState) {
	c.ready = c.spec.ReadinessProbe == nil
	c.startedOK = c.spec.StartupProbe == nil
	if c.phase != ctrRunning || (c.init && !isSidecar(c.spec)) || (c.spec.ReadinessProbe == nil && c.spec.LivenessProbe == nil && c.spec.StartupProbe == nil) {
		return
	}
	id := c.id
	execFn := func(ctx context.Context, cmd []string) (int, []byte, error) {
		return w.m.execOutput(ctx, id, cmd)
	}
	send := func(e probeEvent) { w.post(s, func() { w.handleProbe(s, e) }) }
	w.m.probes.Add(id, c.spec, firstIP(s.ips), c.started, execFn, func(kind probe.Kind, r probe.Result, msg string) {
		send(probeEvent{id: id, kind: kind, result: r, msg: msg})
	}, probe.WithFailedAttempts(func(kind probe.Kind, msg string) {
		send(probeEvent{id: id, kind: kind, result: probe.Failure, msg: msg, attempt: true})
	}), probe.WithWarnings(func(kind probe.Kind, msg string) {
		send(probeEvent{id: id, kind: kind, result: probe.Warning, msg: msg, attempt: true})
	}), probe.WithGroup(s.n.key()), probe.WithTicks(s.seen, s.earlier))
}

// handleProbe applies a probe verdict: readiness sets ready; a startup success lets the
// container count as started; a liveness failure, or a startup probe that failed for good,
// kills the container, and its restart policy decides what follows.
func (w *worker) handleProbe(s *podState, e probeEvent) {
	c := s.byID(e.id)
	if c == nil || c.phase != ctrRunning {
		return
	}
	if e.attempt {
		w.probeAttempt(s, c, e)
		return
	}
	switch e.kind {
	case probe.Readiness:
		c.ready = e.result == probe.Success
		return
	case probe.Startup:
		if e.result == probe.Success {
			c.startedOK = true
			return
		}
	}
	result := metrics.ProbeUnknown
	switch e.result {
	case probe.Success:
		result = metrics.ProbeSuccessful
	case probe.Failure:
		result = metrics.ProbeFailed
	}
	w.m.cfg.Metrics.ProbeResult(e.kind.String(), result)
	if e.result != probe.Failure {
		return
	}
	w.event(s, c, events.Normal, events.ReasonKilling, "Container %s failed %s probe, will be restarted", c.spec.Name, strings.ToLower(e.kind.String()))
	w.log.Info("container failed its probe, killing", "container", c.spec.Name, "probe", e.kind.String(), "msg", e.msg)
	c.hookErr = ""
	grace := s.rec.Grace
	pr := c.spec.LivenessProbe
	if e.kind == probe.Startup {
		pr = c.spec.StartupProbe
	}
	if pr != nil && pr.TerminationGracePeriodSeconds != nil {
		grace = *pr.TerminationGracePeriodSeconds
	}
	w.kill(s, c, grace)
}

// probeAttempt records the event of one attempt: a failure, or a success with a warning.
func (w *worker) probeAttempt(s *podState, c *ctrState, e probeEvent) {
	if e.result == probe.Warning {
		// A success with something to report, as the kubelet's prober records it.
		w.event(s, c, events.Warning, events.ReasonProbeWarning, "%s probe warning: %s", e.kind, truncate(e.msg, 512))
		return
	}
	w.event(s, c, events.Warning, events.ReasonUnhealthy, "%s probe failed: %s", e.kind, truncate(e.msg, 512))
}

// endProbes is where a pod version's probes go when it begins terminating, as on a kubelet:
// liveness and startup stop (the kubelet's StopLivenessAndStartup: a terminating container is
// never restarted), and readiness runs on, its results handed to end for the teardown to apply,
// so that a container that stops serving is seen not ready while it terminates. Only the loop
// calls it, as it hands s over.
func (w *worker) endProbes(s *podState, end *ending) {
	for _, c := range s.all() {
		if c.id == "" {
			continue
		}
		id := c.id
		w.m.probes.Stop(id, probe.Liveness, probe.Startup)
		send := func(e probeEvent) { end.post(func() { w.endingProbe(s, e) }) }
		ok := w.m.probes.Handoff(id, func(kind probe.Kind, r probe.Result, msg string) {
			send(probeEvent{id: id, kind: kind, result: r, msg: msg})
		}, func(kind probe.Kind, msg string) {
			send(probeEvent{id: id, kind: kind, result: probe.Failure, msg: msg, attempt: true})
		}, func(kind probe.Kind, msg string) {
			send(probeEvent{id: id, kind: kind, result: probe.Warning, msg: msg, attempt: true})
		})
		if !ok {
			continue
		}
		// A verdict the loop had not applied yet (it was in the inbox) is not lost.
		if r, ok := w.m.probes.Result(id, probe.Readiness); ok {
			send(probeEvent{id: id, kind: probe.Readiness, result: r})
		}
	}
}

// endingProbe applies a readiness result while the pod terminates (the teardown's goroutine
// calls it); liveness and startup results that were under way are not acted on.
func (w *worker) endingProbe(s *podState, e probeEvent) {
	c := s.byID(e.id)
	if c == nil || !c.alive() || e.kind != probe.Readiness {
		return
	}
	if e.attempt {
		w.probeAttempt(s, c, e)
		return
	}
	c.ready = e.result == probe.Success
}

// terminationMessage reads what an exited container left in its termination message file, or
// with FallbackToLogsOnError the end of its log when it failed without one.
func (w *worker) terminationMessage(s *podState, c *ctrState) string {
	if c.hookErr != "" {
		return c.hookErr
	}
	msg := readTail(s.n.termLogPath(c.spec.Name, c.attempt), maxTerminationMessage, false)
	if msg == "" && c.exit.Code != 0 && c.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = readTail(c.logPath, maxFallbackMessage, true)
	}
	return msg
}

// The kubelet's limits: 4096 bytes of message file, 80 lines or 2048 bytes of log.
const (
	maxTerminationMessage = 4096
	maxFallbackMessage    = 2048
	maxFallbackLines      = 80
)

func readTail(path string, limit int64, isLog bool) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if !isLog {
		buf := make([]byte, limit)
		n, _ := f.ReadAt(buf, 0)
		return string(buf[:n])
	}
	// The log is in CRI format: decode its last lines, then keep the last limit bytes.
	off := logs.TailOffset(f, st.Size(), maxFallbackLines)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	// The lines keep their newlines, as the kubelet's tail of the log does.
	var out bytes.Buffer
	_, _ = io.Copy(&logs.Decoder{W: &out}, f)
	msg := out.String()
	if int64(len(msg)) > limit {
		msg = msg[int64(len(msg))-limit:]
	}
	return msg
}
