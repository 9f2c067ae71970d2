package e2e

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/zstd"

	"github.com/minipod/minipod/pkg/imagebuild"
	"github.com/minipod/minipod/pkg/runtime"
)

// writeArchive writes the busybox test image under another name into dir as an OCI layout,
// compressed with "gzip", "zstd" or "", moving it in whole once written.
func writeArchive(t *testing.T, dir, file, name, compression string) {
	t.Helper()
	img, err := imagebuild.Busybox(name, "")
	if err != nil {
		t.Fatal(err)
	}
	writeArchiveOf(t, dir, file, img, imagebuild.WriteOCI, compression)
}

// uniqueBusybox is the busybox test image under name with a file of its own, so that no other
// image shares its layer: what garbage collection keeps of it is its own.
func uniqueBusybox(t *testing.T, name string) imagebuild.Image {
	t.Helper()
	img, err := imagebuild.Busybox(name, "")
	if err != nil {
		t.Fatal(err)
	}
	img.Files = append(img.Files, imagebuild.File{Path: "etc/minipod-image", Data: []byte(name + "\n")})
	return img
}

// writeArchiveOf writes img into dir with format (imagebuild.WriteOCI or
// imagebuild.WriteDockerArchive), compressed with "gzip", "zstd" or "", moving it in whole
// once written.
func writeArchiveOf(t *testing.T, dir, file string, img imagebuild.Image, format func(io.Writer, imagebuild.Image) error, compression string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+file+".part")
	f, err := os.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	var w io.WriteCloser = f
	switch compression {
	case "gzip":
		w = gzip.NewWriter(f)
	case "zstd":
		if w, err = zstd.NewWriter(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := format(w, img); err != nil {
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

// neverPod is a one-container pod that runs image only if it is present.
func neverPod(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: %s\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n", name, image)
}

// waitNeverPull waits until the pod's container waits with ErrImageNeverPull.
func (d *daemon) waitNeverPull(name string) {
	d.t.Helper()
	d.eventually(30*time.Second, name+" waits for its image", func() (bool, string) {
		p := d.pod(name)
		if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, "not waiting"
		}
		return p.Status.ContainerStatuses[0].State.Waiting.Reason == "ErrImageNeverPull", p.Status.ContainerStatuses[0].State.Waiting.Reason
	})
}

// checkKeptFromGC removes the pods (name -> image), runs containerd's garbage collection, and
// checks that each imported image is still whole (its record, pinned label, every blob and its
// unpacked snapshots), then that the pods run again from it without a registry.
func checkKeptFromGC(t *testing.T, d *daemon, pods map[string]string) {
	t.Helper()
	var names []string
	for name := range pods {
		names = append(names, name)
	}
	d.removeAndCheck(names...)

	c, err := client.New(env.address, client.WithDefaultNamespace(d.namespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(namespaces.WithNamespace(context.Background(), d.namespace), time.Minute)
	defer cancel()

	// A synchronous delete runs a full collection before it returns. The image deleted here
	// has content no other image shares: its manifest gone shows the collection ran.
	junk := uniqueBusybox(t, "minipod.local/gc-trigger:1")
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(imagebuild.WriteOCI(pw, junk)) }()
	trigger, err := c.Import(ctx, pr)
	if err != nil || len(trigger) != 1 {
		t.Fatalf("import gc trigger: %v %v", trigger, err)
	}
	if err := c.ImageService().Delete(ctx, trigger[0].Name, images.SynchronousDelete()); err != nil {
		t.Fatalf("delete gc trigger: %v", err)
	}
	if _, err := c.ContentStore().Info(ctx, trigger[0].Target.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("garbage collection did not run: the deleted image's manifest is still there (%v)", err)
	}

	for _, ref := range pods {
		img, err := c.GetImage(ctx, ref)
		if err != nil {
			// A docker archive's short name is stored normalised.
			img, err = c.GetImage(ctx, "docker.io/library/"+ref)
		}
		if err != nil {
			t.Errorf("image %s gone after garbage collection: %v", ref, err)
			continue
		}
		if got := img.Labels()[runtime.LabelPinned]; got != runtime.Pinned {
			t.Errorf("image %s: label %s=%q, want %q", img.Name(), runtime.LabelPinned, got, runtime.Pinned)
		}
		available, _, _, missing, err := images.Check(ctx, c.ContentStore(), img.Target(), img.Platform())
		if err != nil || !available || len(missing) > 0 {
			t.Errorf("image %s after garbage collection: available %v, missing %v, %v", img.Name(), available, missing, err)
		}
		if ok, err := img.IsUnpacked(ctx, "overlayfs"); err != nil || !ok {
			t.Errorf("image %s after garbage collection: unpacked %v, %v", img.Name(), ok, err)
		}
	}
	for name, ref := range pods {
		d.writeManifest(name+".yaml", neverPod(name, ref))
	}
	for name := range pods {
		d.waitRunning(name, 60*time.Second)
	}
}

// Image archives in <state-dir>/images are imported at start and when they appear, so that
// pods run on a node without a registry.
func TestImageImportDir(t *testing.T) {
	d := newDaemon(t)
	images := filepath.Join(d.state, "images")
	writeArchiveOf(t, images, "early.tar.gz", uniqueBusybox(t, "minipod.local/early:1"), imagebuild.WriteOCI, "gzip")
	d.writeManifest("early.yaml", neverPod("early", "minipod.local/early:1"))
	d.writeManifest("late.yaml", neverPod("late", "minipod.local/late:1"))
	d.start()
	p := d.waitRunning("early", 60*time.Second)
	if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("early restarted %d times", n)
	}
	d.waitNeverPull("late")
	writeArchiveOf(t, images, "late.tar.zst", uniqueBusybox(t, "minipod.local/late:1"), imagebuild.WriteOCI, "zstd")
	// The import wakes the waiting pod; it does not wait out its backoff.
	d.waitRunning("late", 60*time.Second)
	checkKeptFromGC(t, d, map[string]string{"early": "minipod.local/early:1", "late": "minipod.local/late:1"})
}

// docker save tarballs (docker-archive), plain or compressed, are imported the same way; a
// short name in the archive ("app:1", docker.io/library/app:1 once imported) serves a pod that
// writes it short, as on a kubelet.
func TestImageImportDockerArchive(t *testing.T) {
	d := newDaemon(t)
	images := filepath.Join(d.state, "images")
	writeArchiveOf(t, images, "docker.tar", uniqueBusybox(t, "minipod.local/docker:1"), imagebuild.WriteDockerArchive, "")
	d.writeManifest("docker.yaml", neverPod("docker", "minipod.local/docker:1"))
	d.writeManifest("short.yaml", neverPod("short", "shortname:1"))
	d.start()
	p := d.waitRunning("docker", 60*time.Second)
	if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Errorf("docker restarted %d times", n)
	}
	if out, _, code := d.ctl("exec", "docker", "--", "cat", "/etc/minipod-image"); code != 0 || out != "minipod.local/docker:1\n" {
		t.Errorf("the pod does not run the imported image: %d %q", code, out)
	}
	d.waitNeverPull("short")
	writeArchiveOf(t, images, "short.tar.gz", uniqueBusybox(t, "shortname:1"), imagebuild.WriteDockerArchive, "gzip")
	d.waitRunning("short", 60*time.Second)
	if out, _, code := d.ctl("exec", "short", "--", "cat", "/etc/minipod-image"); code != 0 || out != "shortname:1\n" {
		t.Errorf("the pod does not run the imported image: %d %q", code, out)
	}
	checkKeptFromGC(t, d, map[string]string{"docker": "minipod.local/docker:1", "short": "shortname:1"})
}
