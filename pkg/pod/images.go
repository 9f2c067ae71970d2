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

// pull is one image pull in flight; its waiters read progress while it runs and img and err
// once done is closed.
type pull struct {
	done     chan struct{}
	img      runtime.Image
	err      error
	progress runtime.PullProgress
}

// start returns the pull of ref in flight, or starts one that runs fn in its own goroutine,
// which ends when fn returns (fn bounds it with a timeout).
func (p *pulls) start(ref string, fn func(*runtime.PullProgress) (runtime.Image, error)) *pull {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == nil {
		p.inflight = map[string]*pull{}
	}
	if cur, ok := p.inflight[ref]; ok {
		return cur
	}
	cur := &pull{done: make(chan struct{})}
	p.inflight[ref] = cur
	go func() {
		img, err := fn(&cur.progress)
		p.mu.Lock()
		delete(p.inflight, ref)
		cur.img, cur.err = img, err
		p.mu.Unlock()
		close(cur.done)
	}()
	return cur
}

// progressEvery is how often a pull's progress reaches the pod's status.
const progressEvery = 500 * time.Millisecond

// pullMessage is the waiting message of a container whose image is being pulled.
func pullMessage(image string, done, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("Pulling image %q", image)
	}
	return fmt.Sprintf("Pulling image %q: %s of %s", image, formatBytes(min(done, total)), formatBytes(total))
}

// formatBytes writes a size in binary units with one decimal: 512 B, 3.1 KiB, 12.0 MiB.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 3 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGT"[i])
}

// waitPull waits for a pull, showing its progress in the container's status (ContainerCreating
// with pullMessage) at most every progressEvery, until it ends or ctx does.
func (w *worker) waitPull(ctx context.Context, c *ctrState, image string, cur *pull) (runtime.Image, error) {
	show := func() {
		done, total := cur.progress.Bytes()
		if msg := pullMessage(image, done, total); msg != c.pulling {
			c.pulling = msg
			w.publish()
		}
	}
	if c != nil {
		show()
		defer func() { c.pulling = "" }()
	}
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-cur.done:
			return cur.img, cur.err
		case <-ctx.Done():
			return runtime.Image{}, ctx.Err()
		case <-tick.C:
			if c != nil {
				show()
			}
		}
	}
}

// ensureImage makes the container's image present as its imagePullPolicy says: Never uses only
// what is there, IfNotPresent pulls when it is missing, Always asks the registry every time a
// container starts. The error's reason is the container's waiting reason. ahead is the image
// of the root filesystem made ahead for this container (prepareRootfs; zero when none was): it
// was looked up and found unpacked a moment ago, as GetImage would look it up again.
func (w *worker) ensureImage(ctx context.Context, c *corev1.Container, ahead runtime.Image) (runtime.Image, string, error) {
	rt := w.m.cfg.Runtime
	policy := c.ImagePullPolicy
	if policy != corev1.PullAlways {
		if ahead.ID != "" {
			return ahead, "", nil
		}
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
	cur := w.m.pulls.start(c.Image, func(progress *runtime.PullProgress) (runtime.Image, error) {
		pctx, cancel := context.WithTimeout(ctx, pullTimeout)
		defer cancel()
		return rt.Pull(pctx, c.Image, w.m.cfg.Credentials, progress)
	})
	w.slot.release() // a pull waits on the network, not on the CPU
	img, err := w.waitPull(ctx, w.cur.byName(c.Name), c.Image, cur)
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
