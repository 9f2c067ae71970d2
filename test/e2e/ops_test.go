package e2e

import (
	"bufio"
	"context"
	"debug/elf"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The daemon speaks the systemd notify protocol: READY=1 once the API serves and running
// pods are adopted, WATCHDOG=1 at half the watchdog interval, STATUS= lines, STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	d := newDaemon(t)
	sock := filepath.Join(env.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	d.env = []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}
	d.writeManifest("web.yaml", webPod)
	d.start()

	next := func(want string, timeout time.Duration) (string, time.Time) {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed waiting for %s", want)
				}
				if strings.Contains(m, want) {
					return m, time.Now()
				}
			case <-deadline:
				t.Fatalf("no %s within %s", want, timeout)
			}
		}
	}
	ready, _ := next("READY=1", 30*time.Second)
	if !strings.Contains(ready, "STATUS=") {
		t.Errorf("READY without STATUS: %q", ready)
	}
	// The API answers by the time READY=1 is sent.
	if _, _, code := d.ctl("status"); code != 0 {
		t.Errorf("status failed after READY=1")
	}
	// Watchdog pings at half of 400 ms: five of them well within 3 s.
	var first, last time.Time
	for i := range 5 {
		_, at := next("WATCHDOG=1", 3*time.Second)
		if i == 0 {
			first = at
		}
		last = at
	}
	t.Logf("5 watchdog pings in %s", last.Sub(first))
	d.waitRunning("web", 60*time.Second)
	d.stop(syscall.SIGTERM)
	next("STOPPING=1", 10*time.Second)
}

// The unit file passes systemd-analyze verify (with ExecStart pointing at the binary built
// for the tests, since the unit names the installed path).
func TestUnitFileVerifies(t *testing.T) {
	unit, err := os.ReadFile("../../systemd/minipod.service")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(unit), "ExecStart=/usr/local/bin/minipod", "ExecStart="+filepath.Join(env.bin, "minipod"), 1)
	path := filepath.Join(t.TempDir(), "minipod.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, want := range []string{"Type=notify", "KillMode=process", "WatchdogSec=", "Restart=always", "After=network-online.target containerd.service"} {
		if !strings.Contains(text, want) {
			t.Errorf("unit lacks %s", want)
		}
	}
}

// The API socket answers root only; an unprivileged user is refused. With --socket-group the
// group gets in too.
func TestSocketPermissions(t *testing.T) {
	asNobody := func(d *daemon) (string, int) {
		cmd := exec.Command(filepath.Join(env.bin, "minipodctl"), "status")
		cmd.Env = []string{"MINIPOD_SOCKET=" + d.socket}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	d := newDaemon(t)
	d.start()
	st, err := os.Stat(d.socket)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", st.Mode(), err)
	}
	// The binary and the socket's directory must be reachable by nobody for the test to mean
	// anything: only the socket's own mode may refuse.
	os.Chmod(env.dir, 0o755)
	os.Chmod(env.bin, 0o755)
	out, code := asNobody(d)
	if code == 0 || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody got in: code %d: %s", code, out)
	}
	d.stop(syscall.SIGTERM)

	g := newDaemon(t, "--socket-group", "65534")
	g.start()
	if st, err := os.Stat(g.socket); err != nil || st.Mode().Perm() != 0o660 {
		t.Fatalf("group socket mode %v (%v), want 0660", st.Mode(), err)
	}
	if out, code := asNobody(g); code != 0 {
		t.Errorf("group member refused: code %d: %s", code, out)
	}
}

// describe shows a pod with its events; the metrics endpoint on the socket serves the pod
// start latency histogram once a pod started.
func TestEventsDescribeMetrics(t *testing.T) {
	d := newDaemon(t, "--backoff-initial", "1s", "--backoff-max", "2s")
	d.start()
	d.writeManifest("web.yaml", webPod)
	d.writeManifest("crash.yaml", onePod("crash", "Always", "", "exit 1"))
	d.waitRunning("web", 60*time.Second)
	out, errs, code := d.ctl("describe", "web")
	if code != 0 {
		t.Fatalf("describe: %d %s", code, errs)
	}
	for _, want := range []string{"Name:", "web", "Containers:", "server:", "sidecar:", "Conditions:", "Events:", "Started", "Created container server"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	d.eventually(30*time.Second, "BackOff event", func() (bool, string) {
		out, _, _ := d.ctl("events", "crash")
		return strings.Contains(out, "BackOff") && strings.Contains(out, "Warning"), out
	})
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	resp, err := c.Get("http://minipod/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"minipod_pod_start_duration_seconds_count", "minipod_running_pods", "minipod_container_restarts_total", "minipod_cni_operations_duration_seconds"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !regexp.MustCompile(`minipod_pod_start_duration_seconds_count [1-9]`).Match(body) {
		t.Errorf("pod start histogram counted no start:\n%s", body)
	}
}

// A config file sets every flag's key (flags win); a bad one is refused with the key named.
func TestConfigFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "config.yaml")
	os.WriteFile(good, []byte("log-level: debug\nbackoff-initial: 3s\nbackoff-max: 7s\nresync: 5s\n"), 0o644)
	out, err := exec.Command(filepath.Join(env.bin, "minipod"), "--config", good, "--resync", "9s", "--print-config").CombinedOutput()
	if err != nil {
		t.Fatalf("print-config: %v %s", err, out)
	}
	for _, want := range []string{"log-level: debug", "backoff-initial: 3s", "backoff-max: 7s", "resync: 9s"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("log-level: debug\nmanifest-dri: /tmp\n"), 0o644)
	out, err = exec.Command(filepath.Join(env.bin, "minipod"), "--config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "manifest-dri") || !strings.Contains(string(out), ":2") {
		t.Errorf("bad config: err %v, output %s", err, out)
	}
	// The daemon runs with the file's settings.
	d := newDaemon(t, "--config", good)
	d.start()
	d.writeManifest("crash.yaml", onePod("crash", "Always", "", "exit 1"))
	d.eventually(30*time.Second, "backoff from the config file", func() (bool, string) {
		p := d.pod("crash")
		if p == nil || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return false, "not waiting"
		}
		m := p.Status.ContainerStatuses[0].State.Waiting.Message
		return strings.Contains(m, "back-off 3s"), m
	})
}

// With --containerd=managed the daemon runs its own containerd (as the README's demo does on
// a machine without one), restarts it when it dies, and pods carry on.
func TestManagedContainerd(t *testing.T) {
	d := newDaemon(t, "--containerd", "managed")
	// Images come in through the import directory: the managed containerd starts empty.
	writeArchive(t, filepath.Join(d.state, "images"), "busybox.tar", "minipod.local/busybox:1.35", "")
	managedPID := func() int {
		re := regexp.MustCompile(`started managed containerd" pid=(\d+)`)
		m := re.FindAllStringSubmatch(d.logTail(), -1)
		if len(m) == 0 {
			return 0
		}
		pid, _ := strconv.Atoi(m[len(m)-1][1])
		return pid
	}
	t.Cleanup(func() {
		// The daemon stops its containerd when it stops; make sure, by PID, and unmount what
		// it left under the test's directories.
		d.stop(syscall.SIGTERM)
		if pid := managedPID(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		unmountUnder(filepath.Join(d.state, "containerd"))
		unmountUnder(filepath.Join(env.dir, "containerd"))
		os.RemoveAll(filepath.Join(env.dir, "containerd"))
	})
	d.start()
	first := managedPID()
	if first == 0 {
		b, _ := os.ReadFile(d.logPath)
		t.Fatalf("no managed containerd started (%s):\n%s", d.logPath, b)
	}
	d.writeManifest("a.yaml", onePod("a", "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	d.waitRunning("a", 60*time.Second)
	before := containerIDs(d.pod("a"))

	// Kill it: the daemon starts it again, the pod keeps running, new pods start.
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d.eventually(30*time.Second, "managed containerd restarted", func() (bool, string) {
		pid := managedPID()
		return pid != 0 && pid != first, fmt.Sprint(pid)
	})
	d.writeManifest("b.yaml", onePod("b", "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	d.waitRunning("b", 60*time.Second)
	if got := containerIDs(d.pod("a")); fmt.Sprint(got) != fmt.Sprint(before) {
		t.Errorf("pod a restarted across the containerd restart: %v -> %v", before, got)
	}
	d.removeManifest("a.yaml")
	d.removeManifest("b.yaml")
	d.waitGone("a", 30*time.Second)
	d.waitGone("b", 30*time.Second)
}

// minipodctl status -w prints a row when a pod's state changes.
func TestStatusWatch(t *testing.T) {
	d := newDaemon(t)
	d.start()
	cmd := exec.Command(filepath.Join(env.bin, "minipodctl"), "status", "-w")
	cmd.Env = append(os.Environ(), "MINIPOD_SOCKET="+d.socket)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	d.writeManifest("w.yaml", onePod("w", "Always", "", "trap 'exit 0' TERM; while true; do sleep 1; done"))
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("status -w ended")
			}
			if strings.HasPrefix(l, "w ") && strings.Contains(l, "Running") && strings.Contains(l, "1/1") {
				return
			}
		case <-deadline:
			t.Fatal("status -w never showed w Running")
		}
	}
}

// make install puts the binaries, the pause program, the unit and /etc/minipod under DESTDIR;
// the installed daemon finds its pause program; make uninstall removes them again.
func TestMakeInstall(t *testing.T) {
	dest := t.TempDir()
	run := func(target string) {
		cmd := exec.Command("make", "-C", "../..", target, "DESTDIR="+dest, "PREFIX=/usr", "BIN="+filepath.Join(dest, "build"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make %s: %v\n%s", target, err, out)
		}
	}
	run("install")
	files := []string{"usr/bin/minipod", "usr/bin/minipodctl", "usr/lib/minipod/minipod-pause", "etc/systemd/system/minipod.service", "usr/share/minipod/examples/web.yaml"}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	for _, d := range []string{"etc/minipod/manifests", "etc/minipod/secrets"} {
		if st, err := os.Stat(filepath.Join(dest, d)); err != nil || !st.IsDir() {
			t.Errorf("no directory %s", d)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "etc/systemd/system/minipod.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/bin/minipod") {
		t.Errorf("unit does not start the installed binary:\n%s", unit)
	}
	if out, err := exec.Command(filepath.Join(dest, "usr/bin/minipod"), "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "minipod ") {
		t.Errorf("installed minipod --version: %v %s", err, out)
	}
	run("uninstall")
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dest, f)); err == nil {
			t.Errorf("left after uninstall: %s", f)
		}
	}
}

// The .deb installs (binaries, pause program, unit, /etc/minipod) and purges cleanly.
func TestDebPackage(t *testing.T) {
	if out, err := exec.Command("dpkg-query", "-W", "minipod").CombinedOutput(); err == nil {
		t.Fatalf("a minipod package is already installed on this machine; not touching it: %s", out)
	}
	bin := t.TempDir()
	cmd := exec.Command("make", "-C", "../..", "deb", "BIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	// The arm packages cannot be installed here; check that each says its architecture and
	// carries binaries built for it.
	for debArch, machine := range map[string]elf.Machine{"arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM, "amd64": elf.EM_X86_64} {
		pkg := filepath.Join(bin, "minipod_"+debArch+".deb")
		out, err := exec.Command("dpkg-deb", "--field", pkg, "Architecture").Output()
		if err != nil || strings.TrimSpace(string(out)) != debArch {
			t.Errorf("%s: Architecture %q (%v)", pkg, out, err)
			continue
		}
		root := t.TempDir()
		if out, err := exec.Command("dpkg-deb", "-x", pkg, root).CombinedOutput(); err != nil {
			t.Fatalf("dpkg-deb -x %s: %v %s", pkg, err, out)
		}
		for _, f := range []string{"usr/bin/minipod", "usr/bin/minipodctl", "usr/lib/minipod/minipod-pause"} {
			ef, err := elf.Open(filepath.Join(root, f))
			if err != nil {
				t.Errorf("%s: %s: %v", debArch, f, err)
				continue
			}
			if ef.Machine != machine {
				t.Errorf("%s: %s is built for %v", debArch, f, ef.Machine)
			}
			ef.Close()
		}
	}
	deb := filepath.Join(bin, "minipod_amd64.deb")
	t.Cleanup(func() { _ = exec.Command("dpkg", "--purge", "minipod").Run() })
	if out, err := exec.Command("dpkg", "-i", deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg -i: %v\n%s", err, out)
	}
	files := []string{"/usr/bin/minipod", "/usr/bin/minipodctl", "/usr/lib/minipod/minipod-pause", "/lib/systemd/system/minipod.service", "/etc/minipod/manifests"}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("not installed: %s", f)
		}
	}
	// Enabled the way Debian's own packages are, which needs no running systemd: the
	// WantedBy symlink exists and points at the packaged unit.
	const wants = "/etc/systemd/system/multi-user.target.wants/minipod.service"
	if dst, err := os.Readlink(wants); err != nil || dst != "/lib/systemd/system/minipod.service" {
		t.Errorf("not enabled after install: %s -> %q (%v)", wants, dst, err)
	}
	// remove (not purge) masks the unit so nothing starts a binary that is gone; the
	// configuration stays.
	if out, err := exec.Command("dpkg", "--remove", "minipod").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --remove: %v\n%s", err, out)
	}
	const unit = "/etc/systemd/system/minipod.service"
	if dst, err := os.Readlink(unit); err != nil || dst != "/dev/null" {
		t.Errorf("not masked after remove: %s -> %q (%v)", unit, dst, err)
	}
	if _, err := os.Stat("/usr/bin/minipod"); err == nil {
		t.Errorf("/usr/bin/minipod left after remove")
	}
	if out, err := exec.Command("dpkg", "--purge", "minipod").CombinedOutput(); err != nil {
		t.Fatalf("dpkg --purge: %v\n%s", err, out)
	}
	for _, f := range append(files, "/etc/minipod", wants, unit,
		"/var/lib/systemd/deb-systemd-helper-enabled/minipod.service.dsh-also",
		"/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/minipod.service",
		"/var/lib/systemd/deb-systemd-helper-masked/minipod.service") {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("left after purge: %s", f)
		}
	}
}
