// Package imagebuild builds small single-layer OCI images without a registry
// or any container tooling.
//
// minipod runs Pods on a bare containerd. To be usable on a machine with no
// network access to a registry it needs at least a pause image (the sandbox
// process, see cmd/minipod-pause) and, for tests and examples, a busybox
// image. This package writes such images as OCI image-layout tar archives
// (WriteOCI) or as docker-archive tarballs, the format of `docker save`
// (WriteDockerArchive), both of which `ctr -n minipod images import FILE.tar`
// or containerd's client.Import accept directly.
//
// Archives are reproducible: the same inputs always give the same bytes and
// digests (fixed modification times, sorted entries, uid/gid 0, gzip without
// a timestamp).
package imagebuild

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultBusyboxName and DefaultPauseName are the references tests and
// examples use.
const (
	DefaultBusyboxName = "minipod.local/busybox:1.35"
	DefaultPauseName   = "minipod.local/pause:3.10"
)

// DefaultPath is added to an image's environment when it sets no PATH.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// AnnotationImageName is containerd's annotation naming an image in an
// archive's index.json (images.AnnotationImageName in containerd).
const AnnotationImageName = "io.containerd.image.name"

// epoch is the modification time of every entry, in the layer and in the
// archive.
var epoch = time.Unix(0, 0).UTC()

// File is one entry of the single layer.
//
// Mode holds the permissions plus the type bits: none for a regular file,
// fs.ModeDir or fs.ModeSymlink; other types are rejected. fs.ModeSetuid,
// fs.ModeSetgid and fs.ModeSticky are honoured, and so are the Unix bits
// 0o4000/0o2000/0o1000, so fs.ModeDir|0o1777 gives a sticky /tmp. A Mode
// without any permission bits means the default: 0644 for Data, the source
// file's permissions for Source, 0755 for a directory.
type File struct {
	Path     string      // path inside the image, e.g. "bin/busybox" (no leading slash needed)
	Mode     os.FileMode // permissions plus type bits: regular, fs.ModeDir, fs.ModeSymlink
	Source   string      // regular file: read from this host path (streamed, not loaded into memory) ...
	Data     []byte      // ... or these bytes when Source is ""
	Linkname string      // symlink target
}

// Image describes a one-layer image.
type Image struct {
	// Name is the full reference, e.g. "minipod.local/busybox:1.35". It is
	// written as the io.containerd.image.name annotation in index.json so
	// that `ctr import` and client.Import name the image, and its tag as the
	// org.opencontainers.image.ref.name annotation, as the OCI image layout
	// and containerd's own export do.
	Name       string
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string // DefaultPath is prepended when no PATH= entry is given
	WorkingDir string
	User       string
	StopSignal string
	Labels     map[string]string
}

// Result describes a written archive.
type Result struct {
	Index    ocispec.Descriptor // the image manifest as listed in index.json
	Config   ocispec.Descriptor
	Layer    ocispec.Descriptor // the gzip-compressed layer
	DiffID   digest.Digest      // digest of the uncompressed layer
	Platform ocispec.Platform
}

// WriteOCI writes the image as an OCI image-layout tar archive (oci-layout,
// index.json, blobs/sha256/...: a gzip-compressed layer, config with
// rootfs.diff_ids = digest of the uncompressed layer, manifest) for
// runtime.GOOS/GOARCH (arm variant for GOARCH=arm from GOARM). Output is
// deterministic. Parent directories of files are added automatically.
func WriteOCI(w io.Writer, img Image) error {
	_, err := Build(w, img)
	return err
}

// Build is WriteOCI that also reports the digests it wrote.
//
// Regular files are streamed twice from their Source (once to learn the
// layer's digest and size, which the archive needs before the layer's
// bytes, and once to write it) so memory use does not depend on file
// sizes. A source that changes in between makes Build fail.
func Build(w io.Writer, img Image) (Result, error) {
	var res Result
	if img.Name == "" {
		return res, errors.New("imagebuild: image name is empty")
	}
	if err := checkRef(img.Name); err != nil {
		return res, err
	}
	entries, err := layerEntries(img.Files)
	if err != nil {
		return res, err
	}

	// Pass 1: digests and size of the layer.
	layer, err := writeLayer(io.Discard, entries)
	if err != nil {
		return res, err
	}

	platform := Platform()
	cfgJSON, err := configJSON(img, platform, layer.diffID)
	if err != nil {
		return res, err
	}
	cfgDesc := descriptor(ocispec.MediaTypeImageConfig, cfgJSON)
	layerDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    layer.digest,
		Size:      layer.size,
	}

	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cfgDesc,
		Layers:    []ocispec.Descriptor{layerDesc},
	}
	manifestJSON, err := json.Marshal(manifest)
	if err != nil {
		return res, err
	}
	manifestDesc := descriptor(ocispec.MediaTypeImageManifest, manifestJSON)
	manifestDesc.Platform = &platform
	manifestDesc.Annotations = map[string]string{
		AnnotationImageName:       img.Name,
		ocispec.AnnotationRefName: refName(img.Name),
	}

	index := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{manifestDesc},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return res, err
	}
	layoutJSON, err := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err != nil {
		return res, err
	}

	tw := tar.NewWriter(w)
	if err := writeArchiveFile(tw, ocispec.ImageLayoutFile, layoutJSON); err != nil {
		return res, err
	}
	if err := writeArchiveFile(tw, ocispec.ImageIndexFile, indexJSON); err != nil {
		return res, err
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir,
			Name:     dir,
			Mode:     0o755,
			ModTime:  epoch,
		}); err != nil {
			return res, err
		}
	}

	// Pass 2: stream the layer into the archive.
	if err := tw.WriteHeader(blobHeader(layer.digest, layer.size)); err != nil {
		return res, err
	}
	again, err := writeLayer(tw, entries)
	if err != nil {
		return res, err
	}
	if again != layer {
		return res, errors.New("imagebuild: layer content changed while writing (a source file was modified?)")
	}
	if err := writeArchiveFile(tw, blobPath(cfgDesc.Digest), cfgJSON); err != nil {
		return res, err
	}
	if err := writeArchiveFile(tw, blobPath(manifestDesc.Digest), manifestJSON); err != nil {
		return res, err
	}
	if err := tw.Close(); err != nil {
		return res, err
	}

	res = Result{
		Index:    manifestDesc,
		Config:   cfgDesc,
		Layer:    layerDesc,
		DiffID:   layer.diffID,
		Platform: platform,
	}
	return res, nil
}

// configJSON is the image's config (OCI, which Docker reads as its own) for a
// single layer.
func configJSON(img Image, platform ocispec.Platform, diffID digest.Digest) ([]byte, error) {
	cfg := ocispec.Image{
		Platform: platform,
		Config: ocispec.ImageConfig{
			User:       img.User,
			Env:        withPath(img.Env),
			Entrypoint: img.Entrypoint,
			Cmd:        img.Cmd,
			WorkingDir: img.WorkingDir,
			Labels:     img.Labels,
			StopSignal: img.StopSignal,
		},
		RootFS: ocispec.RootFS{
			Type:    "layers",
			DiffIDs: []digest.Digest{diffID},
		},
		History: []ocispec.History{{CreatedBy: "minipod imagebuild"}},
	}
	return json.Marshal(cfg)
}

// WriteOCIFile writes the archive to path atomically: into a temporary file
// in the same directory that is renamed over path on success.
func WriteOCIFile(path string, img Image) (Result, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return Result{}, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename

	res, err := Build(f, img)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// Platform returns the platform images are built for: runtime.GOOS and
// runtime.GOARCH, with variant "v<GOARM>" for 32-bit arm (GOARM as recorded
// in the binary's build info, v7 if unknown).
func Platform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if runtime.GOARCH == "arm" {
		p.Variant = "v7"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "GOARM" && s.Value != "" {
					// Go 1.22+ allows "7,softfloat".
					v, _, _ := strings.Cut(s.Value, ",")
					p.Variant = "v" + v
				}
			}
		}
	}
	return p
}

// withPath returns env with DefaultPath prepended unless it sets PATH.
func withPath(env []string) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return env
		}
	}
	return append([]string{DefaultPath}, env...)
}

// checkRef does a light sanity check of an image reference; containerd does
// the real parsing on import.
func checkRef(ref string) error {
	if strings.ContainsAny(ref, " \t\r\n") || strings.HasPrefix(ref, "/") || strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ":") {
		return fmt.Errorf("imagebuild: invalid image reference %q", ref)
	}
	return nil
}

// refName is the OCI reference name of an image reference: its tag
// ("1.35" for "minipod.local/busybox:1.35"), or the whole reference when it
// has no tag (containerd's ociReferenceName does the same).
func refName(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	last, _, _ = strings.Cut(last, "@")
	if _, tag, ok := strings.Cut(last, ":"); ok && tag != "" {
		return tag
	}
	return ref
}

func descriptor(mediaType string, data []byte) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: mediaType,
		Digest:    sha256Digest(data),
		Size:      int64(len(data)),
	}
}

func sha256Digest(data []byte) digest.Digest {
	sum := sha256.Sum256(data)
	return digest.Digest("sha256:" + hex.EncodeToString(sum[:]))
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

func blobHeader(d digest.Digest, size int64) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     blobPath(d),
		Mode:     0o644,
		Size:     size,
		ModTime:  epoch,
	}
}

func writeArchiveFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Mode:     0o644,
		Size:     int64(len(data)),
		ModTime:  epoch,
	}); err != nil {
		return err
	}
	_, err := io.Copy(tw, bytes.NewReader(data))
	return err
}
