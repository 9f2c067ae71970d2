package runtime

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/transfer"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullProgress counts the bytes of one pull. Pull fills it from its own goroutines; Bytes may
// be called at any time from any goroutine. The zero value is ready to use.
//
// It costs no call to containerd: the pull is client-side (the classic APIs that containerd
// 1.6, 1.7 and 2.x all serve), so the blobs it needs are learnt from the image handlers as
// the manifests are read, and the bytes from the registry are counted as they are read.
type PullProgress struct {
	mu   sync.Mutex
	size map[digest.Digest]int64 // every blob the pull is known to need
	read map[digest.Digest]int64 // bytes of a blob read from the registry so far
	done map[digest.Digest]bool  // blobs fetched, or found already present
}

// Bytes returns how many bytes of the image are in hand and how many the pull needs, as far
// as it knows: total grows while manifests are read, and is complete once the image's
// manifest is (before its layers are fetched).
func (p *PullProgress) Bytes() (done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, s := range p.size {
		total += s
		if p.done[d] {
			done += s
		} else {
			done += min(p.read[d], s)
		}
	}
	return done, total
}

func (p *PullProgress) need(descs ...ocispec.Descriptor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.size == nil {
		p.size = map[digest.Digest]int64{}
	}
	for _, d := range descs {
		if d.Size > 0 {
			p.size[d.Digest] = d.Size
		}
	}
}

func (p *PullProgress) finish(d digest.Digest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = map[digest.Digest]bool{}
	}
	p.done[d] = true
}

// at records that the reader of blob d is at offset n (add false) or moved on by n (add true).
func (p *PullProgress) at(d digest.Digest, n int64, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.read == nil {
		p.read = map[digest.Digest]int64{}
	}
	if add {
		n += p.read[d]
	}
	p.read[d] = n
}

// handlerWrapper is for client.WithImageHandlerWrapper: it learns each blob's children (a
// manifest's config and layers, an index's manifests for this platform) when its handler
// returns them, and that the blob itself is in the content store.
func (p *PullProgress) handlerWrapper(h images.Handler) images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		p.need(desc)
		children, err := h.Handle(ctx, desc)
		if err == nil {
			p.need(children...)
			p.finish(desc.Digest)
		}
		return children, err
	})
}

// resolver counts what its fetchers read.
type countingResolver struct {
	remotes.Resolver
	p *PullProgress
}

func (r countingResolver) Fetcher(ctx context.Context, ref string) (remotes.Fetcher, error) {
	f, err := r.Resolver.Fetcher(ctx, ref)
	if err != nil {
		return nil, err
	}
	return remotes.FetcherFunc(func(ctx context.Context, desc ocispec.Descriptor) (io.ReadCloser, error) {
		rc, err := f.Fetch(ctx, desc)
		if err != nil {
			return nil, err
		}
		c := &countingReader{rc: rc, d: desc.Digest, p: r.p}
		if _, ok := rc.(io.Seeker); ok {
			// Resuming or restarting a blob seeks; keep that possible.
			return &countingReadSeeker{c}, nil
		}
		return c, nil
	}), nil
}

// SetOptions passes the client's download options on (remotes.ResolverWithOptions).
func (r countingResolver) SetOptions(opts ...transfer.ImageResolverOption) {
	if ro, ok := r.Resolver.(remotes.ResolverWithOptions); ok {
		ro.SetOptions(opts...)
	}
}

type countingReader struct {
	rc io.ReadCloser
	d  digest.Digest
	p  *PullProgress
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.rc.Read(b)
	if n > 0 {
		c.p.at(c.d, int64(n), true)
	}
	return n, err
}

func (c *countingReader) Close() error { return c.rc.Close() }

type countingReadSeeker struct{ *countingReader }

func (c *countingReadSeeker) Seek(off int64, whence int) (int64, error) {
	n, err := c.rc.(io.Seeker).Seek(off, whence)
	if err == nil {
		c.p.at(c.d, n, false)
	}
	return n, err
}

// FormatBytes writes a size in binary units with one decimal, as the kubelet's pull and disk
// messages do: 512 B, 3.1 KiB, 12.0 MiB (TiB the largest unit).
func FormatBytes(n int64) string {
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
