package airgap

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/minipod/minipod/pkg/imagebuild"
)

// fakeImporter reads each stream as a tar and names the image by the archive's first entry
// that says which format it is.
type fakeImporter struct {
	got []string // "<format>" per Import, in order
	err error
}

func (f *fakeImporter) Import(_ context.Context, r io.Reader) ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	tr := tar.NewReader(r)
	format := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch hdr.Name {
		case "manifest.json":
			format = "docker"
		case "oci-layout":
			format = "oci"
		}
	}
	f.got = append(f.got, format)
	return []string{format}, nil
}

func archiveBytes(t *testing.T, write func(io.Writer, imagebuild.Image) error, compression string) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch compression {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	img := imagebuild.Image{Name: "minipod.local/t:1", Files: []imagebuild.File{{Path: "f", Data: []byte("x")}}}
	var out io.Writer = &buf
	if w != nil {
		out = w
	}
	if err := write(out, img); err != nil {
		t.Fatal(err)
	}
	if w != nil {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// Every format and compression is decompressed on the way to the importer; each archive is
// imported once, and again only when it changes.
func TestImportAll(t *testing.T) {
	dir := t.TempDir()
	files := map[string][]byte{
		"a-oci.tar":        archiveBytes(t, imagebuild.WriteOCI, ""),
		"b-oci.tar.zst":    archiveBytes(t, imagebuild.WriteOCI, "zstd"),
		"c-docker.tar":     archiveBytes(t, imagebuild.WriteDockerArchive, ""),
		"d-docker.tar.gz":  archiveBytes(t, imagebuild.WriteDockerArchive, "gzip"),
		"e-docker.tgz":     archiveBytes(t, imagebuild.WriteDockerArchive, "gzip"),
		"f-docker.tar.zst": archiveBytes(t, imagebuild.WriteDockerArchive, "zstd"),
		".hidden.tar":      archiveBytes(t, imagebuild.WriteOCI, ""),
		"notes.txt":        []byte("not an archive"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	imp := &fakeImporter{}
	var woken []string
	record := filepath.Join(t.TempDir(), "imported.json")
	w := New(Config{Dir: dir, Record: record, Importer: imp, Imported: func(n []string) { woken = append(woken, n...) }})
	w.ImportAll(context.Background())
	want := []string{"oci", "oci", "docker", "docker", "docker", "docker"}
	if !slices.Equal(imp.got, want) {
		t.Errorf("imported %q, want %q (in file name order)", imp.got, want)
	}
	sort.Strings(woken)
	if !slices.Equal(woken, []string{"docker", "docker", "docker", "docker", "oci", "oci"}) {
		t.Errorf("Imported called with %q", woken)
	}

	// A restart reads the record: nothing is imported again, until a file changes.
	imp.got = nil
	w = New(Config{Dir: dir, Record: record, Importer: imp})
	w.ImportAll(context.Background())
	if len(imp.got) != 0 {
		t.Errorf("imported again after a restart: %q", imp.got)
	}
	if err := os.WriteFile(filepath.Join(dir, "c-docker.tar"), archiveBytes(t, imagebuild.WriteDockerArchive, "gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.ImportAll(context.Background())
	if !slices.Equal(imp.got, []string{"docker"}) {
		t.Errorf("a changed archive: imported %q", imp.got)
	}
}

// A failed import is tried again on the next pass; other archives are not held up.
func TestImportAllRetriesFailures(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.tar"), archiveBytes(t, imagebuild.WriteDockerArchive, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	imp := &fakeImporter{err: errors.New("containerd away")}
	w := New(Config{Dir: dir, Record: filepath.Join(t.TempDir(), "r.json"), Importer: imp})
	w.ImportAll(context.Background())
	imp.err = nil
	w.ImportAll(context.Background())
	if !slices.Equal(imp.got, []string{"docker"}) {
		t.Errorf("imported %q after a failure", imp.got)
	}
}

// An archive is vetted as it is opened: one the check refuses is not imported (and is tried
// again on later passes), and a FIFO in the directory is refused, never waited on.
func TestImportChecksArchives(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.tar"), archiveBytes(t, imagebuild.WriteDockerArchive, ""), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "b.tar"), 0o600); err != nil {
		t.Fatal(err)
	}
	var checked []string
	refuse := true
	imp := &fakeImporter{}
	w := New(Config{Dir: dir, Record: filepath.Join(t.TempDir(), "r.json"), Importer: imp,
		Check: func(path string, info os.FileInfo) error {
			checked = append(checked, filepath.Base(path))
			if refuse {
				return errors.New("writable by others")
			}
			return nil
		}})
	done := make(chan struct{})
	go func() {
		w.ImportAll(context.Background())
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ImportAll hangs on a FIFO")
	}
	if len(imp.got) != 0 || !slices.Equal(checked, []string{"a.tar"}) {
		t.Errorf("imported %q, checked %q; want nothing imported, a.tar checked", imp.got, checked)
	}
	refuse = false
	w.ImportAll(context.Background())
	if !slices.Equal(imp.got, []string{"docker"}) {
		t.Errorf("once the check passes: imported %q", imp.got)
	}
}
