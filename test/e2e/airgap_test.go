package e2e

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/minipod/minipod/pkg/imagebuild"
)

// writeArchive writes the busybox test image under another name into dir, compressed with
// "gzip", "zstd" or "", moving it in whole once written.
func writeArchive(t *testing.T, dir, file, name, compression string) {
	t.Helper()
	img, err := imagebuild.Busybox(name, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+file+".part")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var w interface {
		Write([]byte) (int, error)
		Close() error
	} = f
	switch compression {
	case "gzip":
		w = gzip.NewWriter(f)
	case "zstd":
		if w, err = zstd.NewWriter(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := imagebuild.WriteOCI(w, img); err != nil {
		t.Fatal(err)
	}
	if compression != "" {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
		t.Fatal(err)
	}
}

// Image archives in <state-dir>/images are imported at start and when they appear, so that
// pods run on a node without a registry.
func TestImageImportDir(t *testing.T) {
	d := newDaemon(t)
	images := filepath.Join(d.state, "images")
	writeArchive(t, images, "early.tar.gz", "minipod.local/early:1", "gzip")
	pod := func(name, image string) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n", name, image)
	}
	d.writeManifest("early.yaml", pod("early", "minipod.local/early:1"))
	d.writeManifest("late.yaml", pod("late", "minipod.local/late:1"))
	d.start()
	p := d.waitRunning("early", 60*time.Second)
	if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("early restarted %d times", n)
	}
	d.eventually(30*time.Second, "late waits for its image", func() (bool, string) {
		p := d.pod("late")
		if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, "not waiting"
		}
		return p.Status.ContainerStatuses[0].State.Waiting.Reason == "ErrImageNeverPull", p.Status.ContainerStatuses[0].State.Waiting.Reason
	})
	writeArchive(t, images, "late.tar.zst", "minipod.local/late:1", "zstd")
	// The import wakes the waiting pod; it does not wait out its backoff.
	d.waitRunning("late", 60*time.Second)
}
