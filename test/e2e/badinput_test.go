package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// copyCorpus copies every file of dir into the manifest dir and returns their new paths.
func (d *daemon) copyCorpus(dir string) []string {
	d.t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		d.t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			d.t.Fatal(err)
		}
		name := "corpus-" + strings.TrimSuffix(filepath.Base(dir), "/") + "-" + e.Name()
		paths = append(paths, d.writeManifest(name, string(data)))
	}
	return paths
}

// A corpus of bad manifests: each file is listed with a reason and a message, nothing crashes
// or stalls, and the good pod runs on undisturbed.
func TestBadManifestCorpus(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.waitRunning("web", 60*time.Second)
	ids := containerIDs(d.pod("web"))

	bad := d.copyCorpus("testdata/bad")
	bad = append(bad, d.copyCorpus("../../pkg/manifest/testdata/bad")...)
	// Files made here: too big, binary junk, a symlink loop, a dangling symlink, a directory.
	bad = append(bad, d.writeManifest("huge.yaml", "# "+strings.Repeat("x", 10<<20)+"\n"))
	bad = append(bad, d.writeManifest("junk.yaml", string(bytes.Repeat([]byte{0, 0xff, 0x13, 0x37, 0x80}, 2000))))
	loop := filepath.Join(d.manifests, "loop.yaml")
	os.Symlink(loop, loop)
	dangling := filepath.Join(d.manifests, "dangling.yaml")
	os.Symlink(filepath.Join(d.manifests, "nowhere"), dangling)
	bad = append(bad, loop, dangling)
	os.Mkdir(filepath.Join(d.manifests, "adir.yaml"), 0o755)
	if len(bad) < 30 {
		t.Fatalf("corpus has %d files, want at least 30", len(bad))
	}

	d.eventually(30*time.Second, "every bad file listed with a reason", func() (bool, string) {
		byFile := map[string]corev1.Pod{}
		for _, p := range d.pods() {
			byFile[p.Annotations["minipod.io/manifest"]] = p
		}
		for _, path := range bad {
			p, ok := byFile[path]
			if !ok {
				return false, "not listed: " + path
			}
			if p.Status.Reason == "" || p.Status.Message == "" || p.Name == "" {
				return false, fmt.Sprintf("%s: name %q reason %q message %q", path, p.Name, p.Status.Reason, p.Status.Message)
			}
		}
		return true, ""
	})
	if got := containerIDs(d.pod("web")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("good pod disturbed: %v -> %v", ids, got)
	}
	if _, _, code := d.ctl("status"); code != 0 {
		t.Fatalf("status failed after the corpus")
	}
}

// A file that turns bad keeps its last good version running and says why; the fixed file
// applies.
func TestGoodFileTurnsBad(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.waitRunning("web", 60*time.Second)
	ids := containerIDs(d.pod("web"))

	d.writeManifest("web.yaml", strings.Replace(webPod, "containers:", "containrs:", 1))
	d.eventually(20*time.Second, "error reported on the running pod", func() (bool, string) {
		p := d.pod("web")
		return p != nil && p.Status.Phase == corev1.PodRunning && strings.Contains(p.Status.Message, "InvalidManifest"), fmt.Sprintf("%+v", p.Status.Message)
	})
	if got := containerIDs(d.pod("web")); fmt.Sprint(got) != fmt.Sprint(ids) {
		t.Fatalf("running pod restarted on a bad edit: %v -> %v", ids, got)
	}
	d.writeManifest("web.yaml", strings.Replace(webPod, "app: web", "app: fixed", 1))
	d.eventually(60*time.Second, "fixed version running", func() (bool, string) {
		p := d.pod("web")
		return p != nil && p.Labels["app"] == "fixed" && p.Status.Phase == corev1.PodRunning && p.Status.Message == "", fmt.Sprintf("%v", p)
	})
}

// Manifests that users other than root could write are refused, unless the daemon was told
// to accept them.
func TestManifestPermissions(t *testing.T) {
	d := newDaemon(t)
	d.start()
	// Written with its mode before it appears in the directory, so the daemon never sees it
	// any other way.
	tmp := filepath.Join(d.manifests, ".web.yaml.tmp")
	path := filepath.Join(d.manifests, "web.yaml")
	if err := os.WriteFile(tmp, []byte(webPod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	d.eventually(30*time.Second, "world-writable manifest refused", func() (bool, string) {
		for _, p := range d.pods() {
			if p.Annotations["minipod.io/manifest"] == path {
				return p.Status.Reason == "InsecureManifestPermissions" && strings.Contains(p.Status.Message, "chmod go-w"), p.Status.Reason
			}
		}
		return false, "not listed"
	})
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitRunning("web", 60*time.Second)
}

// Editing a manifest in place the ways editors and scripts do gives exactly one pod of the new
// version, and their leftovers are never read.
func TestInPlaceEdits(t *testing.T) {
	d := newDaemon(t)
	d.start()
	path := d.writeManifest("web.yaml", webPod)
	d.waitRunning("web", 60*time.Second)
	stop := d.watchOnlyFrom(path)
	// sed -i writes a temporary file in the same directory and renames it over the original.
	if out, err := exec.Command("sed", "-i", "s/app: web/app: sed/", path).CombinedOutput(); err != nil {
		t.Fatalf("sed -i: %v %s", err, out)
	}
	// An editor's swap and backup files appear beside it.
	os.WriteFile(filepath.Join(d.manifests, ".web.yaml.swp"), []byte("junk"), 0o644)
	os.WriteFile(filepath.Join(d.manifests, "web.yaml~"), []byte(webPod), 0o644)
	d.eventually(60*time.Second, "one pod of the new version", func() (bool, string) {
		var webs []corev1.Pod
		for _, p := range d.pods() {
			if p.Name == "web" {
				webs = append(webs, p)
			}
		}
		if len(webs) != 1 {
			return false, fmt.Sprintf("%d items named web", len(webs))
		}
		return webs[0].Labels["app"] == "sed" && webs[0].Status.Phase == corev1.PodRunning, webs[0].Labels["app"]
	})
	// Exactly one sandbox and its two containers exist for it.
	d.eventually(30*time.Second, "old version gone", func() (bool, string) {
		out, _ := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "containers", "ls", "-q").Output()
		return len(strings.Fields(string(out))) == 3, string(out)
	})
	if bad := stop(); len(bad) > 0 {
		t.Errorf("the status listed more than the one pod of web.yaml:\n%s", strings.Join(bad, "\n"))
	}
}
