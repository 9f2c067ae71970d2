package e2e

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/pod"
)

// The daemon starts at most 8 pods per CPU at once (pkg/pod/starts.go); the others wait their
// turn, listed as Pending. A pod whose file goes while it waits is never made, and the pods
// beside it start as usual. Three times as many pods as slots are dropped at once; once every
// one of them is listed (so each has a worker, starting or waiting), the files of those that
// have no sandbox yet are removed. Some of them are still waiting then, and must never get one.
func TestBurstRemovedWhileWaiting(t *testing.T) {
	slots := pod.StartSlots(goruntime.NumCPU())
	n := 3 * slots
	d := newDaemon(t)
	d.start()
	for i := range n {
		name := fmt.Sprintf("w%02d", i)
		d.writeManifest(name+".yaml", benchPod(name, 1, false)) // exits at once on SIGTERM
	}
	var kept, removed []string
	d.eventually(time.Minute, fmt.Sprintf("all %d pods listed", n), func() (bool, string) {
		kept, removed = nil, nil
		for _, p := range d.pods() {
			if p.Status.PodIP == "" {
				removed = append(removed, p.Name)
			} else {
				kept = append(kept, p.Name)
			}
		}
		return len(kept)+len(removed) == n, fmt.Sprintf("%d listed", len(kept)+len(removed))
	})
	if len(removed) == 0 {
		t.Fatalf("all %d pods had a sandbox by the time they were listed: the test would prove nothing", n)
	}
	for _, name := range removed {
		d.removeManifest(name + ".yaml")
	}
	var ips []string
	for _, name := range kept {
		ips = append(ips, d.waitRunning(name, 3*time.Minute).Status.PodIP)
	}
	for _, name := range removed {
		d.waitGone(name, time.Minute)
	}
	log, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	made := map[string]bool{}
	for _, line := range strings.Split(string(log), "\n") {
		if strings.Contains(line, `msg="sandbox ready"`) {
			if _, rest, ok := strings.Cut(line, " pod=default/"); ok {
				made[strings.Fields(rest)[0]] = true
			}
		}
	}
	for _, name := range kept {
		if !made[name] {
			t.Fatalf("%s runs but the log has no \"sandbox ready\" for it: the check below would prove nothing", name)
		}
	}
	var never []string
	for _, name := range removed {
		if !made[name] {
			never = append(never, name)
		}
	}
	// Of the pods without a sandbox when their files went, up to one per slot was making it;
	// the others were waiting for a slot.
	if len(never) == 0 {
		t.Errorf("all %d pods removed before they had a sandbox got one: none was taken off while waiting for a start slot", len(removed))
	}
	t.Logf("%d pods kept; %d removed, of which %d were never made", len(kept), len(removed), len(never))
	for _, name := range kept {
		d.removeManifest(name + ".yaml")
	}
	for _, name := range kept {
		d.waitGone(name, time.Minute)
	}
	d.eventually(30*time.Second, "nothing left", func() (bool, string) {
		left := d.leftovers(ips...)
		return len(left) == 0, strings.Join(left, "\n")
	})
}
