package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// updatePod is a two-container pod: web serves its version on :8080, app runs appCmd from
// appImage. annotations is a YAML flow mapping's inside ("" for none).
func updatePod(version, appImage, appCmd, annotations string) string {
	if appCmd == "" {
		appCmd = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web
  annotations: {%s}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "mkdir -p /www && echo $V > /www/index.html && exec httpd -f -p 8080 -h /www"]
    env: [{name: V, value: %q}]
  - name: app
    image: %s
    command: %s
`, annotations, version, appImage, appCmd)
}

// serves returns what the pod's web server answers at ip, or the error.
func serves(ip string) string { return servesWithin(ip, 2*time.Second) }

func servesWithin(ip string, timeout time.Duration) string {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + ip + ":8080/")
	if err != nil {
		return "error: " + err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return strings.TrimSpace(string(b))
}

// waitServes waits for the web server at ip to answer want: Ready without a readiness probe
// means started, and httpd may not listen yet.
func (d *daemon) waitServes(ip, want string) {
	d.t.Helper()
	d.eventually(10*time.Second, ip+" serving "+want, func() (bool, string) {
		got := serves(ip)
		return got == want, got
	})
}

// waitRevision waits for the pod to run a revision other than old with all its containers
// ready, and returns it.
func (d *daemon) waitRevision(old string, timeout time.Duration) *corev1.Pod {
	d.t.Helper()
	var got *corev1.Pod
	d.eventually(timeout, "a revision other than "+old+" running", func() (bool, string) {
		p := d.pod("web")
		if p == nil {
			return false, "not listed"
		}
		got = p
		if rev := p.Annotations["minipod.io/revision"]; rev == old || p.DeletionTimestamp != nil {
			return false, "revision " + rev + ": " + p.Status.Message
		}
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 2 {
			return false, string(p.Status.Phase)
		}
		for _, c := range p.Status.ContainerStatuses {
			if !c.Ready {
				return false, fmt.Sprintf("%s not ready: %+v", c.Name, c.State)
			}
		}
		return true, ""
	})
	return got
}

// An update whose image must come over a slow link is pulled while the old version serves:
// the old containers run on, the same ones, the whole time the registry holds the layer; the
// pod is replaced once it is in. An update to a tag that does not exist never stops the pod,
// and a fixed file applies.
func TestUpdatePullsFirst(t *testing.T) {
	reg := startRegistry(t, "", "")
	big, total := pushBigImage(t, reg, "test/big:2")
	proxy, release := gatedProxy(t, reg, big, 1<<20)
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "4s")
	d.start()

	d.writeManifest("web.yaml", updatePod("v1", "minipod.local/busybox:1.35", "", ""))
	p1 := d.waitRunning("web", 60*time.Second)
	rev1, ids1 := p1.Annotations["minipod.io/revision"], containerIDs(p1)
	if rev1 == "" {
		t.Fatalf("v1 has no revision: %v", p1.Annotations)
	}
	d.waitServes(p1.Status.PodIP, "v1")

	ref := proxy + "/test/big:2"
	d.writeManifest("web.yaml", updatePod("v2", ref, "", ""))
	progress := regexp.MustCompile(`^update pending: pulling image "` + regexp.QuoteMeta(ref) + `": ([0-9.]+) (B|KiB|MiB) of ` + regexp.QuoteMeta(total) + `$`)
	d.eventually(60*time.Second, "the update pending with the pull's progress", func() (bool, string) {
		p := d.pod("web")
		m := progress.FindStringSubmatch(p.Status.Message)
		return m != nil && m[1] != "0", p.Status.Message
	})
	// While the layer is held: the same containers, running, serving v1, for a few seconds
	// of looking (the gate holds the pull as long as the test wants).
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		p := d.pod("web")
		if p.Annotations["minipod.io/revision"] != rev1 || !slices.Equal(containerIDs(p), ids1) || p.Status.Phase != corev1.PodRunning {
			t.Fatalf("during the pull: revision %s, containers %v (were %v), phase %s", p.Annotations["minipod.io/revision"], containerIDs(p), ids1, p.Status.Phase)
		}
		if got := serves(p.Status.PodIP); got != "v1" {
			t.Fatalf("during the pull the pod serves %q", got)
		}
	}
	if out, _, code := d.ctl("describe", "web"); code != 0 || !strings.Contains(out, "Pending:") || !strings.Contains(out, "update pending: pulling image") {
		t.Errorf("describe during the pull (%d):\n%s", code, out)
	}
	if out, _, _ := d.ctl("status", "-o", "wide"); !strings.Contains(out, "REVISION") || !strings.Contains(out, rev1) {
		t.Errorf("status -o wide during the pull:\n%s", out)
	}
	release()
	p2 := d.waitRevision(rev1, 60*time.Second)
	rev2 := p2.Annotations["minipod.io/revision"]
	d.waitServes(p2.Status.PodIP, "v2")
	if out, _, code := d.ctl("exec", "web", "-c", "app", "--", "sh", "-c", "wc -c </big"); code != 0 || strings.TrimSpace(out) != fmt.Sprint(bigSize) {
		t.Errorf("the new image's big file: %d %q", code, out)
	}

	// A tag that does not exist: the pod keeps running v2, with the pull error in its status.
	d.writeManifest("web.yaml", updatePod("v3", proxy+"/test/big:nope", "", ""))
	d.eventually(60*time.Second, "the pull error in the status", func() (bool, string) {
		p := d.pod("web")
		return strings.HasPrefix(p.Status.Message, "update pending: ErrImagePull: ") || strings.HasPrefix(p.Status.Message, "update pending: ImagePullBackOff: "), p.Status.Message
	})
	if p := d.pod("web"); p.Annotations["minipod.io/revision"] != rev2 || !slices.Equal(containerIDs(p), containerIDs(p2)) || serves(p.Status.PodIP) != "v2" {
		t.Errorf("after the failed pull: revision %s, containers %v, serves %q", p.Annotations["minipod.io/revision"], containerIDs(p), serves(p.Status.PodIP))
	}
	d.writeManifest("web.yaml", updatePod("v4", "minipod.local/busybox:1.35", "", ""))
	p4 := d.waitRevision(rev2, 60*time.Second)
	d.waitServes(p4.Status.PodIP, "v4")
	if p4.Status.Message != "" {
		t.Errorf("the fix: message %q", p4.Status.Message)
	}

	// The file changes while the daemon is stopped: the next daemon adopts the version that
	// runs and keeps it serving while the new image comes, as if it had seen the edit.
	rev4 := p4.Annotations["minipod.io/revision"]
	big5, _ := pushBigImage(t, reg, "test/big:5")
	proxy5, release5 := gatedProxy(t, reg, big5, 1<<20)
	d.stop(syscall.SIGTERM)
	d.writeManifest("web.yaml", updatePod("v5", proxy5+"/test/big:5", "", ""))
	d.start()
	d.eventually(60*time.Second, "the adopted version serving while v5's image comes", func() (bool, string) {
		p := d.pod("web")
		if p == nil {
			return false, "not listed"
		}
		return strings.HasPrefix(p.Status.Message, "update pending: pulling image"), p.Annotations["minipod.io/revision"] + ": " + p.Status.Message
	})
	if p := d.pod("web"); p.Annotations["minipod.io/revision"] != rev4 || !slices.Equal(containerIDs(p), containerIDs(p4)) || serves(p.Status.PodIP) != "v4" {
		t.Errorf("after the restart: revision %s (want %s), containers %v (were %v), serves %q", p.Annotations["minipod.io/revision"], rev4,
			containerIDs(p), containerIDs(p4), serves(p.Status.PodIP))
	}
	release5()
	p5 := d.waitRevision(rev4, 60*time.Second)
	d.waitServes(p5.Status.PodIP, "v5")
	d.removeManifest("web.yaml")
	d.waitGone("web", 60*time.Second)
	d.nothingLeft(60*time.Second, p5.Status.PodIP)
}

// With rollback on, updates that fail come back to the last Ready version: one that crash
// loops at once, one that never gets Ready by its deadline, and one whose rollback the daemon
// is killed in the middle of. With rollback off the same update crash loops, as on a kubelet.
func TestUpdateRollback(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "4s")
	d.start()
	const on = `minipod.io/rollback: "true", minipod.io/progress-deadline: 15s`
	crash := `["sh", "-c", "echo bad config >&2; exit 1"]`

	d.writeManifest("web.yaml", updatePod("v1", "minipod.local/busybox:1.35", "", on))
	p1 := d.waitRunning("web", 60*time.Second)
	rev1 := p1.Annotations["minipod.io/revision"]
	d.eventually(30*time.Second, "v1 is the good revision", func() (bool, string) {
		p := d.pod("web")
		return p.Annotations["minipod.io/revision-good"] == rev1, fmt.Sprint(p.Annotations)
	})
	rolledBack := func(what, reason string) (*corev1.Pod, time.Duration) {
		t.Helper()
		start := time.Now()
		var got *corev1.Pod
		d.eventually(90*time.Second, what+" rolled back", func() (bool, string) {
			p := d.pod("web")
			if p == nil {
				return false, "not listed"
			}
			got = p
			ok := p.Status.Reason == "RolledBack" && p.Annotations["minipod.io/revision"] == rev1 && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil
			return ok && strings.Contains(p.Status.Message, ": "+reason+": "), p.Annotations["minipod.io/revision"] + " " + p.Status.Reason + ": " + p.Status.Message
		})
		for _, c := range got.Status.ContainerStatuses {
			if !c.Ready {
				d.t.Fatalf("%s: rolled back but %s not ready", what, c.Name)
			}
		}
		d.waitServes(got.Status.PodIP, "v1")
		return got, time.Since(start)
	}

	// 1. The new version's container exits 1 at start.
	d.writeManifest("web.yaml", updatePod("v2", "minipod.local/busybox:1.35", crash, on))
	p, took := rolledBack("a crash at start", "CrashLoopBackOff")
	failed := strings.TrimSuffix(p.Annotations["minipod.io/revision-failed"], ": CrashLoopBackOff")
	if failed == "" || failed == rev1 || !strings.Contains(p.Status.Message, "revision "+failed+" failed") {
		t.Errorf("rolled back: annotations %v, message %q", p.Annotations, p.Status.Message)
	}
	t.Logf("crash at start rolled back in %s: %s", took.Round(time.Second), p.Status.Message)
	if out, _, _ := d.ctl("events", "web"); !strings.Contains(out, "RolledBack") {
		t.Errorf("no RolledBack event:\n%s", out)
	}
	if out, _, code := d.ctl("rollout", "history", "web"); code != 0 || !strings.Contains(out, failed) || !strings.Contains(out, "failed: CrashLoopBackOff") || !strings.Contains(out, "rolled back to") {
		t.Errorf("rollout history (%d):\n%s", code, out)
	}
	// Not tried again while the file holds it.
	time.Sleep(3 * time.Second)
	if p := d.pod("web"); p.Annotations["minipod.io/revision"] != rev1 || p.Status.Reason != "RolledBack" {
		t.Errorf("the failed revision was tried again: %s %s", p.Annotations["minipod.io/revision"], p.Status.Reason)
	}

	// A retry runs it again; it fails again and comes back again.
	if out, errs, code := d.ctl("rollout", "retry", "web"); code != 0 {
		t.Fatalf("rollout retry: %d %s %s", code, out, errs)
	}
	d.eventually(60*time.Second, "the failed revision retried", func() (bool, string) {
		p := d.pod("web")
		return p.Annotations["minipod.io/revision"] == failed, p.Annotations["minipod.io/revision"]
	})
	rolledBack("the retried crash", "CrashLoopBackOff")
	if m := d.metrics(t); !strings.Contains(m, "minipod_pod_rollbacks_total 2\n") || !strings.Contains(m, "minipod_pod_updates_total ") {
		t.Errorf("metrics after two rollbacks:\n%s", grepLines(m, "minipod_pod_"))
	}

	// 2. The new version runs but never gets Ready: back after the 15 s deadline.
	d.writeManifest("web.yaml", strings.Replace(updatePod("v3", "minipod.local/busybox:1.35", "", on),
		"  - name: app\n", "  - name: app\n    readinessProbe: {exec: {command: [\"false\"]}, periodSeconds: 1}\n", 1))
	d.eventually(60*time.Second, "v3 running", func() (bool, string) {
		p := d.pod("web")
		rev := p.Annotations["minipod.io/revision"]
		return rev != rev1 && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil, rev
	})
	_, took = rolledBack("a version never Ready", "ProgressDeadlineExceeded")
	if took < 10*time.Second {
		t.Errorf("the never-Ready version was rolled back after %s, well before its 15 s deadline", took)
	}

	// 3. The daemon is killed while the failed version is being stopped (its web container
	// ignores SIGTERM, so its stop takes the 10 s grace period); the next daemon finishes the
	// rollback, and nothing of the failed version is left.
	slow := strings.Replace(updatePod("v4", "minipod.local/busybox:1.35", crash, on),
		`exec httpd -f -p 8080 -h /www`, `trap '' TERM; httpd -p 8080 -h /www; while true; do sleep 1; done`, 1)
	slow = strings.Replace(slow, "terminationGracePeriodSeconds: 2", "terminationGracePeriodSeconds: 10", 1)
	d.writeManifest("web.yaml", slow)
	var rev4 string
	d.eventually(60*time.Second, "v4 failing and being rolled back", func() (bool, string) {
		p := d.pod("web")
		f := p.Annotations["minipod.io/revision-failed"]
		rev4 = strings.TrimSuffix(f, ": CrashLoopBackOff")
		return rev4 != f && rev4 != failed && p.Annotations["minipod.io/revision"] == rev4 && p.DeletionTimestamp != nil,
			fmt.Sprintf("%s failed %q deleting %v", p.Annotations["minipod.io/revision"], f, p.DeletionTimestamp != nil)
	})
	d.stop(syscall.SIGKILL)
	d.start()
	p, _ = rolledBack("a rollback interrupted by a daemon crash", "CrashLoopBackOff")
	d.eventually(30*time.Second, "nothing of "+rev4+" left", func() (bool, string) {
		v := d.containerdView()
		for id := range v.created {
			if strings.HasPrefix(id, rev4) {
				return false, "container " + id
			}
		}
		return true, ""
	})
	if ips := ipamReservations(d.state); len(ips) != 1 || filepath.Base(ips[0]) != p.Status.PodIP {
		t.Errorf("IPAM reservations %v, want the one of %s", ips, p.Status.PodIP)
	}

	// 4. Rollback off: the same crash stays, in CrashLoopBackOff.
	d.writeManifest("web.yaml", updatePod("v5", "minipod.local/busybox:1.35", crash, ""))
	d.eventually(60*time.Second, "v5 in CrashLoopBackOff", func() (bool, string) {
		p := d.pod("web")
		for _, c := range p.Status.ContainerStatuses {
			if c.Name == "app" && c.State.Waiting != nil && c.State.Waiting.Reason == "CrashLoopBackOff" && c.RestartCount >= 2 {
				return p.Annotations["minipod.io/revision"] != rev1, p.Annotations["minipod.io/revision"]
			}
		}
		return false, fmt.Sprintf("%s %+v", p.Annotations["minipod.io/revision"], p.Status.ContainerStatuses)
	})
	if p := d.pod("web"); p.Status.Reason != "" || p.Annotations["minipod.io/revision"] == rev1 {
		t.Errorf("rollback off: reason %q, revision %s", p.Status.Reason, p.Annotations["minipod.io/revision"])
	}
	ip := d.pod("web").Status.PodIP
	d.removeManifest("web.yaml")
	d.waitGone("web", 60*time.Second)
	d.nothingLeft(60*time.Second, ip)
	if _, err := os.Stat(filepath.Join(d.state, "rollouts", "default_web.json")); !os.IsNotExist(err) {
		t.Errorf("the rollout record outlives its pod: %v", err)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
