package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// watchOnlyFrom polls the daemon's pod list until the returned function is called, which
// returns every list seen that held anything but at most one item from the file path, or a pod
// of that file with other than two containers (a pod read from an editor's swap, backup or
// test file, or from a half-written file, would be such an item). Problems reported for the
// file itself while it was being written are logged.
func (d *daemon) watchOnlyFrom(path string) func() []string {
	d.t.Helper()
	var (
		mu             sync.Mutex
		bad, transient []string
		polls          int
	)
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			default:
			}
			cmd := exec.Command(d.binPath("minipodctl"), "status", "-o", "json")
			cmd.Env = append(os.Environ(), "MINIPOD_SOCKET="+d.socket)
			out, err := cmd.Output()
			var list corev1.PodList
			if err == nil && json.Unmarshal(out, &list) == nil {
				var items []string
				odd, problem := len(list.Items) > 1, false
				for _, p := range list.Items {
					items = append(items, fmt.Sprintf("%s from %s (%d containers, reason %q)", p.Name,
						p.Annotations["minipod.io/manifest"], len(p.Spec.Containers), p.Status.Reason))
					odd = odd || p.Annotations["minipod.io/manifest"] != path
					if p.Status.Reason != "" && len(p.Spec.Containers) == 0 {
						problem = true
					} else if len(p.Spec.Containers) != 2 {
						odd = true
					}
				}
				mu.Lock()
				polls++
				switch {
				case odd && len(bad) < 20:
					bad = append(bad, strings.Join(items, ", "))
				case problem && len(transient) < 20:
					transient = append(transient, strings.Join(items, ", "))
				}
				mu.Unlock()
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var once sync.Once
	stop := func() []string {
		once.Do(func() { close(done) })
		<-stopped
		mu.Lock()
		defer mu.Unlock()
		if len(transient) > 0 {
			d.t.Logf("while %s was being written, the status showed problems:\n%s", path, strings.Join(transient, "\n"))
			transient = nil
		}
		if polls == 0 {
			return []string{"the status was never read"}
		}
		return bad
	}
	d.t.Cleanup(func() { stop() })
	return stop
}

// expectOneWeb waits until the one pod from web.yaml runs the version labeled app, with its
// sandbox and two containers the only containers in containerd.
func (d *daemon) expectOneWeb(app string) {
	d.t.Helper()
	d.eventually(60*time.Second, "one pod of the version "+app, func() (bool, string) {
		pods := d.pods()
		if len(pods) != 1 {
			return false, fmt.Sprintf("%d items", len(pods))
		}
		p := pods[0]
		if p.Name != "web" || p.Labels["app"] != app || p.Status.Phase != corev1.PodRunning {
			return false, fmt.Sprintf("%s app=%s %s %s", p.Name, p.Labels["app"], p.Status.Phase, p.Status.Message)
		}
		for _, c := range p.Status.ContainerStatuses {
			if !c.Ready {
				return false, c.Name + " not ready"
			}
		}
		out, _ := exec.Command("ctr", "-a", env.address, "-n", d.namespace, "containers", "ls", "-q").Output()
		if ids := strings.Fields(string(out)); len(ids) != 3 {
			return false, fmt.Sprintf("containers %v, want the sandbox and two", ids)
		}
		return true, ""
	})
}

// terminal runs programs in a real pseudo-terminal (a tmux server of the test's own), so that
// editors behave as they do for a person.
type terminal struct {
	t    *testing.T
	sock string
	home string
}

func newTerminal(t *testing.T) *terminal {
	t.Helper()
	for _, tool := range []string{"tmux", "vim.tiny", "nano"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found on PATH: run make deps (test/deps.sh installs tmux, vim-tiny and nano)", tool)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "mpe2e-tty-") // short: tmux's socket path
	if err != nil {
		t.Fatal(err)
	}
	tm := &terminal{t: t, sock: filepath.Join(dir, "tmux.sock"), home: filepath.Join(dir, "home")}
	os.MkdirAll(tm.home, 0o700)
	t.Cleanup(func() {
		_ = exec.Command("tmux", "-S", tm.sock, "kill-server").Run()
		os.RemoveAll(dir)
	})
	return tm
}

func (tm *terminal) tmux(args ...string) (string, error) {
	cmd := exec.Command("tmux", append([]string{"-S", tm.sock}, args...)...)
	// A home of its own: no one's vimrc, nanorc or history; the editors' system defaults.
	cmd.Env = append(os.Environ(), "HOME="+tm.home, "TERM=xterm")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// open starts argv in dir in a new 80x24 session.
func (tm *terminal) open(session, dir string, argv ...string) {
	tm.t.Helper()
	if out, err := tm.tmux(append([]string{"new-session", "-d", "-s", session, "-x", "80", "-y", "24", "-c", dir}, argv...)...); err != nil {
		tm.t.Fatalf("tmux new-session %v: %v %s", argv, err, out)
	}
}

func (tm *terminal) keys(session string, keys ...string) {
	tm.t.Helper()
	if out, err := tm.tmux(append([]string{"send-keys", "-t", session}, keys...)...); err != nil {
		tm.t.Fatalf("tmux send-keys %q: %v %s", keys, err, out)
	}
}

// waitScreen waits until the session's screen shows text.
func (tm *terminal) waitScreen(session, text string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := tm.tmux("capture-pane", "-p", "-t", session)
		if err == nil && strings.Contains(out, text) {
			return
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("screen of %s never showed %q:\n%s", session, text, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits until the program of the session has exited (its session goes with it).
func (tm *terminal) waitExit(session string) {
	tm.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := tm.tmux("has-session", "-t", session); err != nil {
			return
		}
		if time.Now().After(deadline) {
			out, _ := tm.tmux("capture-pane", "-p", "-t", session)
			tm.t.Fatalf("%s did not exit:\n%s", session, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Editing a manifest in place with real editors, in a real terminal, gives exactly one pod of
// the new version each time, and nothing the editors leave beside the file (swap files and
// their probes) is ever read as a manifest. vim.tiny runs as Debian's vi does (its vimrc.tiny,
// swap file beside the file, the file rewritten in place); nano rewrites the file in place.
func TestEditorsByName(t *testing.T) {
	tm := newTerminal(t)
	d := newDaemon(t)
	d.start()
	path := d.writeManifest("web.yaml", webPod)
	d.expectOneWeb("web")
	stop := d.watchOnlyFrom(path)

	// vi: the swap file .web.yaml.swp exists while the file is open; :%s and :wq.
	tm.open("vi", d.manifests, "vim.tiny", "web.yaml")
	d.eventually(20*time.Second, "vim's swap file", func() (bool, string) {
		_, err := os.Stat(filepath.Join(d.manifests, ".web.yaml.swp"))
		return err == nil, fmt.Sprint(err)
	})
	tm.waitScreen("vi", `"web.yaml"`)
	tm.keys("vi", ":%s/app: web/app: vi/", "Enter")
	tm.keys("vi", ":wq", "Enter")
	tm.waitExit("vi")
	d.expectOneWeb("vi")

	// nano: replace (^\), write out (^O), exit (^X), each answered at its prompt.
	tm.open("nano", d.manifests, "nano", "web.yaml")
	tm.waitScreen("nano", "GNU nano")
	tm.keys("nano", `C-\`)
	tm.waitScreen("nano", "Search (to replace)")
	tm.keys("nano", "app: vi", "Enter")
	tm.waitScreen("nano", "Replace with")
	tm.keys("nano", "app: nano", "Enter")
	tm.waitScreen("nano", "Replace this instance")
	tm.keys("nano", "y")
	tm.waitScreen("nano", "Replaced 1 occurrence")
	tm.keys("nano", "C-o")
	tm.waitScreen("nano", "File Name to Write")
	tm.keys("nano", "Enter")
	tm.waitScreen("nano", "Wrote")
	tm.keys("nano", "C-x")
	tm.waitExit("nano")
	d.expectOneWeb("nano")

	if bad := stop(); len(bad) > 0 {
		t.Errorf("while editing, the status listed more than the one pod of web.yaml:\n%s", strings.Join(bad, "\n"))
	}
	// The editors left nothing beside the file.
	entries, _ := os.ReadDir(d.manifests)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 {
		t.Errorf("manifest dir after editing: %v", names)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "app: nano") {
		t.Errorf("web.yaml after editing:\n%s", b)
	}
}
