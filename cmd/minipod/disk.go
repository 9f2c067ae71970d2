package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/imagegc"
	"github.com/minipod/minipod/pkg/runtime"
)

// defaultContainerdRoot is containerd's own default root, used when containerd does not say
// where its content is.
const defaultContainerdRoot = "/var/lib/containerd"

// imageFSRoot is a directory on the file system holding containerd's content: containerd-root
// when set, else where containerd says its content store is, else containerd's default root.
func imageFSRoot(ctx context.Context, o *config.Config, rt *runtime.Runtime, log *slog.Logger) string {
	if o.ContainerdRoot != "" {
		return o.ContainerdRoot
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	root, err := rt.ContentRoot(ctx)
	if err != nil {
		log.Warn("image garbage collection watches containerd's default root", "root", defaultContainerdRoot, "err", err)
		return defaultContainerdRoot
	}
	return root
}

// gcPolicy is the image garbage collection policy of the configuration.
func gcPolicy(o *config.Config) imagegc.Policy {
	return imagegc.Policy{
		HighThresholdPercent: o.ImageGCHighThresholdPercent,
		LowThresholdPercent:  o.ImageGCLowThresholdPercent,
		MinAge:               o.ImageMinimumGCAge.D(),
	}
}

// pullKicker is the runtime the pod workers use: after each successful pull it asks image
// garbage collection for a check, as the kubelet checks after pulls.
type pullKicker struct {
	*runtime.Runtime
	kick func()
}

func (p pullKicker) Pull(ctx context.Context, ref string, creds runtime.Credentials, progress *runtime.PullProgress) (runtime.Image, error) {
	img, err := p.Runtime.Pull(ctx, ref, creds, progress)
	if err == nil {
		p.kick()
	}
	return img, err
}

// imagesAPI serves the API's images from the collector.
type imagesAPI struct{ gc *imagegc.Collector }

func (a imagesAPI) Images(ctx context.Context) ([]api.Image, error) {
	imgs, err := a.gc.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]api.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, apiImage(img))
	}
	return out, nil
}

func (a imagesAPI) PruneImages(ctx context.Context) (api.Pruned, error) {
	p, err := a.gc.Prune(ctx)
	out := api.Pruned{Removed: make([]api.Image, 0, len(p.Removed)), Freed: p.Freed}
	for _, img := range p.Removed {
		out.Removed = append(out.Removed, apiImage(img))
	}
	return out, err
}

func apiImage(img imagegc.Image) api.Image {
	a := api.Image{
		ID: img.ID, Names: img.Names, Size: img.Size, Pods: img.Pods, InUse: img.InUse,
		Pinned: img.Pinned, Keep: img.Keep(), FirstDetected: img.FirstDetected,
	}
	if a.Pods == nil {
		a.Pods = []string{}
	}
	if !img.LastUsed.IsZero() {
		t := img.LastUsed
		a.LastUsed = &t
	}
	return a
}
