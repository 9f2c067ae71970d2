package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/imagebuild"
)

// pushUnique pushes to the registry, as repo, a busybox image with a file of its own (so that
// it shares no target with any other image), and leaves no copy of it in the daemon's
// namespace: the daemon must pull it.
func (d *daemon) pushUnique(t *testing.T, r *registry, repo string) string {
	t.Helper()
	ref := r.addr + "/" + repo
	importImage(t, d.namespace, uniqueBusybox(t, ref))
	d.ctr(t, "images", "push", "--plain-http", ref)
	d.ctr(t, "images", "rm", ref)
	return ref
}

// ctr runs ctr in the daemon's namespace and fails the test when it fails.
func (d *daemon) ctr(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ctr %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// imageNames lists the image names in the daemon's namespace, sorted, as containerd has them.
func (d *daemon) imageNames(t *testing.T) []string {
	t.Helper()
	names := strings.Fields(d.ctr(t, "images", "ls", "-q"))
	slices.Sort(names)
	return names
}

// images lists the images as minipodctl images -o json prints them, by name.
func (d *daemon) images(t *testing.T) map[string]api.Image {
	t.Helper()
	out, errs, code := d.ctl("images", "-o", "json")
	if code != 0 {
		t.Fatalf("minipodctl images -o json: exit %d: %s", code, errs)
	}
	var list api.ImageList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("images -o json: %v\n%s", err, out)
	}
	byName := map[string]api.Image{}
	for _, img := range list.Items {
		for _, n := range img.Names {
			byName[n] = img
		}
	}
	return byName
}

// metrics scrapes the daemon's /metrics on its socket.
func (d *daemon) metrics(t *testing.T) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := c.Get("http://minipod/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// gcPod runs image; with initImage, an init container of that image that never ends
// comes first, so that the app container (and its image) waits.
func gcPod(name, image, initImage string) string {
	init := ""
	if initImage != "" {
		init = fmt.Sprintf("  initContainers:\n  - name: wait\n    image: %s\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n", initImage)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  terminationGracePeriodSeconds: 1\n%s  containers:\n  - name: c\n    image: %s\n    imagePullPolicy: IfNotPresent\n    command: [\"sleep\", \"3600\"]\n", name, init, image)
}

// gcNode is a daemon and registry set up for image garbage collection: images a running pod
// uses (used), a pod whose manifest will go (gone), an image a manifest names though no
// container uses it yet (prev, as a previous version kept for rollback would be), an image no
// manifest names (stray), and pinned ones: the busybox test image and an archive of the image
// directory, both imported, and the pause image.
type gcNode struct {
	d                       *daemon
	r                       *registry
	used, gone, prev, stray string
	airgap                  string
}

func newGCNode(t *testing.T, flags ...string) *gcNode {
	t.Helper()
	n := &gcNode{r: startRegistry(t, "", "")}
	n.d = newDaemon(t, flags...)
	d := n.d
	n.used = d.pushUnique(t, n.r, "gc/used:1")
	n.gone = d.pushUnique(t, n.r, "gc/gone:1")
	n.prev = d.pushUnique(t, n.r, "gc/prev:1")
	n.stray = d.pushUnique(t, n.r, "gc/stray:1")
	// Pulled before the daemon starts, as by an earlier run: not pinned.
	d.ctr(t, "images", "pull", "--plain-http", n.prev)
	d.ctr(t, "images", "pull", "--plain-http", n.stray)
	n.airgap = "minipod.local/gc-airgap:1"
	writeArchiveOf(t, filepath.Join(d.state, "images"), "airgap.tar", uniqueBusybox(t, n.airgap), imagebuild.WriteOCI, "")
	d.writeManifest("used.yaml", gcPod("used", n.used, ""))
	d.writeManifest("gone.yaml", gcPod("gone", n.gone, ""))
	d.writeManifest("waiter.yaml", gcPod("waiter", n.prev, imagebuild.DefaultBusyboxName))
	d.start()
	d.waitRunning("used", 60*time.Second)
	d.waitRunning("gone", 60*time.Second)
	d.eventually(30*time.Second, "waiter's init container running", func() (bool, string) {
		p := d.pod("waiter")
		if p == nil || len(p.Status.InitContainerStatuses) == 0 {
			return false, "not listed"
		}
		return p.Status.InitContainerStatuses[0].State.Running != nil, fmt.Sprintf("%+v", p.Status.InitContainerStatuses[0].State)
	})
	return n
}

// kept are the images that must always stay.
func (n *gcNode) kept() []string {
	return []string{imagebuild.DefaultPauseName, imagebuild.DefaultBusyboxName, n.airgap, n.used, n.prev}
}

// With thresholds the test's disk is over (high 1%, low 0%: every unused image must go),
// collection at start removes the image no manifest names, and once a manifest is gone, the
// next check (after a pull) removes its image; what runs, what a manifest names and what is
// pinned stay. Each check that cannot reach 0% is a FreeDiskSpaceFailed event about the node.
func TestImageGC(t *testing.T) {
	t.Parallel()
	n := newGCNode(t, "--image-gc-high-threshold-percent", "1", "--image-gc-low-threshold-percent", "0", "--image-minimum-gc-age", "0s")
	d := n.d
	want := append(n.kept(), n.gone)
	slices.Sort(want)
	d.eventually(60*time.Second, "the stray image collected", func() (bool, string) {
		got := d.imageNames(t)
		return slices.Equal(got, want), fmt.Sprint(got)
	})

	d.removeManifest("gone.yaml")
	d.waitGone("gone", 60*time.Second)
	// A pull makes the collector look again at once.
	later := d.pushUnique(t, n.r, "gc/later:1")
	d.writeManifest("later.yaml", gcPod("later", later, ""))
	d.waitRunning("later", 60*time.Second)
	want = append(n.kept(), later)
	slices.Sort(want)
	d.eventually(60*time.Second, "the image of the removed manifest collected", func() (bool, string) {
		got := d.imageNames(t)
		return slices.Equal(got, want), fmt.Sprint(got)
	})
	// The pods still run, and waiter's image is still there for its app container.
	d.waitRunning("used", 10*time.Second)
	d.waitRunning("later", 10*time.Second)

	// The file system watched is the one containerd says holds its content.
	if log, _ := os.ReadFile(d.logPath); strings.Contains(string(log), "watches containerd's default root") {
		t.Errorf("containerd did not say where its content is:\n%s", d.logTail())
	}
	host, _ := os.Hostname()
	out, _, _ := d.ctl("events")
	if !regexp.MustCompile(`Warning\s+FreeDiskSpaceFailed\s+node/` + regexp.QuoteMeta(host) + `\s+Insufficient free disk space`).MatchString(out) {
		t.Errorf("no FreeDiskSpaceFailed event about the node:\n%s", out)
	}
	if m := regexp.MustCompile(`minipod_image_garbage_collected_total\{reason="space"\} (\d+)`).FindStringSubmatch(d.metrics(t)); m == nil || m[1] != "2" {
		t.Errorf("minipod_image_garbage_collected_total{reason=\"space\"}: %v, want 2 (stray and gone)", m)
	}
}

// --containerd-root names the file system watched, with the kubelet's default thresholds: a
// small tmpfs filled to 90% stands for a disk nearly full, and the image no manifest names goes
// while the others stay.
func TestImageGCContainerdRoot(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "minipod-e2e-gc", root).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", root, err, out)
		}
	})
	if err := os.WriteFile(filepath.Join(root, "fill"), make([]byte, 7<<20+300<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	n := newGCNode(t, "--containerd-root", root, "--image-minimum-gc-age", "0s")
	want := append(n.kept(), n.gone)
	slices.Sort(want)
	n.d.eventually(60*time.Second, "the stray image collected", func() (bool, string) {
		got := n.d.imageNames(t)
		return slices.Equal(got, want), fmt.Sprint(got)
	})
	if log, _ := os.ReadFile(n.d.logPath); !regexp.MustCompile(`image file system over the high threshold.* usage=9\d high=85 low=80`).Match(log) {
		t.Errorf("the daemon did not say the file system at %s is over the threshold:\n%s", root, n.d.logTail())
	}
}

// minipodctl images tells what uses each image; images prune removes the unused ones at once,
// whatever the thresholds (collection is off here: 100%), and keeps the same ones as
// collection does.
func TestImagePrune(t *testing.T) {
	t.Parallel()
	n := newGCNode(t, "--image-gc-high-threshold-percent", "100")
	d := n.d
	imgs := d.images(t)
	for _, c := range []struct {
		name   string
		keep   string
		pods   []string
		pinned bool
	}{
		{n.used, "in use", []string{"default/used"}, false},
		{n.gone, "in use", []string{"default/gone"}, false},
		{n.prev, "in use", []string{"default/waiter"}, false},
		{n.stray, "", []string{}, false},
		{imagebuild.DefaultBusyboxName, "in use", []string{"default/waiter"}, true},
		{n.airgap, "pinned", []string{}, true},
		{imagebuild.DefaultPauseName, "in use", []string{"default/gone", "default/used", "default/waiter"}, true},
	} {
		img, ok := imgs[c.name]
		if !ok {
			t.Errorf("images lacks %s: %v", c.name, imgs)
			continue
		}
		if img.Keep != c.keep || !slices.Equal(img.Pods, c.pods) || img.Pinned != c.pinned || img.Size <= 0 {
			t.Errorf("%s: keep %q, pods %v, pinned %v, size %d; want %q, %v, %v", c.name, img.Keep, img.Pods, img.Pinned, img.Size, c.keep, c.pods, c.pinned)
		}
	}
	table, _, code := d.ctl("images")
	if code != 0 || !regexp.MustCompile(regexp.QuoteMeta(n.used)+`\s+\w{13}\s+[\d.]+ \w+\s+in use\s+no\s+default/used\n`).MatchString(table) {
		t.Errorf("minipodctl images (exit %d):\n%s", code, table)
	}

	d.removeManifest("gone.yaml")
	d.waitGone("gone", 60*time.Second)
	out, errs, code := d.ctl("images", "prune", "-o", "json")
	if code != 0 {
		t.Fatalf("images prune: exit %d: %s", code, errs)
	}
	var pruned api.Pruned
	if err := json.Unmarshal([]byte(out), &pruned); err != nil {
		t.Fatalf("images prune -o json: %v\n%s", err, out)
	}
	var removed []string
	for _, img := range pruned.Removed {
		removed = append(removed, img.Names...)
	}
	slices.Sort(removed)
	if want := []string{n.gone, n.stray}; !slices.Equal(removed, want) || pruned.Freed <= 0 {
		t.Errorf("pruned %v (freed %d), want %v", removed, pruned.Freed, want)
	}
	want := n.kept()
	slices.Sort(want)
	if got := d.imageNames(t); !slices.Equal(got, want) {
		t.Errorf("images after prune: %v, want %v", got, want)
	}
	// Nothing more to prune.
	out, _, code = d.ctl("images", "prune")
	if code != 0 || out != "Total reclaimed space: 0 B\n" {
		t.Errorf("second prune (exit %d): %q", code, out)
	}
	d.waitRunning("used", 10*time.Second)
	if m := regexp.MustCompile(`minipod_image_garbage_collected_total\{reason="prune"\} (\d+)`).FindStringSubmatch(d.metrics(t)); m == nil || m[1] != "2" {
		t.Errorf("minipod_image_garbage_collected_total{reason=\"prune\"}: %v, want 2", m)
	}
}

// The node-wide cap on container logs: two chatty containers, each within its own rotation
// limits (5 files of 10Ki), together above the 40Ki cap; the oldest rotated files go until
// all logs fit, never a file a container writes, and both logs still read.
func TestContainerLogCap(t *testing.T) {
	t.Parallel()
	const capBytes = 40 << 10
	d := newDaemon(t, "--container-log-max-size", "10Ki", "--container-log-max-files", "5", "--container-log-max-total-size", "40Ki")
	chatty := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: Never
    command: ["sh", "-c", "i=0; while [ $i -lt 500 ]; do echo %s line $i 0123456789012345678901234567890123456789012345678901234567890123456789; i=$((i+1)); done; echo %s done; sleep 3600"]
`, name, imagebuild.DefaultBusyboxName, name, name)
	}
	d.start()
	d.writeManifest("a.yaml", chatty("chat-a"))
	d.writeManifest("b.yaml", chatty("chat-b"))
	d.waitRunning("chat-a", 60*time.Second)
	d.waitRunning("chat-b", 60*time.Second)
	total := func() (int64, []string) {
		var sum int64
		var files []string
		filepath.WalkDir(d.logs, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.Type().IsRegular() {
				info, _ := e.Info()
				sum += info.Size()
				rel, _ := filepath.Rel(d.logs, p)
				files = append(files, fmt.Sprintf("%s (%d)", rel, info.Size()))
			}
			return nil
		})
		return sum, files
	}
	for _, name := range []string{"chat-a", "chat-b"} {
		d.eventually(30*time.Second, name+" wrote all its lines", func() (bool, string) {
			out, _, _ := d.ctl("logs", name, "--tail", "1")
			return out == name+" done\n", out
		})
	}
	d.eventually(30*time.Second, "all logs under the node-wide cap", func() (bool, string) {
		sum, files := total()
		return sum <= capBytes, fmt.Sprintf("%d bytes: %v", sum, files)
	})
	sum, files := total()
	current := 0
	for _, f := range files {
		if strings.Contains(f, "/c/0.log ") {
			current++
		}
	}
	if current != 2 || sum < 10<<10 {
		t.Errorf("logs left: %d bytes, %v; want both containers' current files", sum, files)
	}
	if m := regexp.MustCompile(`minipod_container_log_files_removed_total (\d+)`).FindStringSubmatch(d.metrics(t)); m == nil || m[1] == "0" {
		t.Errorf("minipod_container_log_files_removed_total: %v, want some", m)
	}
}
