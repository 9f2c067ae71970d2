package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/minipod/minipod/pkg/userns"
)

// imageMeta is what minipod reads from an image's config: the run configuration and the
// snapshot its layers unpack to. Both are fixed by the image's digest.
type imageMeta struct {
	config  ocispec.ImageConfig
	chainID string // the parent of a container's writable snapshot
}

// imageCache keeps imageMeta by manifest (or index) digest. Without it every container start
// read the image's manifest and config three times over (the run configuration, the unpack
// check and the snapshot's parent), each read two calls to containerd. A digest names fixed
// content, so an entry is never stale; a retagged image has another digest.
type imageCache struct {
	mu sync.Mutex
	m  map[digest.Digest]imageMeta
}

// imageCacheMax bounds the cache. A node runs a handful of images; a node that cycles through
// more only reads configs again.
const imageCacheMax = 64

func (c *imageCache) get(d digest.Digest) (imageMeta, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.m[d]
	return m, ok
}

func (c *imageCache) put(d digest.Digest, m imageMeta) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= imageCacheMax {
		c.m = map[digest.Digest]imageMeta{}
	}
	c.m[d] = m
}

// resolve finds an image by reference (see image) and its config, read once per digest.
func (r *Runtime) resolve(ctx context.Context, ref string) (client.Image, imageMeta, error) {
	img, err := r.image(ctx, ref)
	if err != nil {
		return nil, imageMeta{}, err
	}
	d := img.Target().Digest
	if m, ok := r.images.get(d); ok {
		return img, m, nil
	}
	spec, err := img.Spec(ctx)
	if err != nil {
		return nil, imageMeta{}, fmt.Errorf("read config of image %s: %w", ref, err)
	}
	m := imageMeta{config: spec.Config, chainID: identity.ChainID(spec.RootFS.DiffIDs).String()}
	r.images.put(d, m)
	return img, m, nil
}

// resolvedImage is what GetImage and PrepareRootfs return for an image that resolve found
// under ref: the two must agree, since a start takes either as ContainerConfig.Resolved.
func resolvedImage(ref string, img client.Image, meta imageMeta) Image {
	return Image{Ref: ref, ID: img.Target().Digest.String(), Config: meta.config, name: img.Name()}
}

// imageFor is the name and metadata of the image cfg is made of: cfg.Resolved's when the
// caller passes what GetImage gave it and its metadata is still cached, else looked up now.
func (r *Runtime) imageFor(ctx context.Context, cfg *ContainerConfig) (string, imageMeta, error) {
	if i := cfg.Resolved; i != nil && i.name != "" {
		if m, ok := r.images.get(digest.Digest(i.ID)); ok {
			return i.name, m, nil
		}
	}
	img, meta, err := r.resolve(ctx, cfg.Image)
	if err != nil {
		return "", imageMeta{}, err
	}
	return img.Name(), meta, nil
}

// leaseTTL is how long a lease outlives a daemon that died holding it: containerd's garbage
// collector drops it then, and with it the snapshots no container took.
const leaseTTL = 10 * time.Minute

// transferTTL is how long the lease of a pull or an import lasts, containerd's client default:
// either may take long. A daemon killed mid-transfer leaves its lease to the next start
// (DeleteLeases), not to the 24 hours.
const transferTTL = 24 * time.Hour

// labelLease marks the leases minipod makes, so that a restarted daemon finds the ones a crash
// left (DeleteLeases). Its value names the Runtime that made it.
const labelLease = "minipod.io/lease"

// NewLease makes a lease: what is created under it (ContainerConfig.Lease, PrepareRootfs) is
// safe from containerd's garbage collector until DeleteLease, or leaseTTL.
func (r *Runtime) NewLease(ctx context.Context) (string, error) {
	return r.newLease(ctx, leaseTTL)
}

func (r *Runtime) newLease(ctx context.Context, ttl time.Duration) (string, error) {
	l, err := r.client.LeasesService().Create(r.ns(ctx), leases.WithRandomID(), leases.WithExpiration(ttl),
		leases.WithLabel(labelLease, r.run))
	if err != nil {
		return "", fmt.Errorf("create lease: %w", err)
	}
	return l.ID, nil
}

// withTransferLease runs a pull or an import under a lease of minipod's own. The containerd
// client would otherwise make an unlabelled one, which a daemon killed mid-transfer leaves
// holding the content fetched so far for 24 hours.
func (r *Runtime) withTransferLease(ctx context.Context, fn func(context.Context) error) error {
	id, err := r.newLease(ctx, transferTTL)
	if err != nil {
		return err
	}
	defer func() { _ = r.DeleteLease(context.WithoutCancel(ctx), id) }()
	return fn(leases.WithLease(ctx, id))
}

// DeleteLease ends a lease. A snapshot made under it that no container refers to is then
// garbage, and containerd's garbage collector removes it.
func (r *Runtime) DeleteLease(ctx context.Context, id string) error {
	err := r.client.LeasesService().Delete(r.ns(ctx), leases.Lease{ID: id})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete lease %s: %w", id, err)
	}
	return nil
}

// DeleteLeases ends every lease an earlier Runtime made (NewLease, pulls and imports): a daemon
// calls it when it starts, and such a lease is then left by a start, pull or import that an
// earlier run did not finish. This Runtime's own leases stay: an image import may already
// run beside it.
func (r *Runtime) DeleteLeases(ctx context.Context) error {
	ctx = r.ns(ctx)
	ls := r.client.LeasesService()
	list, err := ls.List(ctx)
	if err != nil {
		return fmt.Errorf("list leases: %w", err)
	}
	var errs []error
	for _, l := range list {
		if run, ok := l.Labels[labelLease]; ok && run != r.run {
			if err := ls.Delete(ctx, l); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete lease %s: %w", l.ID, err))
			}
		}
	}
	return errors.Join(errs...)
}

// PrepareRootfs makes container id's writable snapshot of image ref ahead of its container
// record, under lease (which keeps it until the record refers to it): a pod's member
// containers get their root filesystems while the pause container starts. It returns the
// image it used, as GetImage would have; CreateContainer takes the snapshot with RootfsReady.
// The image must be present and unpacked: PrepareRootfs never pulls nor unpacks, and the
// snapshot can only be made on the image's unpacked layers.
func (r *Runtime) PrepareRootfs(ctx context.Context, lease, id, ref string) (Image, error) {
	ctx = leases.WithLease(r.ns(ctx), lease)
	img, meta, err := r.resolve(ctx, ref)
	if err != nil {
		return Image{}, err
	}
	// Noted before it is asked for: a Prepare whose answer is lost may still have made it.
	r.prepared.add(id)
	if _, err := r.client.SnapshotService(r.snapshotter).Prepare(ctx, id, meta.chainID); err != nil {
		return Image{}, fmt.Errorf("prepare rootfs of %s: %w", id, err)
	}
	return resolvedImage(ref, img, meta), nil
}

// withRootfs gives the container its writable snapshot, keyed by its ID: made now from the
// image's unpacked layers, or taken as PrepareRootfs made it. It does what the client's
// WithImage and WithNewSnapshot do, minus their second read of the image's manifest and
// config and their question about ID-mapping support, which minipod never asks for. With a
// user namespace, the snapshot is made on a copy of the layers that the range owns.
func (r *Runtime) withRootfs(id, image string, meta imageMeta, ready bool, ns *userns.Range) client.NewContainerOpts {
	return func(ctx context.Context, _ *client.Client, c *containers.Container) error {
		if !ready {
			r.prepared.add(id)
			if err := r.prepareRootfs(ctx, id, meta.chainID, ns); err != nil {
				return err
			}
		}
		c.Image = image
		c.Snapshotter = r.snapshotter
		c.SnapshotKey = id
		return nil
	}
}

// prepareRootfs makes the writable snapshot id on the image's layers, or on their copy that
// the range ns owns.
func (r *Runtime) prepareRootfs(ctx context.Context, id, chainID string, ns *userns.Range) error {
	sn := r.client.SnapshotService(r.snapshotter)
	if ns == nil {
		_, err := sn.Prepare(ctx, id, chainID)
		return err
	}
	for try := 0; ; try++ {
		parent, err := r.remappedParent(ctx, chainID, *ns)
		if err != nil {
			return err
		}
		_, err = sn.Prepare(ctx, id, parent)
		// The copy is garbage once no snapshot is made on it: the collector may take it
		// between the look and the Prepare. It is made again then.
		if err == nil || !errdefs.IsNotFound(err) || try > 0 {
			return err
		}
	}
}

// remappedParent returns the key of the committed snapshot that holds the image's layers
// (chainID) owned by the range: made now (the layers copied up and shifted, see
// userns.Range.Shift) unless it exists. It is made under the caller's lease; afterwards the
// snapshots made on it keep it, and containerd's garbage collector removes it once there are
// none, so nothing outlives the pod's containers. A pod's containers of one image share it;
// two pods never do, as no two pods hold one range.
//
// This is what the client's WithRemappedSnapshot does, with a walk that never follows a
// symlink of the image, and one copy made at a time per key: a pod's containers start side
// by side.
func (r *Runtime) remappedParent(ctx context.Context, chainID string, ns userns.Range) (string, error) {
	key := fmt.Sprintf("userns-%d-%d-%s", ns.HostID, ns.Size, chainID)
	unlock := r.remaps.lock(key)
	defer unlock()
	sn := r.client.SnapshotService(r.snapshotter)
	if _, err := sn.Stat(ctx, key); err == nil {
		return key, nil
	} else if !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("look for remapped rootfs: %w", err)
	}
	work := key + "-work"
	// A crash mid-copy left this, under a lease of its own that ended since.
	if err := sn.Remove(ctx, work); err != nil && !errdefs.IsNotFound(err) {
		return "", fmt.Errorf("remove leftover %s: %w", work, err)
	}
	mounts, err := sn.Prepare(ctx, work, chainID)
	if err != nil {
		return "", fmt.Errorf("prepare remapped rootfs: %w", err)
	}
	err = mount.WithTempMount(ctx, mounts, ns.Shift)
	if err == nil {
		err = sn.Commit(ctx, key, work)
	}
	if err != nil {
		_ = sn.Remove(context.WithoutCancel(ctx), work)
		return "", fmt.Errorf("remap rootfs to user namespace %s: %w", ns, err)
	}
	return key, nil
}

// keyLocks serialises work per key.
type keyLocks struct {
	mu sync.Mutex
	m  map[string]*keyLock
}

type keyLock struct {
	mu    sync.Mutex
	users int
}

// lock takes the key's lock and returns its release.
func (k *keyLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyLock{}
		k.m[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
