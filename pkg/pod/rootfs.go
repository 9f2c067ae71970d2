package pod

import (
	"context"

	"github.com/minipod/minipod/pkg/runtime"
	corev1 "k8s.io/api/core/v1"
)

// rootfsTargets are the containers that start as soon as the sandbox is ready, for the first
// time: the first init container, or else every member container. Those whose image is pulled
// at each start (imagePullPolicy: Always) are left out: their image may change on the way.
func rootfsTargets(s *podState) []*ctrState {
	next := s.apps
	if len(s.inits) > 0 {
		next = s.inits[:1]
	}
	var out []*ctrState
	for _, c := range next {
		if c.id == "" && !c.permanentErr && c.restartAt.IsZero() && c.spec.ImagePullPolicy != corev1.PullAlways {
			out = append(out, c)
		}
	}
	return out
}

// prepareRootfs makes, under the sandbox's lease, the writable snapshots of the containers that
// start right after the sandbox, while the pause container is created and started: the image
// lookup and the snapshot need nothing of the sandbox. The returned func waits for them and
// records in s.prep which were made, of which image; calling it again does nothing. A
// container whose snapshot could not be made (its image is not here yet, say) gets one the
// usual way when it starts.
func (w *worker) prepareRootfs(ctx context.Context, s *podState) (wait func()) {
	targets := rootfsTargets(s)
	if s.lease == "" || len(targets) == 0 {
		return func() {}
	}
	type made struct {
		id  string
		img runtime.Image
	}
	results := make(chan made, len(targets))
	for _, c := range targets {
		id := w.containerID(s, c, 0)
		go func() {
			img, err := w.m.cfg.Runtime.PrepareRootfs(ctx, s.lease, id, c.spec.Image)
			if err != nil {
				w.log.Debug("rootfs not made ahead", "container", c.spec.Name, "err", err)
			}
			results <- made{id, img}
		}()
	}
	waited := false
	return func() {
		if waited {
			return
		}
		waited = true
		s.prep = map[string]runtime.Image{}
		for range targets {
			if r := <-results; r.img.ID != "" {
				s.prep[r.id] = r.img
			}
		}
	}
}

// releaseRootfs ends the sandbox's lease once the containers it covered are created. A
// snapshot made ahead that no container took (its start failed before the container was
// created) then belongs to nothing, and containerd's garbage collector removes it.
func (w *worker) releaseRootfs(ctx context.Context, s *podState) {
	if s.lease == "" {
		return
	}
	if err := w.m.cfg.Runtime.DeleteLease(ctx, s.lease); err != nil {
		w.log.Warn("delete lease", "err", err)
	}
	s.prep, s.lease = nil, ""
}
