package imagebuild

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// WriteDockerArchive writes the image the way `docker save` does (the
// "docker-archive" format that `docker load`, `ctr images import` and
// containerd's client.Import read): the layer uncompressed as
// <id>/layer.tar beside <id>/VERSION and <id>/json, the config as
// <config-digest>.json, then manifest.json naming the config, the layer and
// the image's tag (RepoTags), and repositories. Name must carry no digest (a
// docker archive names images by tag); ":latest" is added when it has no tag.
// Output is deterministic, and the layer is streamed from its sources twice
// as in Build.
func WriteDockerArchive(w io.Writer, img Image) error {
	if img.Name == "" {
		return errors.New("imagebuild: image name is empty")
	}
	if err := checkRef(img.Name); err != nil {
		return err
	}
	repo, tag, err := splitTag(img.Name)
	if err != nil {
		return err
	}
	entries, err := layerEntries(img.Files)
	if err != nil {
		return err
	}
	// Pass 1: the layer's digest and size, which its header and the config need.
	layer, err := writeRawLayer(io.Discard, entries)
	if err != nil {
		return err
	}
	platform := Platform()
	cfgJSON, err := configJSON(img, platform, layer.diffID)
	if err != nil {
		return err
	}
	cfgName := sha256Digest(cfgJSON).Encoded() + ".json"
	// Docker's v1 layer ID; any 64 hex digits do for a loader that reads manifest.json. A
	// layer with no parent gets the digest of its diffID, as a stable choice.
	id := digest.FromString(layer.diffID.String()).Encoded()
	legacy, err := json.Marshal(map[string]any{
		"id":           id,
		"created":      epoch.Format("2006-01-02T15:04:05Z"),
		"os":           platform.OS,
		"architecture": platform.Architecture,
	})
	if err != nil {
		return err
	}
	manifest, err := json.Marshal([]dockerManifest{{
		Config:   cfgName,
		RepoTags: []string{repo + ":" + tag},
		Layers:   []string{id + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	repositories, err := json.Marshal(map[string]map[string]string{repo: {tag: id}})
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: id + "/", Mode: 0o755, ModTime: epoch}); err != nil {
		return err
	}
	if err := writeArchiveFile(tw, id+"/VERSION", []byte("1.0")); err != nil {
		return err
	}
	if err := writeArchiveFile(tw, id+"/json", legacy); err != nil {
		return err
	}
	// Pass 2: stream the layer into the archive.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: id + "/layer.tar", Mode: 0o644, Size: layer.size, ModTime: epoch}); err != nil {
		return err
	}
	again, err := writeRawLayer(tw, entries)
	if err != nil {
		return err
	}
	if again != layer {
		return errors.New("imagebuild: layer content changed while writing (a source file was modified?)")
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{cfgName, cfgJSON}, {"manifest.json", manifest}, {"repositories", repositories}} {
		if err := writeArchiveFile(tw, f.name, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// dockerManifest is one entry of a docker archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// splitTag splits a reference into repository and tag, "latest" when it has none.
func splitTag(ref string) (repo, tag string, err error) {
	if strings.Contains(ref, "@") {
		return "", "", fmt.Errorf("imagebuild: %q: a docker archive names an image by tag, not digest", ref)
	}
	slash := strings.LastIndex(ref, "/")
	if i := strings.LastIndex(ref, ":"); i > slash {
		return ref[:i], ref[i+1:], nil
	}
	return ref, "latest", nil
}
