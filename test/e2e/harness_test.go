// Package e2e runs minipod end to end against a real containerd, runc, CNI plugins and network
// namespaces. TestMain starts a containerd of its own (own root, state and socket, CRI plugin
// off) and never touches a system instance. Each test runs its own daemon in its own containerd
// namespace and cleans up after itself, also when it fails.
//
// It needs root, containerd, runc, the CNI plugins, iptables and busybox-static: missing
// prerequisites fail the run rather than skip it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/imagebuild"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
)

const cniBinDir = "/opt/cni/bin:/usr/lib/cni"

// The tests' own network: a bridge and subnet no real minipod uses by default. MINIPOD_E2E_NET
// (0-99) picks another one, so that two runs on one machine (the tests and the benchmarks, say)
// keep out of each other's way.
var testBridge, testSubnet, testPrefix = testNetwork()

func testNetwork() (bridge, subnet, prefix string) {
	n := 0
	if v := os.Getenv("MINIPOD_E2E_NET"); v != "" {
		fmt.Sscanf(v, "%d", &n)
		n = max(0, min(n, 99))
	}
	return fmt.Sprintf("mpe2e%d", n), fmt.Sprintf("10.213.%d.0/24", n), fmt.Sprintf("10.213.%d.", n)
}

// testHostPort is a host port of this test network's own, base plus its number (base leaves
// room for 100), so that concurrent runs on other networks do not collide.
func testHostPort(base int) int {
	var n int
	fmt.Sscanf(testBridge, "mpe2e%d", &n)
	return base + n
}

var env struct {
	dir        string // short temp dir: unix socket paths are limited to 108 bytes
	bin        string
	containerd *exec.Cmd
	address    string
}

var nsCounter atomic.Int32

func TestMain(m *testing.M) {
	os.Exit(mainWithCleanup(m))
}

func mainWithCleanup(m *testing.M) int {
	if err := checkPrereqs(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: missing prerequisite:", err)
		return 1
	}
	// An earlier run that crashed may have left its bridge and rules: start clean.
	cleanNetwork()
	defer cleanNetwork()
	dir, err := os.MkdirTemp("/tmp", "mpe2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	env.dir = dir
	defer os.RemoveAll(dir)
	if err := buildBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build:", err)
		return 1
	}
	if err := startContainerd(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: containerd:", err)
		stopContainerd()
		return 1
	}
	defer killLeftoverShims()
	defer stopContainerd()
	return m.Run()
}

// killLeftoverShims ends the shims of this run's containerd that outlive it: a daemon killed
// in the middle of creating a task (the crash tests do that on purpose) can leave a shim whose
// task containerd never recorded, so no delete reaches it. They are found by the socket of
// this run's containerd on their command line, and only those are killed.
func killLeftoverShims() {
	if env.address == "" {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		cmd, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(cmd, []byte("containerd-shim")) || !bytes.Contains(cmd, []byte("\x00-address\x00"+env.address+"\x00")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// cleanNetwork removes the tests' bridge (it outlives its pods, as is normal for CNI), the
// built-in network's masquerade rule for the tests' subnet (it outlives daemons, as the bridge
// does), any other iptables rule of the tests' subnet, and the "outside" network of
// network_test.go (its tests remove it themselves; this is for a run that was killed).
func cleanNetwork() {
	_ = exec.Command("ip", "link", "del", testBridge).Run()
	if err := sandbox.RemoveMasquerade(context.Background(), testBridge, testSubnet); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: remove the masquerade rule:", err)
	}
	removeIptablesRules(testPrefix)
	newOutsideNet().remove()
}

func checkPrereqs() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the end-to-end tests need root")
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "iptables-save", "ip", "docker-registry", "htpasswd", "systemd-analyze"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found on PATH (make deps installs it)", b)
		}
	}
	found := false
	for _, d := range filepath.SplitList(cniBinDir) {
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("CNI plugins not found in %s (apt-get install containernetworking-plugins)", cniBinDir)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		return fmt.Errorf("/bin/busybox not found (apt-get install busybox-static)")
	}
	return nil
}

func buildBinaries() error {
	env.bin = filepath.Join(env.dir, "bin")
	cmd := exec.Command("go", "build", "-o", env.bin+"/", "../../cmd/minipod", "../../cmd/minipodctl", "../../cmd/minipod-pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

func startContainerd() error {
	root := filepath.Join(env.dir, "ctrd")
	env.address = filepath.Join(env.dir, "c.sock")
	// containerd's state directory is below: runc mounts a user namespace pod's root
	// filesystem as that namespace's root, who must be able to pass through, as through
	// /run/containerd (0711).
	for _, d := range []string{env.dir, root} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return err
		}
	}
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = %q
`, filepath.Join(root, "root"), filepath.Join(root, "state"), env.address, env.address+".ttrpc")
	cfgPath := filepath.Join(env.dir, "containerd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	return runContainerd()
}

// runContainerd starts containerd on the config startContainerd wrote and waits for it.
func runContainerd() error {
	cfgPath := filepath.Join(env.dir, "containerd.toml")
	logf, err := os.OpenFile(filepath.Join(env.dir, "containerd.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	env.containerd = exec.Command("containerd", "--config", cfgPath)
	env.containerd.Stdout, env.containerd.Stderr = logf, logf
	if err := env.containerd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rt, err := runtime.New(ctx, runtime.Config{Address: env.address, Namespace: "e2e"})
		cancel()
		if err == nil {
			rt.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restartContainerd stops containerd the way a package upgrade does (SIGTERM: the shims and
// their containers live on), runs between, and starts it again on the same state.
func restartContainerd(t *testing.T, between func()) {
	t.Helper()
	_ = env.containerd.Process.Signal(syscall.SIGTERM)
	_ = env.containerd.Wait()
	between()
	if err := runContainerd(); err != nil {
		t.Fatalf("containerd did not come back: %v", err)
	}
}

func stopContainerd() {
	if env.containerd == nil || env.containerd.Process == nil {
		return
	}
	_ = env.containerd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = env.containerd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = env.containerd.Process.Kill()
		<-done
	}
	// Snapshot mounts and shim state live under our own root: unmount and remove them.
	root := filepath.Join(env.dir, "ctrd")
	_ = exec.Command("umount", "-R", "-l", root).Run()
	unmountUnder(root)
	_ = os.RemoveAll(root)
}

// unmountUnder lazily unmounts every mount point below dir.
func unmountUnder(dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir) {
			mounts = append(mounts, fields[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}

// removeIptablesRules deletes every nat rule that mentions the tests' subnet, and the chains
// they jump to. Used only as a last resort after the tests, so that a failed test leaves no
// rules on the machine.
func removeIptablesRules(prefix string) {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		return
	}
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, prefix) {
			continue
		}
		// iptables-save quotes comments the way a shell does: let sh split the rule.
		_ = exec.Command("sh", "-c", "iptables -t nat -D "+strings.TrimPrefix(line, "-A ")).Run()
		f := strings.Fields(line)
		for i := range f {
			if f[i] == "-j" && i+1 < len(f) && strings.HasPrefix(f[i+1], "CNI-") && !strings.HasPrefix(f[i+1], "CNI-HOSTPORT") {
				chains = append(chains, f[i+1])
			}
		}
	}
	for _, c := range chains {
		_ = exec.Command("iptables", "-t", "nat", "-F", c).Run()
		_ = exec.Command("iptables", "-t", "nat", "-X", c).Run()
	}
}

// daemon is one minipod under test.
type daemon struct {
	t         *testing.T
	dir       string
	manifests string
	state     string
	logs      string
	netns     string
	socket    string
	namespace string
	cmd       *exec.Cmd
	logPath   string
	extra     []string
	env       []string // added to the daemon's environment
	exited    chan struct{}
	// binDir holds the minipod and minipodctl to use; empty: the ones the tests built.
	binDir string
	// dropFlags are flags of args() left out with their value, for a build that lacks them.
	dropFlags []string
}

// binPath is the path of one of the daemon's binaries (minipod or minipodctl).
func (d *daemon) binPath(name string) string {
	if d.binDir != "" {
		return filepath.Join(d.binDir, name)
	}
	return filepath.Join(env.bin, name)
}

// newDaemon prepares a daemon with its own directories and containerd namespace, imports the
// busybox test image into that namespace, and registers cleanup of everything it may create.
func newDaemon(t *testing.T, extra ...string) *daemon {
	t.Helper()
	n := nsCounter.Add(1)
	d := &daemon{
		t:         t,
		dir:       t.TempDir(),
		namespace: fmt.Sprintf("e2e-%d-%d", os.Getpid(), n),
		socket:    filepath.Join(env.dir, fmt.Sprintf("m%d.sock", n)),
		extra:     extra,
	}
	d.manifests = filepath.Join(d.dir, "manifests")
	d.state = filepath.Join(d.dir, "state")
	d.logs = filepath.Join(d.dir, "logs")
	d.netns = filepath.Join(d.dir, "netns")
	d.logPath = filepath.Join(d.dir, "minipod.log")
	for _, p := range []string{d.manifests, filepath.Join(d.dir, "cni")} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	importBusybox(t, d.namespace)
	t.Cleanup(d.cleanup)
	return d
}

// importImage imports img into a containerd namespace.
func importImage(t *testing.T, namespace string, img imagebuild.Image) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Config{Address: env.address, Namespace: namespace})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(imagebuild.WriteOCI(pw, img)) }()
	if _, err := rt.Import(ctx, pr); err != nil {
		t.Fatalf("import %s: %v", img.Name, err)
	}
}

func importBusybox(t *testing.T, namespace string) {
	t.Helper()
	img, err := imagebuild.Busybox(imagebuild.DefaultBusyboxName, "")
	if err != nil {
		t.Fatalf("busybox image: %v", err)
	}
	importImage(t, namespace, img)
}

func (d *daemon) args() []string {
	args := append([]string{
		"--manifest-dir", d.manifests,
		"--state-dir", d.state,
		"--socket", d.socket,
		"--containerd-address", env.address,
		"--containerd-namespace", d.namespace,
		"--cni-conf-dir", filepath.Join(d.dir, "cni"),
		"--cni-bin-dir", cniBinDir,
		"--log-dir", d.logs,
		"--netns-dir", d.netns,
		"--bridge", testBridge,
		"--pod-cidr", testSubnet,
		"--log-level", "info",
		// Never the machine's /etc/minipod/config.yaml.
		"--config", "",
	}, d.extra...)
	for _, f := range d.dropFlags {
		for i := 0; i+1 < len(args); i++ {
			if args[i] == f {
				args = append(args[:i:i], args[i+2:]...)
				i--
			}
		}
	}
	return args
}

// start runs the daemon and waits until its API answers.
func (d *daemon) start() {
	d.t.Helper()
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.cmd = exec.Command(d.binPath("minipod"), d.args()...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.Env = append(os.Environ(), d.env...)
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	logf.Close()
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, ch chan struct{}) { _ = c.Wait(); close(ch) }(d.cmd, d.exited)
	d.eventually(30*time.Second, "API socket answers", func() (bool, string) {
		select {
		case <-d.exited:
			d.t.Fatalf("minipod exited early:\n%s", d.logTail())
		default:
		}
		c, err := net.Dial("unix", d.socket)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

// stop ends the daemon with sig and waits for it to exit.
func (d *daemon) stop(sig syscall.Signal) {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(string(b), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	return strings.Join(lines, "\n")
}

// cleanup stops the daemon and removes whatever it may have left: containers and tasks in its
// namespace, pinned network namespaces, and iptables rules of its pod IPs.
func (d *daemon) cleanup() {
	if d.t.Failed() {
		d.t.Logf("minipod log (tail):\n%s", d.logTail())
	}
	d.stop(syscall.SIGTERM)
	ctr := func(args ...string) string {
		out, _ := exec.Command("ctr", append([]string{"-a", env.address, "-n", d.namespace}, args...)...).Output()
		return string(out)
	}
	for _, id := range strings.Fields(ctr("containers", "ls", "-q")) {
		ctr("tasks", "kill", "-s", "SIGKILL", id)
		ctr("tasks", "rm", "-f", id)
		ctr("containers", "rm", id)
	}
	for _, img := range strings.Fields(ctr("images", "ls", "-q")) {
		ctr("images", "rm", img)
	}
	unmountUnder(d.netns)
	// Volumes the stopped daemon left mounted (a test that failed before its pods were gone).
	unmountUnder(d.state)
	// Rules of this daemon's pods: their IPs are the ones its IPAM handed out.
	ipam := filepath.Join(d.state, "cni", "networks")
	filepath.WalkDir(ipam, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && net.ParseIP(e.Name()) != nil {
			removeIptablesRules(e.Name() + "/")
		}
		return nil
	})
	ctr("namespaces", "rm", d.namespace)
	// The daemon's cgroup root (/<namespace>) outlives its pods' cgroups: it is this test's.
	if err := sandbox.RemoveCgroup("/" + d.namespace); err != nil {
		d.t.Logf("remove cgroup root: %v", err)
	}
}

// eventually polls cond until it holds or the timeout passes.
func (d *daemon) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	d.t.Helper()
	pollUntil(d.t, timeout, 50*time.Millisecond, what, cond)
}

// pollUntil calls cond every interval until it holds, and fails t after timeout with the
// last detail cond gave.
func pollUntil(t testing.TB, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if detail != "" {
			last = detail
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(interval)
	}
}

// ctl runs minipodctl against this daemon and returns stdout, stderr and the exit code.
func (d *daemon) ctl(args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command(d.binPath("minipodctl"), args...)
	cmd.Env = append(os.Environ(), "MINIPOD_SOCKET="+d.socket)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			d.t.Fatalf("minipodctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// pods returns the daemon's pod list as minipodctl prints it with -o json.
func (d *daemon) pods() []corev1.Pod {
	d.t.Helper()
	out, errs, code := d.ctl("status", "-o", "json")
	if code != 0 {
		d.t.Fatalf("minipodctl status -o json: exit %d: %s", code, errs)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		d.t.Fatalf("status -o json is not a PodList: %v\n%s", err, out)
	}
	return list.Items
}

func (d *daemon) pod(name string) *corev1.Pod {
	for _, p := range d.pods() {
		if p.Name == name {
			return &p
		}
	}
	return nil
}

// writeManifest writes a file atomically (write, then rename), as a careful tool would.
func (d *daemon) writeManifest(name, content string) string {
	d.t.Helper()
	return d.writeManifestMode(name, content, 0o644)
}

// writeManifestMode is writeManifest for a file of mode perm (0o600 for a file with a Secret).
func (d *daemon) writeManifestMode(name, content string, perm os.FileMode) string {
	d.t.Helper()
	path := filepath.Join(d.manifests, name)
	tmp := filepath.Join(d.manifests, "."+name+".tmp")
	if err := os.WriteFile(tmp, []byte(content), perm); err != nil {
		d.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		d.t.Fatal(err)
	}
	return path
}

// waitRunning waits until the pod is Running with every container ready.
func (d *daemon) waitRunning(name string, timeout time.Duration) *corev1.Pod {
	d.t.Helper()
	var got *corev1.Pod
	d.eventually(timeout, "pod "+name+" running and ready", func() (bool, string) {
		p := d.pod(name)
		if p == nil {
			return false, "not listed"
		}
		got = p
		if p.Status.Phase != corev1.PodRunning {
			return false, fmt.Sprintf("phase %q reason %q message %q", p.Status.Phase, p.Status.Reason, p.Status.Message)
		}
		for _, c := range p.Status.ContainerStatuses {
			if !c.Ready {
				return false, fmt.Sprintf("container %s not ready: %+v", c.Name, c.State)
			}
		}
		return true, ""
	})
	return got
}

func (d *daemon) waitGone(name string, timeout time.Duration) {
	d.t.Helper()
	d.eventually(timeout, "pod "+name+" gone", func() (bool, string) {
		if p := d.pod(name); p != nil {
			return false, string(p.Status.Phase)
		}
		return true, ""
	})
}

func (d *daemon) removeManifest(name string) {
	d.t.Helper()
	if err := os.Remove(filepath.Join(d.manifests, name)); err != nil {
		d.t.Fatal(err)
	}
}

// followLogs runs `minipodctl logs -f` in the background; the returned function stops it and
// returns what it printed.
func (d *daemon) followLogs(pod, container string) func() string {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(env.bin, "minipodctl"), "logs", "-f", pod, "-c", container)
	cmd.Env = append(os.Environ(), "MINIPOD_SOCKET="+d.socket)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	d.t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return func() string {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return out.String()
	}
}
