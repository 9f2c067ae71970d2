package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssKiB reads a process's resident set size.
func rssKiB(pid int) int {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// 500 create/delete cycles of a 2-container pod (10 at a time) leave nothing behind, and the
// daemon's memory stays flat. MINIPOD_CHURN sets another number of cycles.
func TestChurn(t *testing.T) {
	cycles := 500
	if v, err := strconv.Atoi(os.Getenv("MINIPOD_CHURN")); err == nil && v > 0 {
		cycles = v
	}
	const parallel = 10
	d := newDaemon(t)
	d.start()
	pod := func(name string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - {name: a, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}
  - {name: b, image: minipod.local/busybox:1.35, command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]}
`, name)
	}
	var mu sync.Mutex
	var ips []string
	round := func() {
		for i := range parallel {
			d.writeManifest(fmt.Sprintf("c%d.yaml", i), pod(fmt.Sprintf("c%d", i)))
		}
		for i := range parallel {
			p := d.waitRunning(fmt.Sprintf("c%d", i), 120*time.Second)
			mu.Lock()
			ips = append(ips, p.Status.PodIP)
			mu.Unlock()
		}
		for i := range parallel {
			d.removeManifest(fmt.Sprintf("c%d.yaml", i))
		}
		for i := range parallel {
			d.waitGone(fmt.Sprintf("c%d", i), 60*time.Second)
		}
	}
	rounds := max(cycles/parallel, 2)
	warm := max(rounds/10, 1)
	for range warm {
		round()
	}
	pid := d.cmd.Process.Pid
	before := rssKiB(pid)
	start := time.Now()
	for range rounds - warm {
		round()
	}
	after := rssKiB(pid)
	t.Logf("%d cycles (after %d warm-up) in %s; daemon RSS %d KiB -> %d KiB", (rounds-warm)*parallel, warm*parallel, time.Since(start).Round(time.Second), before, after)
	d.eventually(30*time.Second, "nothing left after churn", func() (bool, string) {
		left := d.leftovers(ips...)
		return len(left) == 0, strings.Join(left, "\n")
	})
	if after > before*2+10*1024 {
		t.Errorf("daemon RSS grew from %d KiB to %d KiB over the churn", before, after)
	}
}
