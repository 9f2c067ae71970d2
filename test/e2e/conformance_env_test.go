package e2e

// The ported node conformance scenarios (issue 23): Kubernetes' own end-to-end tests of
// test/e2e/common/node and test/e2e/common/storage, each rewritten as a pod manifest dropped
// into one shared daemon, with the upstream checks and expected values. docs/conformance.md
// maps every upstream scenario to its port here, or says why there is none.
//
// One daemon serves every scenario of a run: each scenario is a subtest that writes its own
// uniquely named manifests and checks its own pods, and all of them run at once. They are
// started with t.Run from goroutines, not with t.Parallel: t.Parallel is capped by -parallel,
// which defaults to GOMAXPROCS (2 on the CI machines), and most scenarios spend their time
// waiting on probe periods and backoffs, not on a CPU. Status comes from one poll of the
// daemon's pod list shared by all scenarios, not one request per scenario.

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/imagebuild"
)

// The images the scenarios use. The busybox and pause images are the project's own; the
// others are variants of the busybox image built for these tests (conformanceImages).
const (
	busyboxImage = imagebuild.DefaultBusyboxName
	pauseImage   = imagebuild.DefaultPauseName
	// agnhostImage stands in for registry.k8s.io/e2e-test-images/agnhost: the busybox files,
	// the helper as /agnhost and /agnhost-2, ENTRYPOINT ["/agnhost"], CMD ["pause"], and the
	// image user and group agnhost defines (uid 1000 in group 50000).
	agnhostImage = "minipod.local/agnhost:conformance"
	// nonRootImage stands in for e2e-test-images/nonroot: busybox with USER 1234.
	nonRootImage = "minipod.local/nonroot:conformance"
	// nonewprivsImage stands in for e2e-test-images/nonewprivs: a set-user-ID root program,
	// /nnp, that prints its effective user ID.
	nonewprivsImage = "minipod.local/nonewprivs:conformance"
)

// Timeouts of the upstream framework, shortened where a local daemon needs less.
const (
	podStartTimeout = 5 * time.Minute // framework.PodStartTimeout
	pollEvery       = 500 * time.Millisecond
	// inFlight is how many scenarios run at once. All at once, their pods' starts and exec
	// probes keep a 2-CPU machine saturated for minutes, and probes with a 1 s timeout fail
	// for want of CPU; the long scenarios start first and keep their places.
	inFlight = 40
)

// scenario is one ported upstream scenario: group is the upstream file without ".go", name the
// subtest name (the upstream It text, shortened where it is long).
type scenario struct {
	group, name string
	run         func(c *conf)
}

// suite is one daemon and what its scenarios share.
type suite struct {
	d       *daemon
	api     api.Client
	cmDir   string // --configmap-dir
	secDir  string // --secret-dir
	scratch string // host directories for hostPath scenarios
	regs    registries

	mu   sync.Mutex
	pods map[string]corev1.Pod // the last poll of the daemon's pod list, by name
}

// registries serve the image-pull scenarios: open anonymously, private with the node's
// credentials in the daemon's auth file, and private with credentials the node lacks.
type registries struct {
	open, withAuth, withoutAuth *registry
	unused                      string // a loopback address nothing listens on
}

// conf is a scenario's view of the suite: its own *testing.T, and a daemon whose helpers
// report to it.
type conf struct {
	*suite
	t *testing.T
	d *daemon
}

// runConformance starts one daemon (with extra flags) and runs every scenario against it,
// all at once; it returns when they are done and every pod is gone.
func runConformance(t *testing.T, scenarios []scenario, extra ...string) {
	start := time.Now()
	helper := buildHelper(t)
	s := &suite{cmDir: t.TempDir(), secDir: t.TempDir(), scratch: t.TempDir()}
	for _, dir := range []string{s.cmDir, s.secDir} {
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	s.regs = startRegistries(t)
	authFile := filepath.Join(t.TempDir(), "auth.json")
	auth := base64.StdEncoding.EncodeToString([]byte("node:node-pass"))
	if err := os.WriteFile(authFile, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, s.regs.withAuth.addr, auth)), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--configmap-dir", s.cmDir, "--secret-dir", s.secDir, "--auth-file", authFile}, extra...)
	s.d = newDaemon(t, args...)
	imgs, err := conformanceImages(helper)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		importImage(t, s.d.namespace, img)
	}
	s.d.start()
	s.api = api.Client{Socket: s.d.socket}
	pushImages(t, s)

	ctx, cancel := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() { defer close(polled); s.poll(ctx) }()
	t.Cleanup(func() { cancel(); <-polled })
	// CONFORMANCE_KEEP_LOG=DIR keeps the daemon's whole log there, for the pending scenarios.
	if dir := os.Getenv("CONFORMANCE_KEEP_LOG"); dir != "" {
		t.Cleanup(func() {
			b, _ := os.ReadFile(s.d.logPath)
			os.WriteFile(filepath.Join(dir, "minipod-"+t.Name()+".log"), b, 0o644)
		})
	}
	t.Logf("conformance daemon ready after %s", time.Since(start).Round(time.Millisecond))
	// The scenarios that take longest start first, so that they are not queued behind quick
	// ones at the daemon: one every 20 ms, so that the daemon takes their files in that order.
	sorted := slices.SortedStableFunc(slices.Values(scenarios), func(a, b scenario) int { return groupRank(a.group) - groupRank(b.group) })
	gates := make([]chan struct{}, len(sorted))
	groups := map[string][]int{}
	var order []string
	for i, sc := range sorted {
		gates[i] = make(chan struct{})
		if _, ok := groups[sc.group]; !ok {
			order = append(order, sc.group)
		}
		groups[sc.group] = append(groups[sc.group], i)
	}
	go func() {
		for _, g := range gates {
			close(g)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	// A scenario waits for its gate, then for a slot: goroutines blocked sending on a channel
	// are served in the order they blocked, and the gates open 20 ms apart, so the slots go
	// in launch order too.
	slots := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	for _, g := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(g, func(t *testing.T) {
				var gwg sync.WaitGroup
				for _, i := range groups[g] {
					gwg.Add(1)
					go func() {
						defer gwg.Done()
						<-gates[i]
						slots <- struct{}{}
						defer func() { <-slots }()
						t.Run(sorted[i].name, func(t *testing.T) {
							d := *s.d
							d.t = t
							sorted[i].run(&conf{suite: s, t: t, d: &d})
						})
					}()
				}
				gwg.Wait()
			})
		}()
	}
	wg.Wait()
	t.Logf("scenarios done after %s", time.Since(start).Round(time.Millisecond))

	// Every scenario removed its manifests when it ended; the pods must all go, and leave
	// nothing behind.
	entries, _ := os.ReadDir(s.d.manifests)
	for _, e := range entries {
		os.Remove(filepath.Join(s.d.manifests, e.Name()))
	}
	// A pod whose grace period is long (the probe scenarios' 500 s) and whose container
	// ignores SIGTERM takes that long to go, as on a kubelet: those are left to the harness,
	// which kills whatever is left of the daemon's containers.
	s.d.eventually(2*time.Minute, "every pod gone", func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var left []string
		for name, p := range s.pods {
			if g := p.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 60 {
				left = append(left, name)
			}
		}
		return len(left) == 0, strings.Join(left, " ")
	})
	t.Logf("pods gone after %s", time.Since(start).Round(time.Millisecond))
}

// groupRank orders the groups for launch: those whose scenarios wait longest (probe periods,
// backoffs, grace periods) first.
func groupRank(g string) int {
	for i, first := range []string{"container_probe", "container_probe_sidecar", "container_restart_backoff", "init_container",
		"lifecycle_hook_sleep", "lifecycle_hook", "lifecycle_hook_restartable_init", "runtime", "pods"} {
		if g == first {
			return i
		}
	}
	return 100
}

// poll refreshes s.pods until ctx ends.
func (s *suite) poll(ctx context.Context) {
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		list, err := s.api.Pods(rctx)
		cancel()
		if err == nil {
			m := make(map[string]corev1.Pod, len(list.Items))
			for _, p := range list.Items {
				m[p.Name] = p
			}
			s.mu.Lock()
			s.pods = m
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
	}
}

// helperBin is the helper program, built once per run.
var helperBin struct {
	once sync.Once
	path string
	err  error
}

// buildHelper compiles helperSource, a static program with only the standard library.
func buildHelper(t *testing.T) string {
	t.Helper()
	helperBin.once.Do(func() {
		dir := filepath.Join(env.dir, "helper")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			helperBin.err = err
			return
		}
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module conformancehelper\n\ngo 1.24\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "main.go"), []byte(helperSource), 0o644)
		cmd := exec.Command("go", "build", "-trimpath", "-o", "agnhost", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=mod", "GOPROXY=off", "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			helperBin.err = fmt.Errorf("build the conformance helper: %v\n%s", err, out)
			return
		}
		helperBin.path = filepath.Join(dir, "agnhost")
	})
	if helperBin.err != nil {
		t.Fatal(helperBin.err)
	}
	return helperBin.path
}

// conformanceImages are the image variants the scenarios need beyond busybox and pause.
func conformanceImages(helper string) ([]imagebuild.Image, error) {
	bb, err := imagebuild.Busybox(busyboxImage, "")
	if err != nil {
		return nil, err
	}
	variant := func(name string, extra ...imagebuild.File) imagebuild.Image {
		img := bb
		img.Name = name
		img.Files = append(slices.Clone(bb.Files), extra...)
		return img
	}
	agnhost := variant(agnhostImage,
		imagebuild.File{Path: "agnhost", Mode: 0o755, Source: helper},
		imagebuild.File{Path: "agnhost-2", Mode: 0o755, Source: helper})
	for i, f := range agnhost.Files {
		switch f.Path {
		case "etc/passwd":
			agnhost.Files[i].Data = append(slices.Clone(f.Data), "user-defined-in-image:x:1000:1000:user-defined-in-image:/home/user-defined-in-image:/bin/sh\n"...)
		case "etc/group":
			agnhost.Files[i].Data = append(slices.Clone(f.Data), "user-defined-in-image:x:1000:\ngroup-defined-in-image:x:50000:user-defined-in-image\n"...)
		}
	}
	agnhost.Entrypoint, agnhost.Cmd = []string{"/agnhost"}, []string{"pause"}

	nonRoot := variant(nonRootImage)
	nonRoot.User = "1234"

	nnp := variant(nonewprivsImage, imagebuild.File{Path: "nnp", Mode: fs.ModeSetuid | 0o755, Source: helper})
	nnp.Entrypoint, nnp.Cmd = []string{"/nnp"}, nil
	return []imagebuild.Image{agnhost, nonRoot, nnp}, nil
}

func startRegistries(t *testing.T) registries {
	t.Helper()
	var r registries
	r.open = startRegistry(t, "", "")
	r.withAuth = startRegistry(t, "node", "node-pass")
	r.withoutAuth = startRegistry(t, "other", "other-pass")
	// A port just freed: nothing listens there, so a pull is refused at once.
	r.unused = freeLoopbackAddr(t)
	return r
}

// pushImages puts the images the pull scenarios pull into the registries, and removes the
// local copies under those names.
func pushImages(t *testing.T, s *suite) {
	t.Helper()
	push := func(src string, r *registry, repo, user, pass string) {
		ref := r.addr + "/" + repo
		ctr := func(args ...string) {
			out, err := exec.Command("ctr", append([]string{"-a", env.address, "-n", s.d.namespace}, args...)...).CombinedOutput()
			if err != nil {
				t.Fatalf("ctr %v: %v\n%s", args, err, out)
			}
		}
		ctr("images", "tag", "--force", src, ref)
		args := []string{"images", "push", "--plain-http"}
		if user != "" {
			args = append(args, "--user", user+":"+pass)
		}
		ctr(append(args, ref)...)
		ctr("images", "rm", ref)
	}
	push(agnhostImage, s.regs.open, "e2e-test-images/agnhost:conformance", "", "")
	push(pauseImage, s.regs.withAuth, "pause:testing", "node", "node-pass")
	push(pauseImage, s.regs.withoutAuth, "pause:testing", "other", "other-pass")
}

// --- what scenarios use ---

// apply writes the manifest of pod name (name.yaml); the manifest is removed when the
// scenario ends, without waiting for the pod to go.
func (c *conf) apply(name, manifest string) {
	c.t.Helper()
	c.d.writeManifest(name+".yaml", manifest)
	c.t.Cleanup(func() { os.Remove(filepath.Join(c.d.manifests, name+".yaml")) })
}

// remove removes pod name's manifest.
func (c *conf) remove(name string) {
	c.t.Helper()
	if err := os.Remove(filepath.Join(c.d.manifests, name+".yaml")); err != nil {
		c.t.Fatal(err)
	}
}

// pod returns the last polled state of the pod, or nil when it is not listed.
func (c *conf) pod(name string) *corev1.Pod {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pods[name]
	if !ok {
		return nil
	}
	return p.DeepCopy()
}

// until polls cond until it holds, and fails the scenario after timeout.
func (c *conf) until(timeout time.Duration, what string, cond func() (bool, string)) {
	c.t.Helper()
	pollUntil(c.t, timeout, pollEvery, what, cond)
}

// waitPod waits until cond holds for the listed pod and returns it.
func (c *conf) waitPod(name string, timeout time.Duration, what string, cond func(p *corev1.Pod) (bool, string)) *corev1.Pod {
	c.t.Helper()
	var got *corev1.Pod
	c.until(timeout, name+": "+what, func() (bool, string) {
		p := c.pod(name)
		if p == nil {
			return false, "not listed"
		}
		got = p
		ok, detail := cond(p)
		if !ok && refused[p.Status.Reason] {
			// A file the daemon refuses never becomes a pod: no use waiting.
			c.t.Fatalf("%s: waiting for %s, but the manifest is refused: %s", name, what, summary(p))
		}
		return ok, detail
	})
	return got
}

// refused are the reasons of a manifest the daemon does not run.
var refused = map[string]bool{"InvalidManifest": true, "PolicyViolation": true, "NameConflict": true,
	"InsecureManifestPermissions": true, "UnreadableManifest": true, "AppArmor": true}

// waitPhase waits for the pod's phase.
func (c *conf) waitPhase(name string, phase corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	c.t.Helper()
	return c.waitPod(name, timeout, "phase "+string(phase), func(p *corev1.Pod) (bool, string) {
		return p.Status.Phase == phase, summary(p)
	})
}

// waitRunning waits for phase Running, as the framework's CreateSync does.
func (c *conf) waitRunning(name string) *corev1.Pod {
	c.t.Helper()
	return c.waitPhase(name, corev1.PodRunning, podStartTimeout)
}

// waitGone waits until the pod is no longer listed.
func (c *conf) waitGone(name string, timeout time.Duration) {
	c.t.Helper()
	c.until(timeout, name+" gone", func() (bool, string) {
		p := c.pod(name)
		if p == nil {
			return true, ""
		}
		return false, summary(p)
	})
}

// waitSucceeded waits for phase Succeeded and fails at once on Failed, as the framework's
// WaitForPodSuccessInNamespace does.
func (c *conf) waitSucceeded(name string) *corev1.Pod {
	c.t.Helper()
	p := c.waitPod(name, podStartTimeout, "phase Succeeded or Failed", func(p *corev1.Pod) (bool, string) {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed, summary(p)
	})
	if p.Status.Phase != corev1.PodSucceeded {
		c.t.Fatalf("pod %s failed: %s\nlogs: %q", name, summary(p), c.logs(name, p.Spec.Containers[0].Name))
	}
	return p
}

// expectOutput is the framework's TestContainerOutput: the pod succeeds, and the container's
// log contains every string of want.
func (c *conf) expectOutput(name, container string, want ...string) {
	c.t.Helper()
	c.waitSucceeded(name)
	out := c.logs(name, container)
	for _, w := range want {
		if !strings.Contains(out, w) {
			c.t.Errorf("output of %s/%s lacks %q:\n%s", name, container, w, out)
		}
	}
}

// expectOutputRegexp is the framework's TestContainerOutputRegexp.
func (c *conf) expectOutputRegexp(name, container string, want ...string) {
	c.t.Helper()
	c.waitSucceeded(name)
	out := c.logs(name, container)
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(out) {
			c.t.Errorf("output of %s/%s does not match %q:\n%s", name, container, w, out)
		}
	}
}

// logs returns the container's log ("" when it cannot be read).
func (c *conf) logs(name, container string) string {
	return c.logsWith(name, api.LogOptions{Container: container, Tail: -1})
}

func (c *conf) logsWith(name string, o api.LogOptions) string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b bytes.Buffer
	if err := c.api.LogsWith(ctx, "default", name, o, &b); err != nil {
		return ""
	}
	return b.String()
}

// exec runs cmd in the container and returns its stdout, stderr and exit code.
func (c *conf) exec(name, container string, cmd ...string) (string, string, int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := c.api.Exec(ctx, "default", name, container, cmd, false, nil, &out, &errb)
	if err != nil {
		return out.String(), errb.String() + err.Error(), -1
	}
	return out.String(), errb.String(), code
}

// events returns the pod's events.
func (c *conf) events(name string) []corev1.Event {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := c.api.Events(ctx, "default", name, false, nil)
	if err != nil || list == nil {
		return nil
	}
	return list.Items
}

// writeConfigMap makes configMap name with the given keys in the daemon's configmap dir; a nil
// data removes it.
func (c *conf) writeConfigMap(name string, data map[string]string) {
	c.t.Helper()
	writeObject(c.t, filepath.Join(c.cmDir, name), data, 0o755, 0o644)
}

// writeSecret makes secret name with the given keys in the daemon's secret dir, root's alone.
func (c *conf) writeSecret(name string, data map[string]string) {
	c.t.Helper()
	writeObject(c.t, filepath.Join(c.secDir, name), data, 0o700, 0o600)
}

// writeObject replaces the directory dir with one file per key, atomically (written beside,
// renamed into place), so that the daemon never reads half of an object.
func writeObject(t *testing.T, dir string, data map[string]string, dirMode, fileMode os.FileMode) {
	t.Helper()
	if data == nil {
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		return
	}
	tmp := dir + ".new"
	os.RemoveAll(tmp)
	if err := os.Mkdir(tmp, dirMode); err != nil {
		t.Fatal(err)
	}
	for k, v := range data {
		if err := os.WriteFile(filepath.Join(tmp, k), []byte(v), fileMode); err != nil {
			t.Fatal(err)
		}
	}
	old := dir + ".old"
	os.RemoveAll(old)
	if _, err := os.Stat(dir); err == nil {
		if err := os.Rename(dir, old); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(old)
}

// --- status helpers ---

// containerStatus returns the status of the named init or app container, or nil.
func containerStatus(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// condition returns the pod's condition of type typ, or nil.
func condition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// podReady is the pod's Ready condition, as podutil.IsPodReady reads it.
func podReady(p *corev1.Pod) bool {
	c := condition(p, corev1.PodReady)
	return c != nil && c.Status == corev1.ConditionTrue
}

// stateName is "Running", "Terminated", "Waiting" or "Unknown", as the framework's
// GetContainerState says.
func stateName(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running"
	case s.Terminated != nil:
		return "Terminated"
	case s.Waiting != nil:
		return "Waiting"
	}
	return "Unknown"
}

// summary is a one-line account of a pod's status for failure messages.
func summary(p *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "phase %s", p.Status.Phase)
	if p.Status.Reason != "" {
		fmt.Fprintf(&b, " reason %s", p.Status.Reason)
	}
	if p.Status.Message != "" {
		fmt.Fprintf(&b, " message %q", p.Status.Message)
	}
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for _, cs := range list {
			fmt.Fprintf(&b, "; %s: %s", cs.Name, stateName(cs.State))
			switch {
			case cs.State.Waiting != nil:
				fmt.Fprintf(&b, " %s %q", cs.State.Waiting.Reason, cs.State.Waiting.Message)
			case cs.State.Terminated != nil:
				fmt.Fprintf(&b, " %s exit %d", cs.State.Terminated.Reason, cs.State.Terminated.ExitCode)
			}
			fmt.Fprintf(&b, " ready=%v restarts=%d", cs.Ready, cs.RestartCount)
		}
	}
	return b.String()
}

// freeLoopbackAddr returns a loopback address whose port was free a moment ago.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}
