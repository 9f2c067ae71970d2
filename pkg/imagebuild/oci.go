// Package imagebuild writes one-layer OCI image archives without a registry or a build tool:
// the busybox image the tests and examples use, made from Debian's busybox-static, and the pod
// sandbox's pause image, made from minipod-pause. The archives are OCI image layouts in a tar
// stream, which containerd imports directly.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	goruntime "runtime"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// File is one entry of the image's single layer.
type File struct {
	Path     string      // inside the image, e.g. "bin/busybox"
	Mode     os.FileMode // permissions plus type: regular, fs.ModeDir or fs.ModeSymlink
	Source   string      // a regular file's content is read from this host path ...
	Data     []byte      // ... or is this, when Source is ""
	Linkname string      // a symlink's target
}

// Image describes a one-layer image.
type Image struct {
	Name       string // full reference; containerd names the imported image after it
	Files      []File
	Entrypoint []string
	Cmd        []string
	Env        []string
	WorkingDir string
	User       string
	StopSignal string
	Labels     map[string]string
}

// References the tests and examples use.
const (
	DefaultBusyboxName = "minipod.local/busybox:1.35"
	DefaultPauseName   = "minipod.local/pause:3.10"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// epoch is every entry's mtime, so that the same inputs give the same digests.
var epoch = time.Unix(0, 0).UTC()

// WriteOCI writes img as an OCI image-layout tar archive for this machine's platform. The
// output is deterministic: the same inputs give the same bytes.
func WriteOCI(w io.Writer, img Image) error {
	if img.Name == "" {
		return fmt.Errorf("image name is required")
	}
	// The layer is built in memory: test and pause images are a few MB.
	var gz bytes.Buffer
	diffID, err := writeLayer(&gz, img.Files)
	if err != nil {
		return err
	}
	layer := blob(ocispec.MediaTypeImageLayerGzip, gz.Bytes())

	env := img.Env
	if len(env) == 0 {
		env = []string{defaultPath}
	}
	platform := platform()
	cfg := ocispec.Image{
		Platform: platform,
		Config: ocispec.ImageConfig{
			Entrypoint: img.Entrypoint, Cmd: img.Cmd, Env: env, WorkingDir: img.WorkingDir,
			User: img.User, StopSignal: img.StopSignal, Labels: img.Labels,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		Created: &epoch,
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	config := blob(ocispec.MediaTypeImageConfig, cfgJSON)
	man := ocispec.Manifest{
		Versioned: specsgo.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    config.desc,
		Layers:    []ocispec.Descriptor{layer.desc},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return err
	}
	manifest := blob(ocispec.MediaTypeImageManifest, manJSON)
	mdesc := manifest.desc
	mdesc.Platform = &platform
	mdesc.Annotations = map[string]string{
		"io.containerd.image.name": img.Name,
		ocispec.AnnotationRefName:  refName(img.Name),
	}
	index := ocispec.Index{
		Versioned: specsgo.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{mdesc},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return err
	}
	layoutJSON, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})

	tw := tar.NewWriter(w)
	entries := []struct {
		name string
		data []byte
	}{
		{ocispec.ImageLayoutFile, layoutJSON},
		{"index.json", indexJSON},
		{"blobs/sha256/" + layer.desc.Digest.Encoded(), layer.data},
		{"blobs/sha256/" + config.desc.Digest.Encoded(), config.data},
		{"blobs/sha256/" + manifest.desc.Digest.Encoded(), manifest.data},
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: e.name, Mode: 0o644, Size: int64(len(e.data)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// refName is the tag part of a reference, which is what the OCI ref.name annotation holds.
func refName(ref string) string {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[i+1:]
	}
	return "latest"
}

func platform() ocispec.Platform {
	p := ocispec.Platform{OS: "linux", Architecture: goruntime.GOARCH}
	if goruntime.GOARCH == "arm" {
		p.Variant = "v7"
		if v := os.Getenv("GOARM"); v != "" {
			p.Variant = "v" + strings.SplitN(v, ",", 2)[0]
		}
	}
	if goruntime.GOARCH == "arm64" {
		p.Variant = "v8"
	}
	return p
}

type blobData struct {
	desc ocispec.Descriptor
	data []byte
}

func blob(mediaType string, data []byte) blobData {
	return blobData{desc: ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}, data: data}
}

// writeLayer writes the files as a gzip-compressed tar and returns the digest of the
// uncompressed tar (the layer's diff ID).
func writeLayer(w io.Writer, files []File) (digest.Digest, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return "", err
	}
	// gzip.Writer writes no timestamp when ModTime is zero: the output stays deterministic.
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(zw, h))
	if err := writeEntries(tw, files); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return digest.NewDigest(digest.SHA256, h), nil
}

func writeEntries(tw *tar.Writer, files []File) error {
	byPath := map[string]File{}
	for _, f := range files {
		p := strings.Trim(path.Clean("/"+f.Path), "/")
		if p == "" {
			continue
		}
		f.Path = p
		byPath[p] = f
		// Parent directories are added when not given.
		for d := path.Dir(p); d != "." && d != "/"; d = path.Dir(d) {
			if _, ok := byPath[d]; !ok {
				byPath[d] = File{Path: d, Mode: fs.ModeDir | 0o755}
			}
		}
	}
	paths := make([]string, 0, len(byPath))
	for p := range byPath {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := byPath[p]
		hdr := &tar.Header{Name: p, Mode: int64(f.Mode.Perm()), ModTime: epoch, Format: tar.FormatPAX}
		if f.Mode&fs.ModeSticky != 0 {
			hdr.Mode |= 0o1000
		}
		switch {
		case f.Mode.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, p+"/"
		case f.Mode&fs.ModeSymlink != 0:
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, f.Linkname
			hdr.Mode = 0o777
		default:
			hdr.Typeflag = tar.TypeReg
			if f.Source == "" {
				hdr.Size = int64(len(f.Data))
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				if _, err := tw.Write(f.Data); err != nil {
					return err
				}
				continue
			}
			src, err := os.Open(f.Source)
			if err != nil {
				return fmt.Errorf("image file %s: %w", p, err)
			}
			st, err := src.Stat()
			if err != nil {
				src.Close()
				return err
			}
			hdr.Size = st.Size()
			if err := tw.WriteHeader(hdr); err != nil {
				src.Close()
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return fmt.Errorf("image file %s: %w", p, err)
			}
			continue
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	return nil
}
