package pod

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
)

// Waiting reasons of image problems, as the kubelet names them.
const (
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonInvalidImageName  = "InvalidImageName"
	reasonContainerCreating = "ContainerCreating"
)

// pulls makes concurrent pulls of one image share a single registry round trip.
type pulls struct {
	mu       sync.Mutex
	inflight map[string]*pull
}

type pull struct {
	done chan struct{}
	img  runtime.Image
	err  error
}

func (p *pulls) do(ref string, fn func() (runtime.Image, error)) (runtime.Image, error) {
	p.mu.Lock()
	if p.inflight == nil {
		p.inflight = map[string]*pull{}
	}
	if cur, ok := p.inflight[ref]; ok {
		p.mu.Unlock()
		<-cur.done
		return cur.img, cur.err
	}
	cur := &pull{done: make(chan struct{})}
	p.inflight[ref] = cur
	p.mu.Unlock()
	cur.img, cur.err = fn()
	close(cur.done)
	p.mu.Lock()
	delete(p.inflight, ref)
	p.mu.Unlock()
	return cur.img, cur.err
}

// ensureImage makes the container's image present as its imagePullPolicy says: Never uses only
// what is there, IfNotPresent pulls when it is missing, Always asks the registry every time a
// container starts. The error's reason is the container's waiting reason.
func (w *worker) ensureImage(ctx context.Context, c *corev1.Container) (runtime.Image, string, error) {
	rt := w.m.cfg.Runtime
	policy := c.ImagePullPolicy
	if policy != corev1.PullAlways {
		img, err := rt.GetImage(ctx, c.Image)
		if err == nil {
			return img, "", nil
		}
		if !errors.Is(err, runtime.ErrImageNotFound) {
			return runtime.Image{}, ReasonErrImagePull, err
		}
		if policy == corev1.PullNever {
			return runtime.Image{}, ReasonErrImageNeverPull, fmt.Errorf("container image %q is not present with pull policy of Never", c.Image)
		}
	}
	w.log.Info("pulling image", "image", c.Image)
	w.event(w.cur, w.cur.byName(c.Name), events.Normal, events.ReasonPulling, "Pulling image %q", c.Image)
	start := time.Now()
	img, err := w.m.pulls.do(c.Image, func() (runtime.Image, error) {
		pctx, cancel := context.WithTimeout(ctx, pullTimeout)
		defer cancel()
		return rt.Pull(pctx, c.Image, w.m.cfg.Credentials)
	})
	if err != nil {
		if policy == corev1.PullAlways {
			// A kubelet with Always still runs a present image when the registry is down.
			if local, lerr := rt.GetImage(ctx, c.Image); lerr == nil && !errors.Is(err, runtime.ErrUnauthorized) {
				w.log.Warn("pull failed, using the present image", "image", c.Image, "err", err)
				return local, "", nil
			}
		}
		w.m.cfg.Metrics.ImagePull("failure", time.Since(start))
		return runtime.Image{}, ReasonErrImagePull, err
	}
	w.m.cfg.Metrics.ImagePull("success", time.Since(start))
	w.log.Info("pulled image", "image", c.Image, "took", time.Since(start).Round(time.Millisecond))
	w.event(w.cur, w.cur.byName(c.Name), events.Normal, events.ReasonPulled, "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
	return img, "", nil
}

// pullTimeout bounds one pull, so that a registry that hangs does not hang the pod.
const pullTimeout = 10 * time.Minute
