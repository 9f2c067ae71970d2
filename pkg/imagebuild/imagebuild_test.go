package imagebuild

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// archive is an untarred OCI image-layout archive.
type archive struct {
	files map[string][]byte
	order []string
}

func untar(t *testing.T, data []byte) archive {
	t.Helper()
	a := archive{files: map[string][]byte{}}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("reading archive: %v", err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.ModTime.Unix() != 0 {
			t.Errorf("archive entry %s: uid %d gid %d mtime %v, want 0 0 epoch", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		a.order = append(a.order, hdr.Name)
		if hdr.Typeflag == tar.TypeDir {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := a.files[hdr.Name]; dup {
			t.Errorf("duplicate archive entry %s", hdr.Name)
		}
		a.files[hdr.Name] = b
	}
	return a
}

func (a archive) blob(t *testing.T, d ocispec.Descriptor) []byte {
	t.Helper()
	if d.Digest.Algorithm() != "sha256" {
		t.Fatalf("descriptor %v: algorithm %s", d, d.Digest.Algorithm())
	}
	b, ok := a.files["blobs/sha256/"+d.Digest.Encoded()]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	if int64(len(b)) != d.Size {
		t.Fatalf("blob %s: size %d, descriptor says %d", d.Digest, len(b), d.Size)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// layerEntry is one entry of an image layer.
type layerEntry struct {
	hdr  *tar.Header
	data []byte
}

// image is a checked, decoded archive.
type image struct {
	index    ocispec.Index
	manifest ocispec.Manifest
	config   ocispec.Image
	layer    map[string]layerEntry
	names    []string // layer entry names in order
}

// readImage checks the archive's structure and digest chain and decodes it.
func readImage(t *testing.T, data []byte) image {
	t.Helper()
	a := untar(t, data)
	var img image

	if got := string(a.files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %q", got)
	}
	// Every blob's sha256 is its name.
	for name, b := range a.files {
		if enc, ok := strings.CutPrefix(name, "blobs/sha256/"); ok && sha(b) != enc {
			t.Errorf("blob %s has sha256 %s", name, sha(b))
		}
	}

	if err := json.Unmarshal(a.files["index.json"], &img.index); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if img.index.SchemaVersion != 2 || img.index.MediaType != ocispec.MediaTypeImageIndex {
		t.Errorf("index: schemaVersion %d mediaType %q", img.index.SchemaVersion, img.index.MediaType)
	}
	if len(img.index.Manifests) != 1 {
		t.Fatalf("index has %d manifests, want 1", len(img.index.Manifests))
	}
	md := img.index.Manifests[0]
	if md.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("index manifest mediaType %q", md.MediaType)
	}
	if md.Platform == nil || md.Platform.OS != runtime.GOOS || md.Platform.Architecture != runtime.GOARCH {
		t.Errorf("index manifest platform %+v, want %s/%s", md.Platform, runtime.GOOS, runtime.GOARCH)
	}

	if err := json.Unmarshal(a.blob(t, md), &img.manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	m := img.manifest
	if m.SchemaVersion != 2 || m.MediaType != ocispec.MediaTypeImageManifest {
		t.Errorf("manifest: schemaVersion %d mediaType %q", m.SchemaVersion, m.MediaType)
	}
	if m.Config.MediaType != ocispec.MediaTypeImageConfig {
		t.Errorf("config mediaType %q", m.Config.MediaType)
	}
	if len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Fatalf("layers %+v, want one gzip layer", m.Layers)
	}

	if err := json.Unmarshal(a.blob(t, m.Config), &img.config); err != nil {
		t.Fatalf("config: %v", err)
	}
	c := img.config
	if c.OS != runtime.GOOS || c.Architecture != runtime.GOARCH {
		t.Errorf("config platform %s/%s", c.OS, c.Architecture)
	}
	if c.RootFS.Type != "layers" || len(c.RootFS.DiffIDs) != 1 {
		t.Fatalf("rootfs %+v", c.RootFS)
	}

	gz := a.blob(t, m.Layers[0])
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("layer is not gzip: %v", err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header has mtime %v name %q", zr.ModTime, zr.Name)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("layer gunzip: %v", err)
	}
	if want := "sha256:" + sha(raw); string(c.RootFS.DiffIDs[0]) != want {
		t.Errorf("diff_id %s, uncompressed layer is %s", c.RootFS.DiffIDs[0], want)
	}

	img.layer = map[string]layerEntry{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("layer tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(hdr.Name, "/")
		if _, dup := img.layer[name]; dup {
			t.Errorf("layer: duplicate entry %s", name)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 || hdr.ModTime.Unix() != 0 {
			t.Errorf("layer entry %s: uid %d gid %d mtime %v", hdr.Name, hdr.Uid, hdr.Gid, hdr.ModTime)
		}
		img.layer[name] = layerEntry{hdr, b}
		img.names = append(img.names, name)
	}
	return img
}

func build(t *testing.T, img Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteOCI(&buf, img); err != nil {
		t.Fatalf("WriteOCI: %v", err)
	}
	return buf.Bytes()
}

func testImage(t *testing.T) Image {
	src := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(src, []byte("#!/bin/sh\necho hello\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return Image{
		Name: "minipod.local/test:1",
		Files: []File{
			{Path: "/usr/bin/prog", Mode: 0o755, Source: src},
			{Path: "etc/motd", Mode: 0o600, Data: []byte("hi\n")},
			{Path: "bin/hello", Mode: fs.ModeSymlink | 0o777, Linkname: "../usr/bin/prog"},
			{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
			{Path: "var/empty/", Mode: fs.ModeDir | 0o700},
			{Path: "usr/bin/sudo", Mode: fs.ModeSetuid | 0o755, Data: []byte("x")},
			{Path: "srcperm", Source: src},
		},
		Entrypoint: []string{"/usr/bin/prog"},
		Cmd:        []string{"-x"},
		Env:        []string{"FOO=bar"},
		WorkingDir: "/tmp",
		User:       "65534:65534",
		StopSignal: "SIGINT",
		Labels:     map[string]string{"a": "b"},
	}
}

func TestWriteOCI(t *testing.T) {
	in := testImage(t)
	img := readImage(t, build(t, in))

	ann := img.index.Manifests[0].Annotations
	wantAnn := map[string]string{AnnotationImageName: "minipod.local/test:1", ocispec.AnnotationRefName: "1"}
	if !maps.Equal(ann, wantAnn) {
		t.Errorf("index.json annotations: got %v, want %v", ann, wantAnn)
	}

	c := img.config.Config
	if !slices.Equal(c.Env, []string{DefaultPath, "FOO=bar"}) {
		t.Errorf("Env %q", c.Env)
	}
	if !slices.Equal(c.Entrypoint, in.Entrypoint) || !slices.Equal(c.Cmd, in.Cmd) ||
		c.WorkingDir != "/tmp" || c.User != "65534:65534" || c.StopSignal != "SIGINT" || c.Labels["a"] != "b" {
		t.Errorf("config %+v", c)
	}

	want := []struct {
		name string
		typ  byte
		mode int64
		data string
		link string
	}{
		{"bin", tar.TypeDir, 0o755, "", ""},
		{"bin/hello", tar.TypeSymlink, 0o777, "", "../usr/bin/prog"},
		{"etc", tar.TypeDir, 0o755, "", ""},
		{"etc/motd", tar.TypeReg, 0o600, "hi\n", ""},
		{"srcperm", tar.TypeReg, 0o700, "#!/bin/sh\necho hello\n", ""},
		{"tmp", tar.TypeDir, 0o1777, "", ""},
		{"usr", tar.TypeDir, 0o755, "", ""},
		{"usr/bin", tar.TypeDir, 0o755, "", ""},
		{"usr/bin/prog", tar.TypeReg, 0o755, "#!/bin/sh\necho hello\n", ""},
		{"usr/bin/sudo", tar.TypeReg, 0o4755, "x", ""},
		{"var", tar.TypeDir, 0o755, "", ""},
		{"var/empty", tar.TypeDir, 0o700, "", ""},
	}
	var names []string
	for _, w := range want {
		names = append(names, w.name)
		e, ok := img.layer[w.name]
		if !ok {
			t.Errorf("layer lacks %s", w.name)
			continue
		}
		if e.hdr.Typeflag != w.typ || e.hdr.Mode != w.mode || string(e.data) != w.data || e.hdr.Linkname != w.link {
			t.Errorf("%s: type %c mode %o data %q link %q; want %c %o %q %q",
				w.name, e.hdr.Typeflag, e.hdr.Mode, e.data, e.hdr.Linkname, w.typ, w.mode, w.data, w.link)
		}
		if w.typ == tar.TypeDir && !strings.HasSuffix(e.hdr.Name, "/") {
			t.Errorf("directory entry %q lacks a trailing slash", e.hdr.Name)
		}
	}
	if !slices.Equal(img.names, names) {
		t.Errorf("layer entries\n%q\nwant (sorted)\n%q", img.names, names)
	}
}

func TestWriteOCIDeterministic(t *testing.T) {
	in := testImage(t)
	a := build(t, in)
	// Same content from another file, files in another order.
	in2 := in
	in2.Files = slices.Clone(in.Files)
	slices.Reverse(in2.Files)
	b := build(t, in2)
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same image differ")
	}

	in3 := in
	in3.Files = append(slices.Clone(in.Files), File{Path: "extra", Data: []byte("1")})
	if bytes.Equal(a, build(t, in3)) {
		t.Fatal("different content, same archive")
	}
}

func TestWriteOCIDefaultPath(t *testing.T) {
	img := readImage(t, build(t, Image{Name: "x.local/a:b", Files: []File{{Path: "f", Data: []byte("f")}}}))
	if !slices.Equal(img.config.Config.Env, []string{DefaultPath}) {
		t.Errorf("Env %q", img.config.Config.Env)
	}
	img = readImage(t, build(t, Image{Name: "x.local/a:b", Env: []string{"PATH=/x"}}))
	if !slices.Equal(img.config.Config.Env, []string{"PATH=/x"}) {
		t.Errorf("Env %q", img.config.Config.Env)
	}
}

func TestWriteOCIErrors(t *testing.T) {
	for name, img := range map[string]Image{
		"no name":          {Files: []File{{Path: "a"}}},
		"escape":           {Name: "a", Files: []File{{Path: "../etc/passwd", Data: []byte("x")}}},
		"root":             {Name: "a", Files: []File{{Path: "/", Mode: fs.ModeDir}}},
		"duplicate":        {Name: "a", Files: []File{{Path: "a"}, {Path: "/a"}}},
		"symlink no link":  {Name: "a", Files: []File{{Path: "a", Mode: fs.ModeSymlink}}},
		"device":           {Name: "a", Files: []File{{Path: "a", Mode: fs.ModeDevice}}},
		"parent not a dir": {Name: "a", Files: []File{{Path: "a", Data: []byte("x")}, {Path: "a/b"}}},
		"missing source":   {Name: "a", Files: []File{{Path: "a", Source: "/nonexistent/file"}}},
		"dir source":       {Name: "a", Files: []File{{Path: "a", Source: "/"}}},
		"source and data":  {Name: "a", Files: []File{{Path: "a", Source: "/etc/hostname", Data: []byte("x")}}},
	} {
		if err := WriteOCI(io.Discard, img); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// errWriter fails after n bytes.
type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestWriteOCIWriteError(t *testing.T) {
	if err := WriteOCI(&errWriter{n: 3000}, testImage(t)); err == nil {
		t.Fatal("write error not reported")
	}
}

func TestWriteOCIFile(t *testing.T) {
	in := testImage(t)
	out := filepath.Join(t.TempDir(), "img.tar")
	res, err := WriteOCIFile(out, in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, build(t, in)) {
		t.Error("file differs from WriteOCI's output")
	}
	img := readImage(t, data)
	if img.index.Manifests[0].Digest != res.Index.Digest || img.manifest.Config.Digest != res.Config.Digest ||
		img.config.RootFS.DiffIDs[0] != res.DiffID {
		t.Errorf("Result %+v does not match the archive", res)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestBusybox(t *testing.T) {
	if _, err := os.Stat(DefaultBusyboxPath); err != nil {
		t.Skipf("no busybox: %v", err)
	}
	in, err := Busybox("", "")
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != DefaultBusyboxName {
		// Only true for busybox 1.35 (Debian 12); others still give a name.
		t.Logf("default name %s", in.Name)
	}
	if !strings.HasPrefix(in.Name, "minipod.local/busybox:1.") {
		t.Errorf("name %q", in.Name)
	}
	img := readImage(t, build(t, in))
	if got := img.index.Manifests[0].Annotations[AnnotationImageName]; got != in.Name {
		t.Errorf("image name annotation %q", got)
	}
	if !slices.Equal(img.config.Config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd %q", img.config.Config.Cmd)
	}

	bb, ok := img.layer["bin/busybox"]
	if !ok || bb.hdr.Typeflag != tar.TypeReg || bb.hdr.Mode != 0o755 {
		t.Fatalf("bin/busybox: %+v", bb.hdr)
	}
	host, err := os.ReadFile(DefaultBusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bb.data, host) {
		t.Error("bin/busybox differs from the host's")
	}
	for _, applet := range []string{"sh", "ls", "sleep", "wget", "httpd"} {
		e, ok := img.layer["bin/"+applet]
		if !ok || e.hdr.Typeflag != tar.TypeSymlink || e.hdr.Linkname != "busybox" {
			t.Errorf("bin/%s is not a symlink to busybox: %+v", applet, e.hdr)
		}
	}
	for name, mode := range map[string]int64{"tmp": 0o1777, "root": 0o700, "var/www": 0o755} {
		if e, ok := img.layer[name]; !ok || e.hdr.Typeflag != tar.TypeDir || e.hdr.Mode != mode {
			t.Errorf("%s: %+v, want a directory with mode %o", name, e.hdr, mode)
		}
	}
	if p := string(img.layer["etc/passwd"].data); !strings.Contains(p, "root:x:0:0:") || !strings.Contains(p, "nobody:x:65534:65534:") {
		t.Errorf("etc/passwd %q", p)
	}
	if _, ok := img.layer["etc/group"]; !ok {
		t.Error("no etc/group")
	}

	v, err := BusyboxVersion("")
	if err != nil || !strings.HasPrefix(in.Name, busyboxRepo+":"+v) {
		t.Errorf("BusyboxVersion = %q, %v (name %s)", v, err, in.Name)
	}
	named, err := Busybox("example.local/bb:x", "")
	if err != nil || named.Name != "example.local/bb:x" {
		t.Errorf("Busybox with a name: %q, %v", named.Name, err)
	}
}

func TestPause(t *testing.T) {
	prog := filepath.Join(t.TempDir(), "pause")
	if err := os.WriteFile(prog, []byte("not an ELF file"), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := Pause("", prog)
	if err != nil {
		t.Fatal(err)
	}
	if in.Name != DefaultPauseName {
		t.Errorf("name %q", in.Name)
	}
	img := readImage(t, build(t, in))
	if !slices.Equal(img.config.Config.Entrypoint, []string{"/pause"}) || img.config.Config.StopSignal != "SIGTERM" {
		t.Errorf("config %+v", img.config.Config)
	}
	if e := img.layer["pause"]; e.hdr == nil || e.hdr.Mode != 0o755 || string(e.data) != "not an ELF file" {
		t.Errorf("pause entry %+v", e.hdr)
	}
	if !slices.Equal(img.names, []string{"pause"}) {
		t.Errorf("layer %q", img.names)
	}

	if _, err := Pause("", ""); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := Pause("", "/nonexistent"); err == nil {
		t.Error("missing program accepted")
	}
	// A dynamically linked program cannot run in the empty image.
	if dynamicELF("/bin/ls") {
		if _, err := Pause("", "/bin/ls"); err == nil {
			t.Error("dynamically linked program accepted")
		}
	}
	// A static one can.
	if !dynamicELF(DefaultBusyboxPath) {
		if _, err := Pause("", DefaultBusyboxPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("static program: %v", err)
		}
	}
}

func dynamicELF(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

func TestPlatform(t *testing.T) {
	p := Platform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Errorf("Platform() = %+v", p)
	}
	if (runtime.GOARCH == "arm") != (p.Variant != "") {
		t.Errorf("variant %q on %s", p.Variant, runtime.GOARCH)
	}
}
