package imagebuild

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func buildDocker(t *testing.T, img Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteDockerArchive(&buf, img); err != nil {
		t.Fatalf("WriteDockerArchive: %v", err)
	}
	return buf.Bytes()
}

// TestWriteDockerArchive: the archive is what docker save writes, and it holds the same image
// (config, layer content) as the OCI archive of the same Image.
func TestWriteDockerArchive(t *testing.T) {
	in := testImage(t)
	a := untar(t, buildDocker(t, in))

	var manifests []dockerManifest
	if err := json.Unmarshal(a.files["manifest.json"], &manifests); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifests) != 1 {
		t.Fatalf("manifest.json has %d entries", len(manifests))
	}
	m := manifests[0]
	if !slices.Equal(m.RepoTags, []string{"minipod.local/test:1"}) || len(m.Layers) != 1 {
		t.Fatalf("manifest.json: %+v", m)
	}
	id := m.Layers[0][:64]
	want := []string{id + "/", id + "/VERSION", id + "/json", id + "/layer.tar", m.Config, "manifest.json", "repositories"}
	if !slices.Equal(a.order, want) {
		t.Errorf("archive entries\n got %q\nwant %q", a.order, want)
	}
	if string(a.files[id+"/VERSION"]) != "1.0" {
		t.Errorf("VERSION %q", a.files[id+"/VERSION"])
	}
	var repos map[string]map[string]string
	if err := json.Unmarshal(a.files["repositories"], &repos); err != nil || repos["minipod.local/test"]["1"] != id {
		t.Errorf("repositories %s (%v)", a.files["repositories"], err)
	}

	cfgData := a.files[m.Config]
	if m.Config != sha(cfgData)+".json" {
		t.Errorf("config file %s is not named by its digest %s", m.Config, sha(cfgData))
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgData, &cfg); err != nil {
		t.Fatal(err)
	}
	layer := a.files[m.Layers[0]]
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].Encoded() != sha(layer) {
		t.Errorf("config diff_ids %v, layer.tar digest %s", cfg.RootFS.DiffIDs, sha(layer))
	}
	// The layer is a plain tar, the same one the OCI archive gzips.
	oci := readImage(t, build(t, in))
	if !slices.Equal(cfg.RootFS.DiffIDs, oci.config.RootFS.DiffIDs) {
		t.Errorf("diff_ids %v, OCI archive's %v", cfg.RootFS.DiffIDs, oci.config.RootFS.DiffIDs)
	}
	if cfg.Config.User != "65534:65534" || !slices.Equal(cfg.Config.Entrypoint, in.Entrypoint) || !maps.Equal(cfg.Config.Labels, in.Labels) {
		t.Errorf("config %+v", cfg.Config)
	}
	var names []string
	tr := tar.NewReader(bytes.NewReader(layer))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer.tar: %v", err)
		}
		names = append(names, strings.TrimSuffix(hdr.Name, "/"))
	}
	if !slices.Equal(names, oci.names) {
		t.Errorf("layer entries %q, OCI archive's %q", names, oci.names)
	}

	if b := buildDocker(t, in); !bytes.Equal(b, buildDocker(t, in)) {
		t.Error("two builds differ")
	}
}

func TestWriteDockerArchiveNames(t *testing.T) {
	for name, want := range map[string]string{
		"busybox":                  "busybox:latest",
		"busybox:1.36":             "busybox:1.36",
		"localhost:5000/app":       "localhost:5000/app:latest",
		"localhost:5000/team/a:v2": "localhost:5000/team/a:v2",
	} {
		a := untar(t, buildDocker(t, Image{Name: name, Files: []File{{Path: "f", Data: []byte("x")}}}))
		var m []dockerManifest
		if err := json.Unmarshal(a.files["manifest.json"], &m); err != nil || len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{want}) {
			t.Errorf("%s: manifest.json %s, want RepoTags [%s]", name, a.files["manifest.json"], want)
		}
	}
	for _, bad := range []string{"", "x.local/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "a b"} {
		if err := WriteDockerArchive(io.Discard, Image{Name: bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if err := WriteDockerArchive(&errWriter{n: 1000}, testImage(t)); err == nil {
		t.Error("write error not reported")
	}
}
