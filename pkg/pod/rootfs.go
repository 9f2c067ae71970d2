package pod

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
)

// rootfsTarget is a container whose writable snapshot is made ahead: its ID and image.
type rootfsTarget struct {
	name, id, image string
}

// rootfsTargets are the containers that start as soon as the sandbox is ready, for the first
// time: the first init container, or else every member container. Those whose image is pulled
// at each start (imagePullPolicy: Always) are left out: their image may change on the way.
func rootfsTargets(s *podState) []rootfsTarget {
	next := s.apps
	if len(s.inits) > 0 {
		next = s.inits[:1]
	}
	var out []rootfsTarget
	for _, c := range next {
		if c.id == "" && !c.permanentErr && c.restartAt.IsZero() && c.spec.ImagePullPolicy != corev1.PullAlways {
			out = append(out, rootfsTarget{name: c.spec.Name, id: s.n.containerID(c.spec.Name, 0), image: c.spec.Image})
		}
	}
	return out
}

// prepareRootfs makes, under the sandbox's lease, the writable snapshots of the containers that
// start right after the sandbox, while the pause container is created and started: the image
// lookup and the snapshot need nothing of the sandbox. The returned func waits for them and
// returns which were made, of which image, by container ID. A container whose snapshot could
// not be made (its image is not here yet, say) gets one the usual way when it starts.
func (w *worker) prepareRootfs(ctx context.Context, lease string, targets []rootfsTarget) (wait func() map[string]runtime.Image) {
	if lease == "" || len(targets) == 0 {
		return func() map[string]runtime.Image { return nil }
	}
	type made struct {
		id  string
		img runtime.Image
	}
	results := make(chan made, len(targets))
	for _, t := range targets {
		go func() {
			img, err := w.m.cfg.Runtime.PrepareRootfs(ctx, lease, t.id, t.image)
			if err != nil {
				w.log.Debug("rootfs not made ahead", "container", t.name, "err", err)
			}
			results <- made{t.id, img}
		}()
	}
	return func() map[string]runtime.Image {
		prep := map[string]runtime.Image{}
		for range targets {
			if r := <-results; r.img.ID != "" {
				prep[r.id] = r.img
			}
		}
		return prep
	}
}

// releaseRootfs ends the sandbox's lease once the containers it covered are created. A
// snapshot made ahead that no container took (its start failed before the container was
// created) then belongs to nothing, and containerd's garbage collector removes it.
func (w *worker) releaseRootfs(s *podState) {
	if s.lease == "" {
		return
	}
	lease := s.lease
	s.prep, s.lease = nil, ""
	w.spawn(s, func() { w.deleteLease(context.WithoutCancel(s.ctx), lease) })
}

func (w *worker) deleteLease(ctx context.Context, lease string) {
	if lease == "" {
		return
	}
	if err := w.m.cfg.Runtime.DeleteLease(ctx, lease); err != nil {
		w.log.Warn("delete lease", "err", err)
	}
}
