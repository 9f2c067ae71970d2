package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const soloPod = `apiVersion: v1
kind: Pod
metadata: {name: solo}
spec:
  terminationGracePeriodSeconds: 5
  containers:
  - name: main
    image: minipod.local/busybox:1.35
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
`

// shimProc is a containerd shim of one daemon's namespace, with the commands of its children.
type shimProc struct {
	pid      int
	children []string
}

// podShims lists the runc shims serving namespace on this run's containerd, found by their
// command lines (-namespace NS -address ADDR), with the comm of each child process.
func podShims(t *testing.T, namespace string) []shimProc {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent := map[int]int{}
	comm := map[int]string{}
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		f := strings.Fields(s[close+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		parent[pid], comm[pid] = ppid, s[open+1:close]
	}
	var out []shimProc
	for pid := range parent {
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmd, []byte("containerd-shim")) ||
			!bytes.Contains(cmd, []byte("\x00-namespace\x00"+namespace+"\x00")) ||
			!bytes.Contains(cmd, []byte("\x00-address\x00"+env.address+"\x00")) {
			continue
		}
		sp := shimProc{pid: pid}
		for c, pp := range parent {
			if pp == pid {
				sp.children = append(sp.children, comm[c])
			}
		}
		out = append(out, sp)
	}
	return out
}

// One containerd shim serves all of a pod's containers (the pause container included), as
// under the CRI. When that shim dies, every container of the pod dies with it: the pod comes
// back on a new shim of its own, and the other pod is not touched.
func TestShimPerPod(t *testing.T) {
	d := newDaemon(t)
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.writeManifest("solo.yaml", soloPod)
	d.waitRunning("web", 60*time.Second)
	solo := d.waitRunning("solo", 60*time.Second)

	// Two pods, three app containers and two pause containers: two shims, and the web
	// pod's shim is the parent of its pause, httpd and sidecar processes.
	var web shimProc
	d.eventually(10*time.Second, "one shim per pod", func() (bool, string) {
		list := podShims(t, d.namespace)
		if len(list) != 2 {
			return false, fmt.Sprintf("%d shims: %+v", len(list), list)
		}
		for _, s := range list {
			if strings.Contains(strings.Join(s.children, " "), "httpd") {
				web = s
				return len(s.children) == 3, fmt.Sprintf("web's shim has children %v, want pause, httpd and sh", s.children)
			}
		}
		return false, fmt.Sprintf("no shim is httpd's parent: %+v", list)
	})

	// The web pod's shim dies: its containers go with it. The daemon makes a new sandbox
	// (on a new shim: the group key is new for every sandbox) and starts the containers again.
	if err := syscall.Kill(web.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.eventually(90*time.Second, "web back on a new shim", func() (bool, string) {
		p := d.pod("web")
		if p == nil {
			return false, "not listed"
		}
		restarted := 0
		for _, c := range p.Status.ContainerStatuses {
			if c.Ready && c.RestartCount > 0 {
				restarted++
			}
		}
		if restarted != 2 {
			return false, fmt.Sprintf("phase %s reason %q message %q statuses %+v", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Status.ContainerStatuses)
		}
		list := podShims(t, d.namespace)
		if len(list) != 2 {
			return false, fmt.Sprintf("%d shims: %+v", len(list), list)
		}
		for _, s := range list {
			if s.pid == web.pid {
				return false, "the killed shim is still listed"
			}
		}
		return true, ""
	})
	// The other pod was not touched.
	if p := d.pod("solo"); p == nil || p.Status.ContainerStatuses[0].RestartCount != 0 ||
		p.Status.ContainerStatuses[0].ContainerID != solo.Status.ContainerStatuses[0].ContainerID {
		t.Fatalf("solo changed: %+v", p)
	}

	// Removing the pods ends their shims: none is left for this namespace.
	d.removeManifest("web.yaml")
	d.removeManifest("solo.yaml")
	d.waitGone("web", 60*time.Second)
	d.waitGone("solo", 60*time.Second)
	d.eventually(20*time.Second, "no shim left", func() (bool, string) {
		list := podShims(t, d.namespace)
		return len(list) == 0, fmt.Sprintf("%d shims: %+v", len(list), list)
	})
}
