package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/imagebuild"
)

// The .deb under a real systemd (issue 24): a Debian 12 booted with systemd-nspawn, systemd as
// its PID 1, containerd, runc and the CNI plugins from Debian, and the freshly built
// minipod_<arch>.deb installed with dpkg. The scenario: the unit is active after the install; a
// manifest dropped in /etc/minipod/manifests runs and its pod IP answers inside the booted
// system; the journal has the daemon's log; the watchdog restarts a daemon frozen with SIGSTOP;
// `systemctl restart minipod` adopts the pod; and after `systemctl reboot` inside, the pod is
// back with exactly one IPAM reservation.
//
// The root file system is made once with mmdebstrap from the Debian mirror this machine's apt
// uses and kept in /var/cache/minipod-e2e/rootfs-<key> (MINIPOD_E2E_NSPAWN_CACHE names another
// directory), the key a hash of the suite, variant and package list; each run boots an overlay
// of it with an upper directory of its own, so runs stay clean and a warm run costs seconds.
// Downloading the packages the first time is the only network traffic outside the booted
// system: nspawn runs with --private-network, so the pods' bridge lives inside it.
//
// The booted system's unit gets one drop-in, WatchdogSec=5s instead of the packaged 30 s, so
// that the watchdog check is quick, and its systemd DefaultTimeoutStopSec=15s, so that a failed
// run powers off quickly; everything else is the package as it is.
//
// When the test cannot run here (no mmdebstrap or systemd-nspawn, no route to the Debian
// archive, a system that does not boot) it fails with the reason; with
// MINIPOD_E2E_ALLOW_SKIP_NSPAWN=1 it skips with the reason instead.

const (
	nspawnSuite = "bookworm"
	// nspawnWatchdog is the WatchdogSec the test's drop-in sets in the booted system.
	nspawnWatchdog = 5 * time.Second
)

// nspawnPackages are installed in the cached root file system: what the .deb depends on,
// systemd to boot, and busybox-static for nc inside.
var nspawnPackages = []string{"systemd", "systemd-sysv", "dbus", "iproute2", "containerd", "runc",
	"containernetworking-plugins", "iptables", "busybox-static"}

func TestDebUnderSystemd(t *testing.T) {
	for _, b := range []string{"mmdebstrap", "systemd-nspawn", "nsenter", "dpkg-deb", "mount", "umount"} {
		if _, err := exec.LookPath(b); err != nil {
			nspawnCannotRun(t, "%s not found on PATH (test/deps.sh installs mmdebstrap and systemd-container)", b)
		}
	}
	debArch := map[string]string{"amd64": "amd64", "arm64": "arm64", "arm": "armhf"}[goruntime.GOARCH]
	if debArch == "" {
		t.Fatalf("no .deb is built for %s", goruntime.GOARCH)
	}
	cache := os.Getenv("MINIPOD_E2E_NSPAWN_CACHE")
	if cache == "" {
		cache = "/var/cache/minipod-e2e"
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// One booted system at a time on a machine: the cgroups it makes are the host's.
	unlock := nspawnLock(t, filepath.Join(cache, ".lock"))
	defer unlock()

	start := time.Now()
	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	if out, err := exec.Command("make", "-C", "../..", "deb", "BIN="+bin, "ARCHS="+goruntime.GOARCH).CombinedOutput(); err != nil {
		t.Fatalf("make deb: %v\n%s", err, out)
	}
	deb := filepath.Join(bin, "minipod_"+debArch+".deb")
	t.Logf("built %s in %v", filepath.Base(deb), time.Since(start).Round(time.Second))

	lower := nspawnRootfs(t, cache)
	m := newNspawnMachine(t, lower, work)

	// Before the first boot, from the host: the package, the busybox image in minipod's import
	// directory (no registry is reachable inside), and the watchdog drop-in.
	copyFile(t, deb, filepath.Join(m.root, "root/minipod.deb"))
	img, err := imagebuild.Busybox(imagebuild.DefaultBusyboxName, "")
	if err != nil {
		t.Fatalf("busybox image: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(m.root, "var/lib/minipod/images"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := imagebuild.WriteOCIFile(filepath.Join(m.root, "var/lib/minipod/images/busybox.tar"), img); err != nil {
		t.Fatalf("write the busybox image: %v", err)
	}
	dropIn := filepath.Join(m.root, "etc/systemd/system/minipod.service.d/e2e-watchdog.conf")
	if err := os.MkdirAll(filepath.Dir(dropIn), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dropIn, fmt.Appendf(nil, "[Service]\nWatchdogSec=%s\n", nspawnWatchdog), 0o644); err != nil {
		t.Fatal(err)
	}
	// A process that outlives its unit holds a shutdown for DefaultTimeoutStopSec (90 s): a
	// failing run should not wait that long to power off.
	sysConf := filepath.Join(m.root, "etc/systemd/system.conf.d/e2e-timeout.conf")
	if err := os.MkdirAll(filepath.Dir(sysConf), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sysConf, []byte("[Manager]\nDefaultTimeoutStopSec=15s\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	m.boot()
	t.Logf("booted in %v", time.Since(start).Round(time.Second))

	// 1. dpkg -i: postinst enables and starts the unit under the booted system's systemd.
	m.mustRun(2*time.Minute, "dpkg", "-i", "/root/minipod.deb")
	m.waitActive(30 * time.Second)

	// 2. A manifest dropped in the manifest directory runs, and its pod IP answers inside.
	m.mustRunStdin(`apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: web
    image: `+imagebuild.DefaultBusyboxName+`
    imagePullPolicy: Never
    command: ["sh", "-c", "mkdir -p /www && echo hello-from-nspawn > /www/index.html && httpd -p 8080 -h /www; trap 'exit 0' TERM; while true; do sleep 1; done"]
`, 10*time.Second, "sh", "-c", "cat > /etc/minipod/manifests/.web.yaml.tmp && mv /etc/minipod/manifests/.web.yaml.tmp /etc/minipod/manifests/web.yaml")
	first := m.waitPodRunning("web", 60*time.Second)
	m.waitAnswers(first.Status.PodIP, 20*time.Second)
	t.Logf("pod running at %s, %v after the start", first.Status.PodIP, time.Since(start).Round(time.Second))

	// 3. The daemon's log is in the journal.
	if out := m.mustRun(20*time.Second, "journalctl", "-u", "minipod", "--no-pager", "-o", "cat"); !strings.Contains(out, "minipod ready") {
		t.Errorf("journalctl -u minipod has no \"minipod ready\":\n%s", out)
	}

	// 4. A daemon frozen with SIGSTOP stops feeding the watchdog: systemd restarts it, and the
	// new daemon adopts the pod.
	pid := m.show("MainPID")
	restarts := m.show("NRestarts")
	m.mustRun(10*time.Second, "busybox", "kill", "-STOP", pid)
	frozen := time.Now()
	m.eventually(nspawnWatchdog+60*time.Second, "systemd restarts the frozen daemon", func() (bool, string) {
		p, n, state := m.show("MainPID"), m.show("NRestarts"), m.show("ActiveState")
		return p != pid && p != "0" && n != restarts && state == "active",
			fmt.Sprintf("MainPID %s (frozen %s), NRestarts %s (was %s), ActiveState %s", p, pid, n, restarts, state)
	})
	t.Logf("watchdog restart %v after SIGSTOP", time.Since(frozen).Round(100*time.Millisecond))
	if out := m.mustRun(20*time.Second, "journalctl", "-u", "minipod", "--no-pager", "-o", "cat"); !strings.Contains(out, "Watchdog timeout") {
		t.Errorf("the journal does not say the watchdog fired:\n%s", out)
	}
	m.checkAdopted(first, "after the watchdog restart")

	// 5. systemctl restart adopts the pod without restarting it.
	pid = m.show("MainPID")
	m.mustRun(60*time.Second, "systemctl", "restart", "minipod")
	if p := m.show("MainPID"); p == pid || p == "0" {
		t.Errorf("MainPID %s after systemctl restart, was %s", p, pid)
	}
	m.checkAdopted(first, "after systemctl restart")

	// 6. A reboot of the booted system: nspawn ends with 133 ("reboot requested") and is
	// started again on the same file system; the pod comes back with one IPAM reservation.
	m.reboot()
	m.waitActive(60 * time.Second)
	again := m.waitPodRunning("web", 90*time.Second)
	m.waitAnswers(again.Status.PodIP, 20*time.Second)
	if !podStartedAt(again).After(podStartedAt(first)) {
		t.Errorf("after the reboot the container started at %v, before the reboot at %v", podStartedAt(again), podStartedAt(first))
	}
	m.eventually(20*time.Second, "exactly one IPAM reservation", func() (bool, string) {
		ips := m.ipamReservations()
		return len(ips) == 1 && ips[0] == again.Status.PodIP, fmt.Sprintf("reservations %v, pod IP %s", ips, again.Status.PodIP)
	})
	t.Logf("scenario done in %v", time.Since(start).Round(time.Second))
}

// nspawnCannotRun ends the test because this machine cannot run it: a failure, or a skip when
// MINIPOD_E2E_ALLOW_SKIP_NSPAWN=1 says that is acceptable.
func nspawnCannotRun(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := "cannot boot a Debian under systemd-nspawn here: " + fmt.Sprintf(format, args...)
	if os.Getenv("MINIPOD_E2E_ALLOW_SKIP_NSPAWN") == "1" {
		t.Skip(msg)
	}
	t.Fatal(msg + " (MINIPOD_E2E_ALLOW_SKIP_NSPAWN=1 turns this into a skip)")
}

// nspawnLock takes an exclusive lock on path, waiting for another run to finish.
func nspawnLock(t *testing.T, path string) func() {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", path, err)
	}
	return func() { f.Close() }
}

// nspawnRootfs returns the cached root file system for nspawnPackages, making it with
// mmdebstrap when the cache does not have it.
func nspawnRootfs(t *testing.T, cache string) string {
	t.Helper()
	pkgs := slices.Clone(nspawnPackages)
	slices.Sort(pkgs)
	spec := fmt.Sprintf("suite=%s variant=minbase include=%s", nspawnSuite, strings.Join(pkgs, ","))
	sum := sha256.Sum256([]byte(spec))
	dir := filepath.Join(cache, "rootfs-"+hex.EncodeToString(sum[:])[:16])
	if _, err := os.Stat(filepath.Join(dir, "usr/bin/containerd")); err == nil {
		t.Logf("root file system from the cache: %s", dir)
		return dir
	}
	mirror := aptMirror(nspawnSuite)
	tmp := dir + ".tmp"
	// A run killed while making it leaves a partial tree: start over.
	if err := os.RemoveAll(tmp); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	t.Logf("making the root file system with mmdebstrap from %s (once; cached in %s)", mirror, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mmdebstrap", "--variant=minbase", "--include="+strings.Join(pkgs, ","),
		nspawnSuite, tmp, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		nspawnCannotRun(t, "mmdebstrap %s from %s: %v\n%s", nspawnSuite, mirror, err, tail(string(out), 20))
	}
	if err := os.WriteFile(filepath.Join(tmp, "etc/minipod-e2e-rootfs"), []byte(spec+"\nmirror="+mirror+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("made the root file system in %v", time.Since(start).Round(time.Second))
	return dir
}

// aptMirror returns the URI of the first apt source of this machine (sources.list, *.list
// and deb822 *.sources) that serves suite, or Debian's own mirror when none does.
func aptMirror(suite string) string {
	files := []string{"/etc/apt/sources.list"}
	for _, pat := range []string{"/etc/apt/sources.list.d/*.list", "/etc/apt/sources.list.d/*.sources"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if uri := mirrorIn(string(b), strings.HasSuffix(f, ".sources"), suite); uri != "" {
			return uri
		}
	}
	return "http://deb.debian.org/debian"
}

// mirrorIn returns the first URI in an apt sources file (one-line or deb822 format) whose
// suites include suite, for binary packages.
func mirrorIn(text string, deb822 bool, suite string) string {
	if !deb822 {
		for _, line := range strings.Split(text, "\n") {
			f := strings.Fields(strings.TrimSpace(line))
			if len(f) < 3 || f[0] != "deb" {
				continue
			}
			f = f[1:]
			if strings.HasPrefix(f[0], "[") { // options: [arch=amd64 signed-by=...]
				for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
					f = f[1:]
				}
				if len(f) > 0 {
					f = f[1:]
				}
			}
			if len(f) >= 2 && f[1] == suite {
				return f[0]
			}
		}
		return ""
	}
	for _, stanza := range regexp.MustCompile(`\n\s*\n`).Split(text, -1) {
		fields := map[string]string{}
		for _, line := range strings.Split(stanza, "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, " ") {
				fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
		}
		if fields["enabled"] == "no" || !slices.Contains(strings.Fields(fields["types"]), "deb") {
			continue
		}
		if uris := strings.Fields(fields["uris"]); len(uris) > 0 && slices.Contains(strings.Fields(fields["suites"]), suite) {
			return uris[0]
		}
	}
	return ""
}

// nspawnMachine is one booted Debian: an overlay of the cached root file system with an upper
// directory of its own, and the systemd-nspawn process that runs it.
type nspawnMachine struct {
	t    *testing.T
	name string
	root string // the overlay's mount point: the booted system's /
	// containerdDir is bound to /var/lib/containerd inside (an overlay cannot hold overlay
	// upper directories).
	containerdDir string
	console       string // nspawn's output
	cmd           *exec.Cmd
	exited        chan struct{}
	leader        int // the booted system's PID 1, as the host sees it
	// cgroupsBefore: the host's cgroups below the names the booted system uses, before the
	// first boot; it makes its own there (--bind=/sys/fs/cgroup), and they are removed after.
	// nil when the host's own systemd places nspawn's cgroups (hostSystemd).
	cgroupsBefore map[string]bool
	hostLinks     []string
}

func newNspawnMachine(t *testing.T, lower, work string) *nspawnMachine {
	m := &nspawnMachine{t: t, name: fmt.Sprintf("mpe2e-%d", os.Getpid()), root: filepath.Join(work, "root"),
		console: filepath.Join(work, "console.log"), containerdDir: filepath.Join(work, "containerd")}
	for _, d := range []string{"upper", "work", "root", "containerd"} {
		if err := os.MkdirAll(filepath.Join(work, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, filepath.Join(work, "upper"), filepath.Join(work, "work"))
	if err := syscall.Mount("overlay", m.root, "overlay", 0, opts); err != nil {
		t.Fatalf("mount the overlay on %s: %v", m.root, err)
	}
	if !hostSystemd() {
		m.cgroupsBefore = hostCgroups()
	}
	m.hostLinks = hostLinks()
	t.Cleanup(m.cleanup)
	return m
}

// nspawnCgroupName matches the cgroups the booted systemd and minipod make at the top of the
// host's hierarchies: units (init.scope, system.slice, -.mount, ...) and minipod's pods.
var nspawnCgroupName = regexp.MustCompile(`^(.*\.(scope|slice|mount|service|socket|swap)|minipod)$`)

// hostCgroups lists the cgroup directories of the host's hierarchies, at any depth, below the
// top-level ones whose names nspawnCgroupName matches.
func hostCgroups() map[string]bool {
	got := map[string]bool{}
	hier, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, h := range hier {
		ents, _ := os.ReadDir(h)
		for _, e := range ents {
			if !e.IsDir() || !nspawnCgroupName.MatchString(e.Name()) {
				continue
			}
			_ = filepath.WalkDir(filepath.Join(h, e.Name()), func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					got[p] = true
				}
				return nil
			})
		}
	}
	return got
}

func hostLinks() []string {
	out, _ := exec.Command("ip", "-o", "link", "show").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	slices.Sort(names)
	return names
}

// hostSystemd reports whether systemd is the host's PID 1 (it is not on the machines CI uses).
func hostSystemd() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// nspawnArgs are systemd-nspawn's arguments for this machine. Why each flag: with no systemd
// as the host's PID 1 there is no machined to register with (--register=no --keep-unit), and
// nspawn would mount the host's cgroup v1 controllers read-only (--bind=/sys/fs/cgroup: the
// booted system's cgroups are then the host's, which cleanup removes); on a host that systemd
// runs, nspawn places the booted system's cgroups itself, and binding the host's tree would
// hand it the host's units' cgroups, so neither is used there (that path is not tried on CI).
// runc needs a session keyring, which nspawn's seccomp filter denies (@keyring), and
// containerd uses bpf; --private-network keeps the pods' bridge inside. containerd's overlayfs
// snapshots cannot have their upper directories on the root's overlay, so /var/lib/containerd
// is a directory of the host's, bound in.
func (m *nspawnMachine) nspawnArgs() []string {
	args := []string{"--quiet", "-D", m.root, "--machine=" + m.name, "--boot", "--register=no",
		"--capability=all", "--system-call-filter=@keyring bpf", "--private-network",
		"--console=read-only", "--bind=" + m.containerdDir + ":/var/lib/containerd"}
	if !hostSystemd() {
		args = append(args, "--keep-unit", "--bind=/sys/fs/cgroup")
	}
	return args
}

// boot starts systemd-nspawn and waits until the booted system's systemd has finished
// starting up.
func (m *nspawnMachine) boot() {
	t := m.t
	t.Helper()
	logf, err := os.OpenFile(m.console, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	m.cmd = exec.Command("systemd-nspawn", m.nspawnArgs()...)
	// A test binary killed (a go test timeout) runs no cleanup: nspawn then powers off
	// (SIGTERM) rather than leave a booted system behind.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		nspawnCannotRun(t, "start systemd-nspawn: %v", err)
	}
	m.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(m.cmd, m.exited)
	m.leader = 0
	deadline := time.Now().Add(60 * time.Second)
	for m.leader == 0 {
		select {
		case <-m.exited:
			nspawnCannotRun(t, "systemd-nspawn exited (%v) while booting:\n%s", m.cmd.ProcessState, m.consoleTail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			nspawnCannotRun(t, "no systemd started under systemd-nspawn in 60 s:\n%s", m.consoleTail())
		}
		m.leader = nspawnLeader(m.cmd.Process.Pid)
	}
	// is-system-running --wait answers "offline" at once while systemd's bus is not up yet.
	var state string
	for deadline := time.Now().Add(90 * time.Second); ; {
		out, err := m.run(90*time.Second, "", "systemctl", "is-system-running", "--wait")
		state = strings.TrimSpace(out)
		if state == "running" || state == "degraded" {
			break
		}
		if time.Now().After(deadline) {
			nspawnCannotRun(t, "the booted system did not finish starting: is-system-running %q (%v)\n%s", state, err, m.consoleTail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if state == "degraded" {
		failed, _ := m.run(10*time.Second, "", "systemctl", "--failed", "--no-legend")
		t.Logf("the booted system is degraded (failed units do not stop the test):\n%s", failed)
	}
}

// nspawnLeader returns the PID of the systemd that nspawn (pid) started, or 0 while there is none.
func nspawnLeader(pid int) int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			comm, _ := os.ReadFile("/proc/" + c + "/comm")
			if strings.TrimSpace(string(comm)) == "systemd" {
				n, _ := strconv.Atoi(c)
				return n
			}
		}
	}
	return 0
}

func (m *nspawnMachine) consoleTail() string {
	b, _ := os.ReadFile(m.console)
	return tail(string(b), 30)
}

// run runs a command inside the booted system (all its namespaces, entered with nsenter:
// nspawn runs with --register=no, so there is no machinectl), with stdin, and returns its
// combined output.
func (m *nspawnMachine) run(timeout time.Duration, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(m.leader), "-a", "--"}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C", "SYSTEMD_PAGER=", "HOME=/root"}
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (timed out after %v)", err, timeout)
	}
	return string(out), err
}

func (m *nspawnMachine) mustRun(timeout time.Duration, args ...string) string {
	m.t.Helper()
	return m.mustRunStdin("", timeout, args...)
}

func (m *nspawnMachine) mustRunStdin(stdin string, timeout time.Duration, args ...string) string {
	m.t.Helper()
	out, err := m.run(timeout, stdin, args...)
	if err != nil {
		m.t.Fatalf("inside: %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// show returns one property of minipod.service.
func (m *nspawnMachine) show(prop string) string {
	m.t.Helper()
	return strings.TrimSpace(m.mustRun(20*time.Second, "systemctl", "show", "-p", prop, "--value", "minipod"))
}

func (m *nspawnMachine) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	m.t.Helper()
	pollUntil(m.t, timeout, 250*time.Millisecond, what, cond)
}

func (m *nspawnMachine) waitActive(timeout time.Duration) {
	m.t.Helper()
	m.eventually(timeout, "systemctl is-active minipod", func() (bool, string) {
		out, _ := m.run(20*time.Second, "", "systemctl", "is-active", "minipod")
		return strings.TrimSpace(out) == "active", strings.TrimSpace(out)
	})
}

// pod returns the pod from `minipodctl status NAME -o json` inside, or nil.
func (m *nspawnMachine) pod(name string) (*corev1.Pod, string) {
	out, err := m.run(20*time.Second, "", "minipodctl", "status", name, "-o", "json")
	if err != nil {
		return nil, fmt.Sprintf("minipodctl status: %v %s", err, out)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Sprintf("decode %q: %v", out, err)
	}
	for i := range list.Items {
		if list.Items[i].Name == name {
			return &list.Items[i], ""
		}
	}
	return nil, "no pod " + name + " in " + out
}

func (m *nspawnMachine) waitPodRunning(name string, timeout time.Duration) *corev1.Pod {
	m.t.Helper()
	var got *corev1.Pod
	m.eventually(timeout, "pod "+name+" running", func() (bool, string) {
		p, why := m.pod(name)
		if p == nil {
			return false, why
		}
		got = p
		cs := p.Status.ContainerStatuses
		ok := p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" && len(cs) == 1 && cs[0].State.Running != nil
		b, _ := json.Marshal(p.Status)
		return ok, string(b)
	})
	return got
}

// waitAnswers waits until the pod's web server answers at ip inside the booted system.
func (m *nspawnMachine) waitAnswers(ip string, timeout time.Duration) {
	m.t.Helper()
	m.eventually(timeout, "the pod answers at "+ip, func() (bool, string) {
		// nc, not busybox wget: Debian 12's busybox-static wget crashes in its static NSS.
		out, err := m.run(10*time.Second, "GET / HTTP/1.0\r\n\r\n", "busybox", "nc", "-w", "3", ip, "8080")
		return err == nil && strings.Contains(out, "\nhello-from-nspawn"), fmt.Sprintf("%v %s", err, out)
	})
}

// checkAdopted checks that the pod runs on as before: same container, same start, no restart.
func (m *nspawnMachine) checkAdopted(before *corev1.Pod, when string) {
	m.t.Helper()
	now := m.waitPodRunning(before.Name, 30*time.Second)
	b, a := before.Status.ContainerStatuses[0], now.Status.ContainerStatuses[0]
	if a.ContainerID != b.ContainerID || a.RestartCount != 0 || !podStartedAt(now).Equal(podStartedAt(before)) || now.Status.PodIP != before.Status.PodIP {
		m.t.Errorf("%s: container %s started %v restarts %d IP %s; before: %s started %v IP %s", when,
			a.ContainerID, podStartedAt(now), a.RestartCount, now.Status.PodIP, b.ContainerID, podStartedAt(before), before.Status.PodIP)
	}
}

func podStartedAt(p *corev1.Pod) time.Time {
	if r := p.Status.ContainerStatuses[0].State.Running; r != nil {
		return r.StartedAt.Time
	}
	return time.Time{}
}

// ipamReservations lists the addresses host-local IPAM holds in the booted system's minipod.
func (m *nspawnMachine) ipamReservations() []string {
	var ips []string
	for _, p := range ipamReservations(filepath.Join(m.root, "var/lib/minipod")) {
		ips = append(ips, filepath.Base(p))
	}
	return ips
}

// reboot runs `systemctl reboot` inside, waits for nspawn to end with 133 (what it returns when
// the booted system asks for a reboot) and boots the same file system again.
func (m *nspawnMachine) reboot() {
	t := m.t
	t.Helper()
	start := time.Now()
	if out, err := m.run(30*time.Second, "", "systemctl", "reboot"); err != nil {
		t.Logf("systemctl reboot: %v %s", err, out) // the connection may end with the system
	}
	select {
	case <-m.exited:
	case <-time.After(90 * time.Second):
		t.Fatalf("systemd-nspawn still runs 90 s after systemctl reboot:\n%s", m.consoleTail())
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 133 {
		t.Fatalf("systemd-nspawn exited with %d after systemctl reboot, want 133:\n%s", code, m.consoleTail())
	}
	m.boot()
	t.Logf("rebooted in %v", time.Since(start).Round(100*time.Millisecond))
}

// cleanup powers the booted system off (SIGTERM to nspawn is a clean poweroff), kills what
// remains, unmounts the overlay and removes the cgroups the booted system made on the host.
func (m *nspawnMachine) cleanup() {
	t := m.t
	if m.cmd != nil && m.cmd.Process != nil {
		select {
		case <-m.exited:
		default:
			if t.Failed() {
				journal, _ := m.run(20*time.Second, "", "journalctl", "-u", "minipod", "-u", "containerd", "--no-pager", "-n", "80")
				t.Logf("journal of the booted system:\n%s", journal)
			}
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.exited:
			case <-time.After(30 * time.Second):
				t.Errorf("systemd-nspawn did not power off in 30 s: killing it:\n%s", m.consoleTail())
				if m.leader > 0 {
					_ = syscall.Kill(m.leader, syscall.SIGKILL) // ends every process of its PID namespace
				}
				_ = m.cmd.Process.Kill()
				<-m.exited
			}
		}
		if t.Failed() {
			t.Logf("console:\n%s", m.consoleTail())
		}
	}
	if err := syscall.Unmount(m.root, 0); err != nil {
		t.Errorf("unmount %s: %v", m.root, err)
		_ = syscall.Unmount(m.root, syscall.MNT_DETACH)
	}
	_ = os.Remove(filepath.Join("/run/systemd/nspawn/propagate", m.name))
	// The booted system's cgroups on the host, and what still runs in them is reported.
	deadline := time.Now().Add(10 * time.Second)
	for m.cgroupsBefore != nil {
		left := removeNewCgroups(m.cgroupsBefore)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("cgroups of the booted system left on the host: %v", left)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// --private-network: neither the pods' bridge nor a veth of nspawn's is on the host.
	for _, l := range hostLinks() {
		if (l == "minipod0" || strings.HasPrefix(l, "ve-")) && !slices.Contains(m.hostLinks, l) {
			t.Errorf("network link %s appeared on the host", l)
		}
	}
}

// removeNewCgroups removes the cgroups hostCgroups finds now that were not in before, deepest
// first, and returns those it could not remove. rmdir removes only empty cgroups: nothing that
// still runs is touched.
func removeNewCgroups(before map[string]bool) []string {
	var dirs, left []string
	for d := range hostCgroups() {
		if !before[d] {
			dirs = append(dirs, d)
		}
	}
	// Longer paths first: a child before its parent.
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			left = append(left, d)
		}
	}
	slices.Sort(left)
	return left
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.TrimSpace([]byte(strings.Join(lines, "\n"))))
}

func TestAptMirror(t *testing.T) {
	tests := []struct {
		name, text string
		deb822     bool
		want       string
	}{
		{"one-line", "# a comment\ndeb-src http://src.example/debian bookworm main\ndeb http://deb.example/debian bookworm main\n", false, "http://deb.example/debian"},
		{"one-line options", "deb [arch=amd64 signed-by=/k.gpg] http://opt.example/debian bookworm main contrib\n", false, "http://opt.example/debian"},
		{"one-line other suite", "deb http://deb.example/debian bullseye main\ndeb http://sec.example bookworm-security main\n", false, ""},
		{"deb822", "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n", true, "http://deb.debian.org/debian"},
		{"deb822 disabled and src", "Types: deb\nEnabled: no\nURIs: http://off.example/debian\nSuites: bookworm\n\nTypes: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\nTypes: deb deb-src\nURIs: http://on.example/debian\nSuites: bookworm\n", true, "http://on.example/debian"},
		{"deb822 comment", "# URIs: http://commented.example\nTypes: deb\nURIs: http://real.example/debian\nSuites: bookworm\n", true, "http://real.example/debian"},
	}
	for _, tt := range tests {
		if got := mirrorIn(tt.text, tt.deb822, "bookworm"); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}
