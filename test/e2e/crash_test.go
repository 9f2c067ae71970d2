package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A SIGKILLed daemon started again adopts 20 running pods without restarting any, keeps
// restart counts, start times and last states, answers at once, and applies the restart policy
// to a container that exited while it was down.
func TestDaemonCrashAdoption(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "2s")
	d.start()
	for i := range 20 {
		d.writeManifest(fmt.Sprintf("p%02d.yaml", i), onePod(fmt.Sprintf("p%02d", i), "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	}
	d.writeManifest("crash.yaml", onePod("crash", "Always", "", "sleep 1; exit 3"))
	d.writeManifest("withinit.yaml", onePod("withinit", "Always", "true", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	for i := range 20 {
		d.waitRunning(fmt.Sprintf("p%02d", i), 120*time.Second)
	}
	d.waitRunning("withinit", 60*time.Second)
	// An exited container's process is gone: its start is kept on the container, so that an
	// adopting daemon reports the startedAt this one did.
	initBefore := d.pod("withinit").Status.InitContainerStatuses[0]
	if initBefore.State.Terminated == nil {
		t.Fatalf("withinit's init container: %+v", initBefore.State)
	}
	d.eventually(10*time.Second, "started-at label on the init container", func() (bool, string) {
		out, _ := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "containers", "info", strings.TrimPrefix(initBefore.ContainerID, "containerd://")).Output()
		var info struct{ Labels map[string]string }
		_ = json.Unmarshal(out, &info)
		at, err := time.Parse(time.RFC3339Nano, info.Labels["minipod.io/started-at"])
		return err == nil && at.Truncate(time.Second).Equal(initBefore.State.Terminated.StartedAt.Time), fmt.Sprintf("label %q, reported %s", info.Labels["minipod.io/started-at"], initBefore.State.Terminated.StartedAt)
	})
	d.eventually(60*time.Second, "crash restarted", func() (bool, string) {
		p := d.pod("crash")
		return p != nil && len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].RestartCount >= 2, ""
	})
	before := map[string]corev1.ContainerStatus{}
	for _, p := range d.pods() {
		if len(p.Status.ContainerStatuses) > 0 {
			before[p.Name] = p.Status.ContainerStatuses[0]
		}
	}

	d.stop(syscall.SIGKILL)
	// While the daemon is down, one container dies.
	victim := strings.TrimPrefix(before["p07"].ContainerID, "containerd://")
	if out, err := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "tasks", "kill", "-s", "SIGKILL", victim).CombinedOutput(); err != nil {
		t.Fatalf("kill p07: %v %s", err, out)
	}
	start := time.Now()
	d.start()
	t.Logf("API answered %s after the restart", time.Since(start).Round(time.Millisecond))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("status served %s after the restart, want within 2s", took)
	}
	d.eventually(60*time.Second, "all adopted", func() (bool, string) {
		for _, p := range d.pods() {
			if len(p.Status.ContainerStatuses) == 0 {
				return false, p.Name + " has no status"
			}
			cs, old := p.Status.ContainerStatuses[0], before[p.Name]
			if p.Name == "withinit" {
				ic := p.Status.InitContainerStatuses[0]
				if ic.ContainerID != initBefore.ContainerID || ic.State.Terminated == nil || !ic.State.Terminated.StartedAt.Equal(&initBefore.State.Terminated.StartedAt) {
					return false, fmt.Sprintf("withinit's init container: %+v, was %+v", ic, initBefore)
				}
			}
			switch p.Name {
			case "crash":
				if cs.RestartCount < old.RestartCount || cs.LastTerminationState.Terminated == nil || cs.LastTerminationState.Terminated.ExitCode != 3 {
					return false, fmt.Sprintf("crash: restarts %d (was %d) last %+v", cs.RestartCount, old.RestartCount, cs.LastTerminationState)
				}
			case "p07":
				if cs.RestartCount != 1 || cs.State.Running == nil {
					return false, fmt.Sprintf("p07: restarts %d state %+v", cs.RestartCount, cs.State)
				}
			default:
				if cs.ContainerID != old.ContainerID || cs.RestartCount != 0 || cs.State.Running == nil ||
					!cs.State.Running.StartedAt.Equal(&old.State.Running.StartedAt) || !cs.Ready {
					return false, fmt.Sprintf("%s: %+v, was %+v", p.Name, cs, old)
				}
			}
		}
		return true, ""
	})
}

// When containerd restarts, pods keep running, the daemon reports it while containerd is away,
// finds its tasks again and keeps applying restart policies.
func TestContainerdRestart(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.writeManifest("keep.yaml", onePod("keep", "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	d.waitRunning("web", 60*time.Second)
	d.waitRunning("keep", 60*time.Second)
	before := map[string][]string{"web": containerIDs(d.pod("web")), "keep": containerIDs(d.pod("keep"))}

	restartContainerd(t, func() {
		_, errs, code := d.ctl("status")
		if code != 0 || !strings.Contains(errs, "containerd is not answering") {
			t.Errorf("status while containerd is down: code %d stderr %q", code, errs)
		}
	})
	// The tasks are found again, not restarted.
	d.eventually(30*time.Second, "status healthy again", func() (bool, string) {
		_, errs, _ := d.ctl("status")
		return !strings.Contains(errs, "Warning"), errs
	})
	for name, ids := range before {
		if got := containerIDs(d.pod(name)); fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("%s restarted across a containerd restart: %v -> %v", name, ids, got)
		}
	}
	// Exits are seen again: kill the container and it restarts under its policy.
	id := strings.TrimPrefix(before["keep"][0], "containerd://")
	if out, err := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "tasks", "kill", "-s", "SIGKILL", id).CombinedOutput(); err != nil {
		t.Fatalf("kill: %v %s", err, out)
	}
	d.eventually(60*time.Second, "keep restarted after the containerd restart", func() (bool, string) {
		p := d.pod("keep")
		return p != nil && p.Status.ContainerStatuses[0].RestartCount == 1 && p.Status.ContainerStatuses[0].State.Running != nil,
			fmt.Sprintf("%+v", p.Status.ContainerStatuses[0])
	})
}

// SIGKILL the daemon at random moments while pods are being created and torn down, 50 times:
// after the last restart it converges to the manifest directory with no duplicate and nothing
// orphaned.
func TestCrashMidOperation(t *testing.T) {
	d := newDaemon(t)
	d.start()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	names := []string{"m0", "m1", "m2"}
	present := map[string]bool{}
	for round := range 50 {
		// Flip one or two pods: their creation or teardown is what the kill interrupts.
		for range 1 + rng.IntN(2) {
			n := names[rng.IntN(len(names))]
			if present[n] {
				d.removeManifest(n + ".yaml")
			} else {
				d.writeManifest(n+".yaml", onePod(n, "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
			}
			present[n] = !present[n]
		}
		// A random moment to kill at (this sleep picks the moment; it waits for nothing).
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		d.stop(syscall.SIGKILL)
		if round%10 == 9 {
			t.Logf("round %d", round+1)
		}
		d.start()
	}
	// Converge: exactly the present pods run, each with one sandbox and one container.
	d.eventually(120*time.Second, "converged", func() (bool, string) {
		for _, n := range names {
			p := d.pod(n)
			if present[n] != (p != nil && p.Status.Phase == "Running" && p.DeletionTimestamp == nil) {
				return false, fmt.Sprintf("%s: want present=%v, got %v", n, present[n], p != nil)
			}
		}
		out, _ := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "containers", "ls", "-q").Output()
		ids := strings.Fields(string(out))
		want := 0
		for _, n := range names {
			if present[n] {
				want += 2 // pause + one container
			}
		}
		return len(ids) == want, fmt.Sprintf("%d containers, want %d: %v", len(ids), want, ids)
	})
	for _, n := range names {
		if present[n] {
			d.removeManifest(n + ".yaml")
		}
	}
	for _, n := range names {
		d.waitGone(n, 60*time.Second)
	}
	d.eventually(30*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(testPrefix)
		return len(left) == 0, strings.Join(left, "\n")
	})
}

// A host reboot, simulated: every task, shim and network namespace gone, containerd's metadata
// kept. minipod recreates every pod and releases the IP reservations from before.
func TestHostReboot(t *testing.T) {
	d := newDaemon(t)
	d.start()
	for i := range 3 {
		d.writeManifest(fmt.Sprintf("r%d.yaml", i), onePod(fmt.Sprintf("r%d", i), "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	}
	var oldIPs []string
	for i := range 3 {
		oldIPs = append(oldIPs, d.waitRunning(fmt.Sprintf("r%d", i), 60*time.Second).Status.PodIP)
	}
	d.stop(syscall.SIGKILL)

	// The processes of this namespace's tasks (the shims' children), as the kernel ends them.
	out, err := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "tasks", "ls").Output()
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, line := range strings.Split(string(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			if pid, err := strconv.Atoi(f[1]); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
	}
	restartContainerd(t, func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		// The shims of this namespace go with their processes' deaths; /run is wiped at boot:
		// the pinned network namespaces go too.
		unmountUnder(d.netns)
		entries, _ := os.ReadDir(d.netns)
		for _, e := range entries {
			os.Remove(filepath.Join(d.netns, e.Name()))
		}
	})
	d.start()
	for i := range 3 {
		d.waitRunning(fmt.Sprintf("r%d", i), 60*time.Second)
	}
	// Exactly one IP reservation per pod: the ones from before the "reboot" were released.
	files, _ := filepath.Glob(filepath.Join(d.state, "cni", "networks", "minipod", "10.*"))
	if len(files) != 3 {
		t.Errorf("IPAM reservations after the reboot: %v, want 3", files)
	}
	for i := range 3 {
		d.removeManifest(fmt.Sprintf("r%d.yaml", i))
	}
	for i := range 3 {
		d.waitGone(fmt.Sprintf("r%d", i), 60*time.Second)
	}
	d.eventually(30*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(append(oldIPs, testPrefix)...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}
