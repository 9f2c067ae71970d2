package pod

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
)

// prepull fetches the images of a pod's next version while the running version keeps serving:
// on a node behind a slow link, an update then costs the seconds of a restart instead of the
// minutes of a pull, and an update whose image cannot be pulled never stops the pod at all.
// The worker's loop owns it; its goroutine reports through the inbox.
type prepull struct {
	pod     *corev1.Pod
	cancel  context.CancelFunc // abandons the pulls: a newer edit, the file removed, the daemon stopping
	busy    bool               // the goroutine runs
	done    bool               // every image is present
	msg     string             // "update pending: ..." for the pod's status
	retryAt time.Time          // after a failure, when to try again
	delay   time.Duration      // the backoff of the failures
	fails   int
	started time.Time
}

// holdForImages reports whether the running version must keep running because want's images
// are not all present yet, and starts or continues fetching them. A version that serves
// nothing (no container runs) is replaced at once, as is one whose pod is going away.
func (w *worker) holdForImages(ctx context.Context, want *corev1.Pod, now time.Time) bool {
	if !w.cur.serving() {
		w.dropPrepull()
		return false
	}
	if w.pre != nil && w.pre.pod.UID != want.UID {
		w.log.Info("update superseded while its images were pulled", "revision", revision(string(w.pre.pod.UID)))
		w.dropPrepull()
	}
	if w.pre == nil {
		w.pre = &prepull{pod: want, started: now, msg: "update pending: checking images of revision " + revision(string(want.UID))}
	}
	p := w.pre
	if p.done {
		return false
	}
	if !p.busy && !now.Before(p.retryAt) {
		w.startPrepull(ctx, p)
	}
	return true
}

// serving reports whether any container of the version runs.
func (s *podState) serving() bool {
	if !s.sandboxOK || s.terminal {
		return false
	}
	for _, c := range s.all() {
		if c.phase == ctrRunning || c.phase == ctrStopping {
			return true
		}
	}
	return false
}

// dropPrepull abandons the pulls of a pending version; what they fetched is released with
// their leases.
func (w *worker) dropPrepull() {
	if w.pre != nil {
		if w.pre.cancel != nil {
			w.pre.cancel()
		}
		w.pre = nil
	}
}

func (w *worker) startPrepull(ctx context.Context, p *prepull) {
	ctx, cancel := context.WithCancel(ctx)
	if p.cancel != nil {
		p.cancel()
	}
	p.cancel, p.busy = cancel, true
	pod := p.pod
	w.wg.Go(func() {
		err := w.pullAll(ctx, pod, func(msg string) {
			w.inbox.post(func(w *worker) {
				if w.pre == p && p.busy {
					p.msg = "update pending: " + msg
				}
			})
		})
		w.inbox.post(func(w *worker) {
			if w.pre != p {
				return
			}
			p.busy = false
			if err == nil {
				p.done = true
				took := time.Since(p.started)
				w.m.cfg.Metrics.PrePull(took)
				w.log.Info("update's images present", "revision", revision(string(pod.UID)), "took", took.Round(time.Millisecond))
				return
			}
			if ctx.Err() != nil {
				return
			}
			// As a container's image backoff: the first retry after the initial delay, each
			// later one twice as late, up to the maximum.
			if p.fails++; p.fails == 1 {
				p.delay = w.m.cfg.Backoff.Initial
			} else {
				p.delay = min(2*p.delay, w.m.cfg.Backoff.Max)
			}
			p.retryAt = time.Now().Add(p.delay)
			reason := ReasonErrImagePull
			if p.fails > 1 {
				reason = ReasonImagePullBackOff
			}
			p.msg = fmt.Sprintf("update pending: %s: %v (revision %s keeps running; next try in %s)",
				reason, err, revision(string(w.cur.pod.UID)), p.delay.Round(time.Second))
			w.log.Warn("update's images not pulled", "revision", revision(string(pod.UID)), "err", err, "retry", p.delay)
		})
	})
}

// pullAll makes every image of pod present as its containers' pull policies say, one after
// the other, reporting progress. Images with policy Never are left to the start.
func (w *worker) pullAll(ctx context.Context, pod *corev1.Pod, progress func(string)) error {
	rt := w.m.cfg.Runtime
	seen := map[string]bool{}
	for i, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for j := range list {
			c := &list[j]
			if seen[c.Image] || c.ImagePullPolicy == corev1.PullNever {
				continue
			}
			seen[c.Image] = true
			if c.ImagePullPolicy != corev1.PullAlways {
				_, err := rt.GetImage(ctx, c.Image)
				if err == nil {
					continue
				}
				if !errors.Is(err, runtime.ErrImageNotFound) {
					return err
				}
			}
			if _, err := w.pull(ctx, pod, c, i == 0, func(msg string) { progress(lowerFirst(msg)) }); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				w.eventFor(pod, c, i == 0, events.Warning, events.ReasonFailed, "Failed to pull image %q: %v", c.Image, err)
				return fmt.Errorf("pulling image %q: %w", c.Image, err)
			}
		}
	}
	return nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}
