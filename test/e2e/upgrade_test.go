package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// upgradeFrom is the earlier build TestUpgradeKeepsPods upgrades from: 9087aa9 ("Adoption
// keeps startedAt (from /proc), last state and crash backoff"), the oldest commit whose pods a
// newer build can adopt unchanged. Older ones were tried (MINIPOD_E2E_UPGRADE_FROM=<commit>):
//   - 0bcf5a9 does not build (its pkg/manifest is not in the commit);
//   - 1f5dc04 to a85d037 logged through cio.LogFile, which a newer build cannot attach to: every
//     container is restarted;
//   - 0a983a5 to c48b788 keep the containers, but took startedAt from the clock at start while
//     newer builds read it from /proc: startedAt moves by up to a second, depending on timing.
const upgradeFrom = "9087aa9e078cd27892c9b719c083bc0132bf64e2"

// buildAt builds minipod and minipodctl as they were at commit into a temporary directory and
// returns it. It skips the test when the source is not a git checkout with that commit.
func buildAt(t *testing.T, commit string) string {
	t.Helper()
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("upgrade test needs the git history of minipod (this source tree is not a git checkout: %v)", err)
	}
	repo := strings.TrimSpace(string(top))
	if err := exec.Command("git", "-C", repo, "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		t.Skipf("upgrade test needs commit %s of minipod's history (a shallow clone lacks it: git fetch --unshallow)", commit)
	}
	src, bin := t.TempDir(), t.TempDir()
	// git archive reads the object store only: the working tree and index are never touched.
	archive := exec.Command("git", "-C", repo, "archive", commit)
	untar := exec.Command("tar", "-x", "-C", src)
	pipe, err := archive.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	untar.Stdin = pipe
	var archErr, tarErr strings.Builder
	archive.Stderr, untar.Stderr = &archErr, &tarErr
	if err := untar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := archive.Run(); err != nil {
		t.Fatalf("git archive %s: %v %s", commit, err, archErr.String())
	}
	if err := untar.Wait(); err != nil {
		t.Fatalf("tar: %v %s", err, tarErr.String())
	}
	build := exec.Command("go", "build", "-trimpath", "-o", bin+"/", "./cmd/...")
	build.Dir = src
	// That commit's go.sum may lack entries today's toolchain wants: let go fill them in.
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build minipod at %s: %v\n%s", commit, err, out)
	}
	return bin
}

// A pod with an init container, probes and resources.
const probedPod = `apiVersion: v1
kind: Pod
metadata:
  name: probed
  labels: {app: probed, tier: backend}
spec:
  terminationGracePeriodSeconds: 2
  initContainers:
  - name: init
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "echo init done"]
  containers:
  - name: main
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "touch /tmp/ready; trap 'exit 0' TERM; while true; do sleep 1; done"]
    resources:
      limits: {memory: 64Mi, cpu: 200m}
    readinessProbe:
      exec: {command: ["test", "-f", "/tmp/ready"]}
      periodSeconds: 1
    livenessProbe:
      exec: {command: ["true"]}
      periodSeconds: 1
      # On a loaded 2-CPU machine an exec can take over the default second: only a new build
      # acting on the pod may make an event here.
      timeoutSeconds: 10
`

// containerdView is what containerd holds for a namespace: each container's creation time and
// each running task's PID.
type containerdView struct {
	created map[string]string
	pids    map[string]string
}

func (d *daemon) containerdView() containerdView {
	d.t.Helper()
	ctr := func(args ...string) string {
		out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).Output()
		if err != nil {
			d.t.Fatalf("ctr %v: %v", args, err)
		}
		return string(out)
	}
	v := containerdView{created: map[string]string{}, pids: map[string]string{}}
	for _, id := range strings.Fields(ctr("containers", "ls", "-q")) {
		var info struct{ CreatedAt string }
		if err := json.Unmarshal([]byte(ctr("containers", "info", id)), &info); err != nil {
			d.t.Fatalf("ctr containers info %s: %v", id, err)
		}
		v.created[id] = info.CreatedAt
	}
	// containerd lists a task whose shim did not answer its state query in time (a loaded
	// machine, a probe exec in flight) as UNKNOWN with pid 0: that says nothing of the task,
	// so the list is read again until every task has a known state.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var unknown []string
		for i, line := range strings.Split(ctr("tasks", "ls"), "\n") {
			f := strings.Fields(line)
			if i == 0 || len(f) < 3 {
				continue
			}
			switch f[2] {
			case "RUNNING":
				v.pids[f[0]] = f[1]
			case "UNKNOWN":
				unknown = append(unknown, f[0])
			}
		}
		if len(unknown) == 0 {
			return v
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("containerd reports the state of tasks %v as UNKNOWN for 30 s", unknown)
		}
		clear(v.pids)
	}
}

func (v containerdView) String() string {
	var lines []string
	for id, c := range v.created {
		lines = append(lines, fmt.Sprintf("%s created %s pid %s", id, c, v.pids[id]))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// podSnapshot is what must not change across an upgrade, per container.
func podSnapshot(p *corev1.Pod) map[string]string {
	m := map[string]string{}
	for _, c := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		s := fmt.Sprintf("id=%s restarts=%d", c.ContainerID, c.RestartCount)
		switch {
		case c.State.Running != nil:
			s += " running since " + c.State.Running.StartedAt.UTC().Format(time.RFC3339)
		case c.State.Terminated != nil:
			// Not its startedAt: see terminatedStarts.
			s += fmt.Sprintf(" terminated exit=%d reason=%s", c.State.Terminated.ExitCode, c.State.Terminated.Reason)
		default:
			s += fmt.Sprintf(" %+v", c.State)
		}
		m[c.Name] = s
	}
	return m
}

// terminatedStarts is the startedAt of each exited container. The old build kept no record of
// when an exited container's process started (newer builds label it), so the new build can only
// fall back to the container's creation, a few milliseconds earlier: at second resolution the
// two may differ by one when a second boundary falls between them.
func terminatedStarts(p *corev1.Pod) map[string]time.Time {
	m := map[string]time.Time{}
	for _, c := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if c.State.Terminated != nil {
			m[c.Name] = c.State.Terminated.StartedAt.Time
		}
	}
	return m
}

// Upgrading minipod to a new build never restarts running pods whose spec did not change: the
// old build (upgradeFrom) runs pods, is stopped as systemd stops it (SIGTERM to the daemon alone,
// KillMode=process; the pods keep running), and the new build started on the same state dir and
// socket adopts every container as it is: same containers, same task PIDs, no restart, same
// startedAt, init containers not run again. A spec hash that changed between versions broke
// this on kubelets (kubernetes#129385). MINIPOD_E2E_UPGRADE_FROM=<commit> tries another build.
func TestUpgradeKeepsPods(t *testing.T) {
	from := upgradeFrom
	if c := os.Getenv("MINIPOD_E2E_UPGRADE_FROM"); c != "" {
		from = c // try another earlier build
	}
	old := buildAt(t, from)
	d := newDaemon(t, "--resync", "1s")
	d.binDir = old
	d.dropFlags = []string{"--config"} // the config file came later; the old build has no flag
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.writeManifest("probed.yaml", probedPod)
	before := map[string]map[string]string{}
	startsBefore := map[string]map[string]time.Time{}
	for _, name := range []string{"web", "probed"} {
		p := d.waitRunning(name, 90*time.Second)
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount != 0 || c.State.Running == nil {
				t.Fatalf("old build: %s/%s not running unrestarted: %+v", name, c.Name, c)
			}
		}
		before[name] = podSnapshot(p)
		startsBefore[name] = terminatedStarts(p)
	}
	// web: pause and two containers; probed: pause, main and its exited init container.
	ctrdBefore := d.containerdView()
	if len(ctrdBefore.created) != 6 || len(ctrdBefore.pids) != 5 {
		t.Fatalf("old build: containerd holds\n%s\nwant 6 containers, 5 of them running", ctrdBefore)
	}

	// Stop the old build the way an upgrade does, and check the pods did not go with it.
	d.stop(syscall.SIGTERM)
	if now := d.containerdView(); now.String() != ctrdBefore.String() {
		t.Fatalf("stopping the old daemon changed containerd:\nbefore:\n%s\nafter:\n%s", ctrdBefore, now)
	}

	d.binDir, d.dropFlags = "", nil
	d.start()
	same := func() (bool, string) {
		for _, name := range []string{"web", "probed"} {
			p := d.pod(name)
			if p == nil {
				return false, name + " not listed"
			}
			if p.Status.Phase != corev1.PodRunning {
				return false, fmt.Sprintf("%s phase %s", name, p.Status.Phase)
			}
			for _, c := range p.Status.ContainerStatuses {
				if !c.Ready {
					return false, fmt.Sprintf("%s/%s not ready", name, c.Name)
				}
			}
			if got := podSnapshot(p); fmt.Sprint(got) != fmt.Sprint(before[name]) {
				return false, fmt.Sprintf("%s: %v, before the upgrade %v", name, got, before[name])
			}
			got := terminatedStarts(p)
			if len(got) != len(startsBefore[name]) {
				return false, fmt.Sprintf("%s: exited containers %v, before the upgrade %v", name, got, startsBefore[name])
			}
			for c, at := range got {
				if d := at.Sub(startsBefore[name][c]); d < -time.Second || d > time.Second {
					return false, fmt.Sprintf("%s/%s: started %s, before the upgrade %s", name, c, at, startsBefore[name][c])
				}
			}
		}
		if now := d.containerdView(); now.String() != ctrdBefore.String() {
			return false, fmt.Sprintf("containerd:\n%s\nbefore the upgrade:\n%s", now, ctrdBefore)
		}
		return true, ""
	}
	d.eventually(60*time.Second, "pods adopted unchanged by the new build", same)
	// The new build reconciles on every resync (1s here) and probes every second: unchanged
	// pods stay untouched through several of each.
	until := time.Now().Add(5 * time.Second)
	for time.Now().Before(until) {
		if ok, detail := same(); !ok {
			t.Fatalf("after adoption by the new build: %s", detail)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, _, _ := d.ctl("events")
	for _, bad := range []string{"Killing", "Created container", "Started container", "Unhealthy", "SandboxChanged"} {
		if strings.Contains(out, bad) {
			t.Errorf("the new build acted on unchanged pods (%q):\n%s", bad, out)
		}
	}
	// Still the same pods to the new build: a change of the file is applied as usual.
	d.writeManifest("web.yaml", strings.Replace(webPod, "app: web", "app: upgraded", 1))
	d.eventually(60*time.Second, "web edited after the upgrade runs anew", func() (bool, string) {
		p := d.pod("web")
		return p != nil && p.Labels["app"] == "upgraded" && p.Status.Phase == corev1.PodRunning &&
			fmt.Sprint(podSnapshot(p)) != fmt.Sprint(before["web"]), fmt.Sprintf("%v", p != nil)
	})
}
