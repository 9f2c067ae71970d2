package e2e

// A pod's worker never lets slow work (an image pull, a postStart hook) keep it from hearing
// about its pod: a removal, an edit or a probe's verdict is acted on while a pull or a hook is
// still under way, and what the slow work held is given back (issue 19).

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// heldPull serves a registry holding the big test image through gatedProxy, which holds its
// layer after the first MiB until release is called (also at the end of the test), and in
// front of that a proxy that counts the blob downloads in progress. It returns the image's
// reference through both, the count and release.
func heldPull(t *testing.T) (ref string, downloads *atomic.Int32, release func()) {
	t.Helper()
	r := startRegistry(t, "", "")
	layer, _ := pushBigImage(t, r, "test/big:1")
	gated, release := gatedProxy(t, r, layer, 1<<20)
	addr, downloads := countBlobDownloads(t, gated)
	// Cleanups run last first: the gate must open before the counting proxy's Close, which
	// waits for a download held behind the gate.
	t.Cleanup(release)
	return addr + "/test/big:1", downloads, release
}

// countBlobDownloads serves the registry at target on another loopback port and counts the
// blob GETs in progress through it. One ends when its handler returns: when the body has been
// passed on, or when the client gave up (its request's context ends the upstream request).
func countBlobDownloads(t *testing.T, target string) (addr string, n *atomic.Int32) {
	t.Helper()
	u, _ := url.Parse("http://" + target)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1
	n = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
			n.Add(1)
			defer n.Add(-1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), n
}

// containerStatusOf returns the status of the pod's container name, nil when there is none.
func containerStatusOf(p *corev1.Pod, name string) *corev1.ContainerStatus {
	if p == nil {
		return nil
	}
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == name {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

// pullingImage reports whether the container waits in ContainerCreating while its image is
// pulled (pullMessage in pkg/pod: `Pulling image "REF"`, then the bytes in hand).
func pullingImage(cs *corev1.ContainerStatus, image string) bool {
	if cs == nil || cs.State.Waiting == nil {
		return false
	}
	w := cs.State.Waiting
	return w.Reason == "ContainerCreating" && strings.HasPrefix(w.Message, fmt.Sprintf("Pulling image %q", image))
}

// podSummary sums up a pod's status for a failure message.
func podSummary(p *corev1.Pod) string {
	if p == nil {
		return "not listed"
	}
	s := fmt.Sprintf("uid %s phase %s", shortID(string(p.UID)), p.Status.Phase)
	if p.DeletionTimestamp != nil {
		s += " (terminating)"
	}
	for _, cs := range p.Status.ContainerStatuses {
		st := "?"
		switch {
		case cs.State.Running != nil:
			st = "running"
		case cs.State.Waiting != nil:
			st = cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
		case cs.State.Terminated != nil:
			st = fmt.Sprintf("terminated %d %s", cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		}
		s += fmt.Sprintf("; %s restarts %d %s", cs.Name, cs.RestartCount, st)
	}
	return s
}

func shortID(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

// waitPulling waits until the pod's container waits for its image to be pulled and a blob
// download of it is held at the gate, and returns the pod as listed then.
func (d *daemon) waitPulling(name, container, image string, downloads *atomic.Int32) *corev1.Pod {
	d.t.Helper()
	var got *corev1.Pod
	d.eventually(60*time.Second, name+"/"+container+" pulling "+image+", held mid-layer", func() (bool, string) {
		got = d.pod(name)
		n := downloads.Load()
		return pullingImage(containerStatusOf(got, container), image) && n > 0, fmt.Sprintf("%s; %d blob downloads", podSummary(got), n)
	})
	return got
}

// removeWithin removes the pod's manifest (<name>.yaml) and fails unless, within bound of
// the removal, the pod has left `minipodctl status` and no task is left in the daemon's
// namespace (so that a pod that was never listed cannot pass). It returns how long that took.
func (d *daemon) removeWithin(name string, bound time.Duration) time.Duration {
	d.t.Helper()
	start := time.Now()
	d.removeManifest(name + ".yaml")
	d.eventually(bound, "pod "+name+" and its tasks gone after its file was removed", func() (bool, string) {
		p := d.pod(name)
		tasks := d.tasks()
		return p == nil && len(tasks) == 0, fmt.Sprintf("after %s: %s; tasks %v", time.Since(start).Round(time.Millisecond), podSummary(p), tasks)
	})
	took := time.Since(start)
	d.t.Logf("%s gone %s after its file was removed", name, took.Round(time.Millisecond))
	return took
}

// tasks lists the IDs of the tasks in the daemon's namespace.
func (d *daemon) tasks() []string {
	d.t.Helper()
	out, err := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "tasks", "ls", "-q").Output()
	if err != nil {
		d.t.Fatalf("ctr tasks ls: %v", err)
	}
	return strings.Fields(string(out))
}

// poll reports whether cond holds within timeout, polling it as eventually does.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pullAbandoned fails unless, within timeout, no blob download is in progress through the
// counting proxy and no lease is left in the daemon's namespace: nothing of the pull holds
// content any more.
func (d *daemon) pullAbandoned(timeout time.Duration, downloads *atomic.Int32) {
	d.t.Helper()
	d.eventually(timeout, "the held download given up", func() (bool, string) {
		n := downloads.Load()
		return n == 0, fmt.Sprintf("%d blob downloads in progress", n)
	})
	d.eventually(timeout, "no lease left", func() (bool, string) {
		l := d.leases()
		return len(l) == 0, fmt.Sprintf("leases %v", l)
	})
}

// nothingLeft fails unless, within timeout, nothing of the daemon's pods is left.
func (d *daemon) nothingLeft(timeout time.Duration, ips ...string) {
	d.t.Helper()
	d.eventually(timeout, "nothing left", func() (bool, string) {
		left := d.leftovers(ips...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}

// A pod whose file is removed while its image is pulled goes at once: the pull is given up
// (its download ends, its lease with what it fetched is gone), not waited for.
func TestRemoveWhilePulling(t *testing.T) {
	d := newDaemon(t)
	ref, downloads, release := heldPull(t)
	d.start()
	d.writeManifest("pulling.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: pulling}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`, ref))
	p := d.waitPulling("pulling", "c", ref, downloads)
	t.Logf("while pulling: %s; %d blob downloads held", podSummary(p), downloads.Load())
	leases := d.leases()
	if len(leases) == 0 {
		t.Fatal("no lease during the pull: the lease check would prove nothing")
	}
	t.Logf("leases during the pull: %v", leases)

	d.removeWithin("pulling", 5*time.Second)
	d.pullAbandoned(5*time.Second, downloads)
	d.nothingLeft(10*time.Second, p.Status.PodIP)
	release()
}

// A pod whose file is removed while a postStart hook runs goes within seconds: the
// hook is cut short, as a kubelet does on deletion, and the stop is not held up by it.
func TestRemoveDuringPostStart(t *testing.T) {
	d := newDaemon(t)
	// The hook leaves a mark in a host directory when it begins: the container runs and its
	// hook is under way, whatever the status says by then.
	marks := t.TempDir()
	d.start()
	d.writeManifest("hooked.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: hooked}
spec:
  terminationGracePeriodSeconds: 2
  volumes:
  - name: marks
    hostPath: {path: %s, type: Directory}
  containers:
  - name: c
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    volumeMounts:
    - {name: marks, mountPath: /marks}
    lifecycle:
      postStart:
        exec:
          command: ["sh", "-c", "touch /marks/hook-began; exec sleep 600"]
`, marks))
	mark := filepath.Join(marks, "hook-began")
	d.eventually(60*time.Second, "the postStart hook begun", func() (bool, string) {
		_, err := os.Stat(mark)
		return err == nil, podSummary(d.pod("hooked"))
	})
	// The pod is listed while its hook runs (its container maybe not started yet). Not fatal:
	// the removal below is the point, and it does not count on the listing.
	var p *corev1.Pod
	if !poll(5*time.Second, func() bool { p = d.pod("hooked"); return p != nil }) {
		t.Errorf("hooked not listed 5s after its postStart hook began")
	}
	t.Logf("while the hook runs: %s", podSummary(p))
	var ips []string
	if p != nil && p.Status.PodIP != "" {
		ips = append(ips, p.Status.PodIP)
	}
	d.removeWithin("hooked", 5*time.Second)
	d.nothingLeft(10*time.Second, ips...)
}

// While one container's image is pulled, the pod's other container is looked after: its
// liveness probe fails and it is restarted, with the pull still under way.
func TestLivenessWhilePulling(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "2s")
	ref, downloads, release := heldPull(t)
	d.start()
	d.writeManifest("duo.yaml", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: duo}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: a
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    livenessProbe:
      exec: {command: ["sh", "-c", "test ! -f /tmp/die"]}
      periodSeconds: 1
      failureThreshold: 1
      # An exec takes over the default second on a loaded 2-CPU machine: only /tmp/die may fail it.
      timeoutSeconds: 10
  - name: b
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`, ref))
	d.waitPulling("duo", "b", ref, downloads)
	d.eventually(60*time.Second, "a running while b pulls", func() (bool, string) {
		p := d.pod("duo")
		a := containerStatusOf(p, "a")
		return a != nil && a.State.Running != nil && pullingImage(containerStatusOf(p, "b"), ref), podSummary(p)
	})
	if out, errs, code := d.ctl("exec", "duo", "-c", "a", "--", "touch", "/tmp/die"); code != 0 {
		t.Fatalf("exec touch /tmp/die in a: exit %d: %s%s", code, out, errs)
	}
	start := time.Now()
	d.eventually(15*time.Second, "a restarted by its liveness probe while b pulls", func() (bool, string) {
		p := d.pod("duo")
		a := containerStatusOf(p, "a")
		if a == nil || a.RestartCount < 1 || a.State.Running == nil {
			return false, fmt.Sprintf("after %s: %s", time.Since(start).Round(time.Millisecond), podSummary(p))
		}
		if !pullingImage(containerStatusOf(p, "b"), ref) {
			t.Fatalf("a was restarted, but b no longer shows its pull, so the restart may have waited for it: %s", podSummary(p))
		}
		return true, ""
	})
	t.Logf("a restarted %s after its liveness probe was made to fail", time.Since(start).Round(time.Millisecond))

	release()
	p := d.waitRunning("duo", 60*time.Second)
	if a := containerStatusOf(p, "a"); a.RestartCount != 1 {
		t.Errorf("a restarts %d after b started, want 1", a.RestartCount)
	}
	d.removeAndCheck("duo")
}

// While a pod's image is pulled, an edit of its file replaces the version at once: the status
// shows the new version, and a version that no longer needs the image gives the pull up.
func TestPullingPodStatusResponsive(t *testing.T) {
	d := newDaemon(t)
	ref, downloads, release := heldPull(t)
	d.start()
	manifest := func(rev int, image string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: edited
  annotations: {rev: "%d"}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: %s
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`, rev, image)
	}
	rev := func(p *corev1.Pod) string {
		if p == nil {
			return ""
		}
		return p.Annotations["rev"]
	}
	d.writeManifest("edited.yaml", manifest(1, ref))
	old := d.waitPulling("edited", "c", ref, downloads)

	// A new version of the same image: listed at once, not after the old version's pull.
	start := time.Now()
	d.writeManifest("edited.yaml", manifest(2, ref))
	d.eventually(5*time.Second, "version 2 listed", func() (bool, string) {
		p := d.pod("edited")
		return rev(p) == "2" && p.UID != old.UID && p.DeletionTimestamp == nil,
			fmt.Sprintf("after %s: rev %q %s", time.Since(start).Round(time.Millisecond), rev(p), podSummary(p))
	})
	t.Logf("version 2 listed %s after the edit", time.Since(start).Round(time.Millisecond))

	// A version with a local image runs at once, and the pull nobody needs any more is given up.
	start = time.Now()
	d.writeManifest("edited.yaml", manifest(3, "minipod.local/busybox:1.35"))
	d.eventually(10*time.Second, "version 3 running", func() (bool, string) {
		p := d.pod("edited")
		c := containerStatusOf(p, "c")
		return rev(p) == "3" && p.Status.Phase == corev1.PodRunning && c != nil && c.Ready,
			fmt.Sprintf("after %s: rev %q %s", time.Since(start).Round(time.Millisecond), rev(p), podSummary(p))
	})
	t.Logf("version 3 running %s after the edit", time.Since(start).Round(time.Millisecond))
	d.pullAbandoned(5*time.Second, downloads)
	release()
	d.removeAndCheck("edited")
}
