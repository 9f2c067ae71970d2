package imagebuild

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestRefName(t *testing.T) {
	tests := []struct{ ref, want string }{
		{"minipod.local/busybox:1.35", "1.35"},
		{"minipod.local/pause:3.10", "3.10"},
		{"busybox:latest", "latest"},
		{"localhost:5000/app:v2", "v2"},
		{"localhost:5000/app", "localhost:5000/app"},
		{"minipod.local/busybox", "minipod.local/busybox"},
		{"busybox", "busybox"},
		{"x.local/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "x.local/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
		{"x.local/a:t@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "t"},
	}
	for _, tt := range tests {
		if got := refName(tt.ref); got != tt.want {
			t.Errorf("refName(%q) = %q, want %q", tt.ref, got, tt.want)
		}
	}
}

// TestIndexAnnotations: index.json names the image for containerd (full reference) and for
// OCI tools (the tag).
func TestIndexAnnotations(t *testing.T) {
	tests := []struct{ name, wantRef string }{
		{DefaultBusyboxName, "1.35"},
		{DefaultPauseName, "3.10"},
		{"example.local/team/app:2024-01", "2024-01"},
		{"example.local/untagged", "example.local/untagged"},
	}
	for _, tt := range tests {
		img := readImage(t, build(t, Image{Name: tt.name, Files: []File{{Path: "f", Data: []byte("x")}}}))
		got := img.index.Manifests[0].Annotations
		want := map[string]string{AnnotationImageName: tt.name, ocispec.AnnotationRefName: tt.wantRef}
		if !maps.Equal(got, want) {
			t.Errorf("%s: annotations %v, want %v", tt.name, got, want)
		}
	}
}

// TestArchiveEntries: the archive holds the layout files and exactly the three blobs the index
// reaches, in a fixed order, and Build's Result describes them.
func TestArchiveEntries(t *testing.T) {
	var buf bytes.Buffer
	res, err := Build(&buf, testImage(t))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	a := untar(t, buf.Bytes())
	img := readImage(t, buf.Bytes())

	want := []string{
		"oci-layout",
		"index.json",
		"blobs/",
		"blobs/sha256/",
		blobPath(res.Layer.Digest),
		blobPath(res.Config.Digest),
		blobPath(res.Index.Digest),
	}
	if !slices.Equal(a.order, want) {
		t.Errorf("archive entries\n got %q\nwant %q", a.order, want)
	}
	checks := []struct {
		what      string
		got, want ocispec.Descriptor
	}{
		{"manifest", res.Index, img.index.Manifests[0]},
		{"config", res.Config, img.manifest.Config},
		{"layer", res.Layer, img.manifest.Layers[0]},
	}
	for _, c := range checks {
		if c.got.Digest != c.want.Digest || c.got.Size != c.want.Size || c.got.MediaType != c.want.MediaType {
			t.Errorf("Result.%s = %v %d %s, archive has %v %d %s", c.what,
				c.got.Digest, c.got.Size, c.got.MediaType, c.want.Digest, c.want.Size, c.want.MediaType)
		}
	}
	if res.DiffID != img.config.RootFS.DiffIDs[0] {
		t.Errorf("Result.DiffID %s, config has %s", res.DiffID, img.config.RootFS.DiffIDs[0])
	}
	if !reflect.DeepEqual(res.Platform, Platform()) {
		t.Errorf("Result.Platform %+v, want %+v", res.Platform, Platform())
	}
	if img.manifest.Config.MediaType != ocispec.MediaTypeImageConfig ||
		img.manifest.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip ||
		img.index.Manifests[0].MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("media types: manifest %s config %s layer %s", img.index.Manifests[0].MediaType,
			img.manifest.Config.MediaType, img.manifest.Layers[0].MediaType)
	}
}

// TestLayerImpliedParents: deep files get every missing parent directory, with mode 0755, and a
// given directory keeps its own mode.
func TestLayerImpliedParents(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		want  map[string]int64 // directory -> mode
	}{
		{"one deep file", []File{{Path: "a/b/c/d", Data: []byte("x")}},
			map[string]int64{"a": 0o755, "a/b": 0o755, "a/b/c": 0o755}},
		{"given parent keeps its mode", []File{
			{Path: "a/b/f", Data: []byte("x")},
			{Path: "a", Mode: fs.ModeDir | 0o700},
		}, map[string]int64{"a": 0o700, "a/b": 0o755}},
		{"sticky and setgid dirs", []File{
			{Path: "tmp/x", Mode: fs.ModeSymlink, Linkname: "/dev/null"},
			{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "srv", Mode: fs.ModeDir | fs.ModeSetgid | 0o775},
		}, map[string]int64{"tmp": 0o1777, "srv": 0o2775}},
	}
	for _, tt := range tests {
		img := readImage(t, build(t, Image{Name: "x.local/p:1", Files: tt.files}))
		var dirs []string
		for name, e := range img.layer {
			if e.hdr.Typeflag == tar.TypeDir {
				dirs = append(dirs, name)
			}
		}
		slices.Sort(dirs)
		if wantDirs := slices.Sorted(maps.Keys(tt.want)); !slices.Equal(dirs, wantDirs) {
			t.Errorf("%s: directories %q, want %q", tt.name, dirs, wantDirs)
		}
		for d, mode := range tt.want {
			if e, ok := img.layer[d]; ok && e.hdr.Mode != mode {
				t.Errorf("%s: %s mode %o, want %o", tt.name, d, e.hdr.Mode, mode)
			}
		}
		if !slices.IsSorted(img.names) {
			t.Errorf("%s: layer entries not sorted: %q", tt.name, img.names)
		}
	}
}

func TestBusyboxImage(t *testing.T) {
	if _, err := os.Stat(DefaultBusyboxPath); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	v, err := BusyboxVersion("")
	if err != nil {
		t.Fatalf("BusyboxVersion: %v", err)
	}
	if !regexp.MustCompile(`^[1-9]\d*\.\d+$`).MatchString(v) {
		t.Errorf("BusyboxVersion = %q, want major.minor like 1.35", v)
	}
	in, err := Busybox("", "")
	if err != nil {
		t.Fatalf("Busybox: %v", err)
	}
	if want := "minipod.local/busybox:" + v; in.Name != want {
		t.Errorf("name %q, want %q", in.Name, want)
	}
	img := readImage(t, build(t, in))
	if got := img.index.Manifests[0].Annotations[ocispec.AnnotationRefName]; got != v {
		t.Errorf("ref name %q, want the version %q", got, v)
	}
	tests := []struct {
		path string
		typ  byte
		mode int64
		link string
	}{
		{"bin", tar.TypeDir, 0o755, ""},
		{"bin/busybox", tar.TypeReg, 0o755, ""},
		{"bin/sh", tar.TypeSymlink, 0o777, "busybox"},
		{"bin/cat", tar.TypeSymlink, 0o777, "busybox"},
		{"tmp", tar.TypeDir, 0o1777, ""},
		{"etc/resolv.conf", tar.TypeReg, 0o644, ""},
		{"etc/hostname", tar.TypeReg, 0o644, ""},
		{"proc", tar.TypeDir, 0o555, ""},
		{"dev", tar.TypeDir, 0o755, ""},
	}
	for _, tt := range tests {
		e, ok := img.layer[tt.path]
		if !ok {
			t.Errorf("layer lacks %s", tt.path)
			continue
		}
		if e.hdr.Typeflag != tt.typ || e.hdr.Mode != tt.mode || e.hdr.Linkname != tt.link {
			t.Errorf("%s: type %c mode %o link %q, want %c %o %q", tt.path, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Linkname, tt.typ, tt.mode, tt.link)
		}
	}
	if _, ok := img.layer["bin/busybox/busybox"]; ok {
		t.Error("busybox listed itself as an applet under bin/busybox")
	}
}

func TestBusyboxErrors(t *testing.T) {
	dir := t.TempDir()
	silent := filepath.Join(dir, "silent")
	if err := os.WriteFile(silent, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	noVersion := filepath.Join(dir, "noversion")
	if err := os.WriteFile(noVersion, []byte("#!/bin/sh\necho 'Toybox 0.8'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
	}{
		{"missing", filepath.Join(dir, "none")},
		{"directory", dir},
		{"prints no applets", silent},
	}
	for _, tt := range tests {
		if img, err := Busybox("", tt.path); err == nil {
			t.Errorf("Busybox(%s): got image %q, want an error", tt.name, img.Name)
		}
	}
	for _, p := range []string{filepath.Join(dir, "none"), silent, noVersion} {
		if v, err := BusyboxVersion(p); err == nil {
			t.Errorf("BusyboxVersion(%s): got %q, want an error", filepath.Base(p), v)
		}
	}
	// A fake busybox: applets from --list, the version from --help.
	fake := filepath.Join(dir, "fake")
	script := "#!/bin/sh\ncase $1 in\n--list) printf 'sh\\nls\\nbusybox\\n../evil\\n' ;;\n--help) echo 'BusyBox v1.36.1 (Debian) multi-call binary.' ;;\nesac\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := Busybox("", fake)
	if err != nil {
		t.Fatalf("Busybox(fake): %v", err)
	}
	if in.Name != "minipod.local/busybox:1.36" {
		t.Errorf("name %q, want minipod.local/busybox:1.36", in.Name)
	}
	var links []string
	for _, f := range in.Files {
		if f.Mode.Type() == fs.ModeSymlink {
			links = append(links, f.Path+"->"+f.Linkname)
		}
	}
	if want := []string{"bin/sh->busybox", "bin/ls->busybox"}; !slices.Equal(links, want) {
		t.Errorf("applet links %q, want %q (no busybox, nothing outside bin)", links, want)
	}
}
