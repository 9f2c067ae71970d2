package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageRecord is one name in containerd's image store, as image garbage collection sees it.
type ImageRecord struct {
	Name      string
	ID        string // digest of the name's target (manifest or index): names sharing it are one image
	Size      int64  // bytes of content the image's manifest for this platform refers to; 0 when unknown
	Pinned    bool   // labelled LabelPinned: imported, never to be collected
	CreatedAt time.Time
	UpdatedAt time.Time
	target    ocispec.Descriptor
}

// ListImages returns every image name in the namespace with its target, size and labels.
// An image whose content is partly missing has the size of what is there counted as 0.
func (r *Runtime) ListImages(ctx context.Context) ([]ImageRecord, error) {
	ctx = r.ns(ctx)
	list, err := r.client.ImageService().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageRecord, 0, len(list))
	for _, i := range list {
		size, err := client.NewImage(r.client, i).Size(ctx)
		if err != nil {
			size = 0
		}
		out = append(out, ImageRecord{
			Name:      i.Name,
			ID:        i.Target.Digest.String(),
			Size:      size,
			Pinned:    i.Labels[LabelPinned] == Pinned,
			CreatedAt: i.CreatedAt,
			UpdatedAt: i.UpdatedAt,
			target:    i.Target,
		})
	}
	return out, nil
}

// DeleteImage removes an image name from containerd's image store, only while it still points
// at the target it was listed with (a name pulled again in between is left alone: containerd
// 1.7 and later check it, 1.6 ignores the condition). With sync, containerd's garbage
// collection of the content and snapshots no longer referenced has run when it returns.
// A name already gone is not an error.
func (r *Runtime) DeleteImage(ctx context.Context, img ImageRecord, sync bool) error {
	ctx = r.ns(ctx)
	opts := []images.DeleteOpt{}
	if img.target.Digest != "" {
		t := img.target
		opts = append(opts, images.DeleteTarget(&t))
	}
	if sync {
		opts = append(opts, images.SynchronousDelete())
	}
	err := r.client.ImageService().Delete(ctx, img.Name, opts...)
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete image %s: %w", img.Name, err)
	}
	return nil
}

// contentPlugin is the type and ID of containerd's local content store, which exports its
// root directory.
const contentPlugin = "type==io.containerd.content.v1,id==content"

// ContentRoot asks containerd where its content store keeps blobs (the content plugin's "root"
// export, present in containerd 1.6, 1.7 and 2.x). It fails when containerd does not say.
func (r *Runtime) ContentRoot(ctx context.Context) (string, error) {
	resp, err := r.client.IntrospectionService().Plugins(r.ns(ctx), contentPlugin)
	if err != nil {
		return "", fmt.Errorf("ask containerd for its content store: %w", err)
	}
	for _, p := range resp.Plugins {
		if root := p.Exports["root"]; root != "" {
			return root, nil
		}
	}
	return "", errors.New("containerd does not say where its content store is")
}
