package runtime

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func blob(name string, size int64, mediaType string) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromString(name), Size: size}
}

// fakeResolver serves blobs of zero bytes of each descriptor's size.
type fakeResolver struct {
	remotes.Resolver // only Fetcher is used
	seekable         bool
}

type seekCloser struct{ *bytes.Reader }

func (seekCloser) Close() error { return nil }

func (f fakeResolver) Fetcher(context.Context, string) (remotes.Fetcher, error) {
	return remotes.FetcherFunc(func(_ context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		r := bytes.NewReader(make([]byte, d.Size))
		if f.seekable {
			return seekCloser{r}, nil
		}
		return io.NopCloser(r), nil
	}), nil
}

func check(t *testing.T, p *PullProgress, wantDone, wantTotal int64) {
	t.Helper()
	if done, total := p.Bytes(); done != wantDone || total != wantTotal {
		t.Errorf("Bytes() = %d of %d, want %d of %d", done, total, wantDone, wantTotal)
	}
}

// The total is known once the manifest is read, before any layer is fetched; the bytes in
// hand grow as layers are read, and a finished blob counts whole.
func TestPullProgress(t *testing.T) {
	ctx := context.Background()
	var p PullProgress
	check(t, &p, 0, 0)
	index := blob("index", 300, ocispec.MediaTypeImageIndex)
	manifest := blob("manifest", 500, ocispec.MediaTypeImageManifest)
	config := blob("config", 200, ocispec.MediaTypeImageConfig)
	l1 := blob("l1", 10_000, ocispec.MediaTypeImageLayerGzip)
	l2 := blob("l2", 5_000, ocispec.MediaTypeImageLayerGzip)
	children := map[digest.Digest][]ocispec.Descriptor{
		index.Digest:    {manifest}, // the other platforms' manifests are filtered out before
		manifest.Digest: {config, l1, l2},
	}
	failing := errors.New("registry away")
	fail := map[digest.Digest]bool{}
	h := p.handlerWrapper(images.HandlerFunc(func(_ context.Context, d ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if fail[d.Digest] {
			return nil, failing
		}
		return children[d.Digest], nil
	}))
	for _, d := range []ocispec.Descriptor{index, manifest} {
		if _, err := h.Handle(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	check(t, &p, 800, 16_000)

	f, err := countingResolver{Resolver: fakeResolver{}, p: &p}.Fetcher(ctx, "ref")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := f.Fetch(ctx, l1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rc.(io.Seeker); ok {
		t.Error("a reader that cannot seek became one")
	}
	if _, err := io.CopyN(io.Discard, rc, 4_000); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 4_800, 16_000)
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	check(t, &p, 10_800, 16_000)
	if _, err := h.Handle(ctx, l1); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 10_800, 16_000) // finished: counted once

	// A failed blob counts what was read of it, not its size.
	fail[config.Digest] = true
	if _, err := h.Handle(ctx, config); !errors.Is(err, failing) {
		t.Fatal(err)
	}
	check(t, &p, 10_800, 16_000)
	// A blob already present is finished without being read.
	fail[config.Digest] = false
	if _, err := h.Handle(ctx, config); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 11_000, 16_000)

	// A resumed or restarted blob seeks: what is in hand is where the reader is.
	f, _ = countingResolver{Resolver: fakeResolver{seekable: true}, p: &p}.Fetcher(ctx, "ref")
	rc, _ = f.Fetch(ctx, l2)
	s, ok := rc.(io.ReadSeeker)
	if !ok {
		t.Fatal("a reader that can seek lost it")
	}
	if _, err := s.Seek(3_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 14_000, 16_000)
	if _, err := io.CopyN(io.Discard, s, 1_000); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 15_000, 16_000)
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 11_000, 16_000)
	if _, err := io.Copy(io.Discard, s); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Handle(ctx, l2); err != nil {
		t.Fatal(err)
	}
	check(t, &p, 16_000, 16_000)
}
