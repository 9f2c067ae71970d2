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

// pulls makes concurrent pulls of one image share a single registry round trip. A pull runs
// while anyone waits for it: when the last waiter leaves (its pod version was removed or
// replaced), the pull is cancelled, which ends its lease and so releases what it fetched.
type pulls struct {
	mu       sync.Mutex
	inflight map[string]*pull
	wg       sync.WaitGroup // the pulls' goroutines
}

// wait blocks until every pull's goroutine has returned. A pull whose waiters all left is
// cancelled, so this is quick once the workers are gone.
func (p *pulls) wait() { p.wg.Wait() }

// pull is one image pull in flight; its waiters read progress while it runs and img and err
// once done is closed.
type pull struct {
	done     chan struct{}
	img      runtime.Image
	err      error
	progress runtime.PullProgress
	waiters  int // guarded by pulls.mu
	cancel   context.CancelFunc
}

// join returns the pull of ref in flight, or starts one that runs fn on a goroutine of its own
// with a context that ends when every waiter has left or after pullTimeout. The caller must call
// leave once it stops waiting.
func (p *pulls) join(ref string, fn func(context.Context, *runtime.PullProgress) (runtime.Image, error)) (cur *pull, leave func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == nil {
		p.inflight = map[string]*pull{}
	}
	cur, ok := p.inflight[ref]
	if !ok {
		ctx, cancel := context.WithTimeout(context.Background(), pullTimeout)
		cur = &pull{done: make(chan struct{}), cancel: cancel}
		p.inflight[ref] = cur
		p.wg.Go(func() {
			img, err := fn(ctx, &cur.progress)
			cancel()
			p.mu.Lock()
			if p.inflight[ref] == cur {
				delete(p.inflight, ref)
			}
			cur.img, cur.err = img, err
			p.mu.Unlock()
			close(cur.done)
		})
	}
	cur.waiters++
	var once sync.Once
	return cur, func() {
		once.Do(func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			if cur.waiters--; cur.waiters == 0 {
				// Nobody waits any more: a later waiter starts afresh.
				if p.inflight[ref] == cur {
					delete(p.inflight, ref)
				}
				cur.cancel()
			}
		})
	}
}

// progressEvery is how often a pull's progress reaches the pod's status.
const progressEvery = 500 * time.Millisecond

// pullMessage is the waiting message of a container whose image is being pulled.
func pullMessage(image string, done, total int64) string {
	if total <= 0 {
		return fmt.Sprintf("Pulling image %q", image)
	}
	return fmt.Sprintf("Pulling image %q: %s of %s", image, runtime.FormatBytes(min(done, total)), runtime.FormatBytes(total))
}

// waitPull waits for a pull, reporting its progress (pullMessage) at most every progressEvery,
// until it ends or ctx does.
func waitPull(ctx context.Context, image string, cur *pull, progress func(string)) (runtime.Image, error) {
	last := ""
	show := func() {
		done, total := cur.progress.Bytes()
		if msg := pullMessage(image, done, total); msg != last {
			last = msg
			progress(msg)
		}
	}
	show()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-cur.done:
			return cur.img, cur.err
		case <-ctx.Done():
			return runtime.Image{}, ctx.Err()
		case <-tick.C:
			show()
		}
	}
}

// ensureImage makes the container's image present as its imagePullPolicy says: Never uses only
// what is there, IfNotPresent pulls when it is missing, Always asks the registry every time a
// container starts. The error's reason is the container's waiting reason. job.ahead is the
// image of the root filesystem made ahead for this container (prepareRootfs; zero when none
// was): it was looked up and found unpacked a moment ago, as GetImage would look it up again.
// It runs off the loop; a pull reports its progress through progress.
func (w *worker) ensureImage(ctx context.Context, job startJob, progress func(string)) (runtime.Image, string, error) {
	rt := w.m.cfg.Runtime
	c := job.spec
	policy := c.ImagePullPolicy
	if policy != corev1.PullAlways {
		present := func(img runtime.Image) (runtime.Image, string, error) {
			w.eventFor(job.pod, c, job.init, events.Normal, events.ReasonPulled, "Container image %q already present on machine", c.Image)
			return img, "", nil
		}
		if job.ahead.ID != "" {
			return present(job.ahead)
		}
		img, err := rt.GetImage(ctx, c.Image)
		if err == nil {
			return present(img)
		}
		if !errors.Is(err, runtime.ErrImageNotFound) {
			return runtime.Image{}, ReasonErrImagePull, err
		}
		if policy == corev1.PullNever {
			return runtime.Image{}, ReasonErrImageNeverPull, fmt.Errorf("container image %q is not present with pull policy of Never", c.Image)
		}
	}
	job.slot.release() // a pull waits on the network, not on the CPU
	img, err := w.pull(ctx, job.pod, c, job.init, progress)
	if err != nil {
		return runtime.Image{}, ReasonErrImagePull, err
	}
	return img, "", nil
}

// pull fetches c's image (through the pull table, so that concurrent pulls of one image make
// one registry round trip) with the Pulling and Pulled events and the pull metrics, reporting
// its progress (pullMessage). With policy Always, a failed pull still gives the present image,
// as a kubelet runs it when the registry is down. It runs off the loop.
func (w *worker) pull(ctx context.Context, pod *corev1.Pod, c *corev1.Container, init bool, progress func(string)) (runtime.Image, error) {
	rt := w.m.cfg.Runtime
	w.log.Info("pulling image", "image", c.Image)
	w.eventFor(pod, c, init, events.Normal, events.ReasonPulling, "Pulling image %q", c.Image)
	start := time.Now()
	cur, leave := w.m.pulls.join(c.Image, func(ctx context.Context, progress *runtime.PullProgress) (runtime.Image, error) {
		return rt.Pull(ctx, c.Image, w.m.cfg.Credentials, progress)
	})
	defer leave()
	img, err := waitPull(ctx, c.Image, cur, progress)
	if err != nil {
		if ctx.Err() != nil {
			return runtime.Image{}, err // the version is going
		}
		if c.ImagePullPolicy == corev1.PullAlways {
			if local, lerr := rt.GetImage(ctx, c.Image); lerr == nil && !errors.Is(err, runtime.ErrUnauthorized) {
				w.log.Warn("pull failed, using the present image", "image", c.Image, "err", err)
				return local, nil
			}
		}
		w.m.cfg.Metrics.ImagePull("failure", time.Since(start))
		return runtime.Image{}, err
	}
	w.m.cfg.Metrics.ImagePull("success", time.Since(start))
	w.log.Info("pulled image", "image", c.Image, "took", time.Since(start).Round(time.Millisecond))
	w.eventFor(pod, c, init, events.Normal, events.ReasonPulled, "Successfully pulled image %q in %s", c.Image, time.Since(start).Round(time.Millisecond))
	return img, nil
}

// pullTimeout bounds one pull, so that a registry that hangs does not hang the pod.
const pullTimeout = 10 * time.Minute
