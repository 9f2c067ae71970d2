package e2e

// `make bench`: how fast minipod starts and stops pods, how it copes with bursts, what it costs
// at rest, each figure next to "the floor" measured in the same run: the same containers made
// straight through the containerd client plus one CNI ADD per pod, no daemon in between.
//
//	MINIPOD_E2E_NET=7 go test -count=1 -run '^$' -bench . -benchtime 1x -timeout 60m ./test/e2e/
//
// BenchmarkMinipod runs its parts as sub-benchmarks, prints a table and writes it as JSON to
// bench.json in the repository root (MINIPOD_BENCH_JSON overrides the path). b.N is ignored:
// with -benchtime 1x every part runs once and repeats its own measurements. A part can be run
// on its own, e.g. -bench 'Minipod/Burst'. Each part measures its floor itself, alternating
// floor pods and daemon pods, so that a figure and its floor see the same load (the machine
// is shared and its load drifts).
//
// Knobs for quick runs while working on this file: MINIPOD_BENCH_RUNS (pods per sequential
// series, default 30), MINIPOD_BENCH_IDLE (the idle CPU window, default 60s).
//
// The harness is written for *testing.T; withT runs each part as a test of its own so that
// newDaemon, its cleanups and the leak checks serve the benchmarks unchanged.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/imagebuild"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
)

// How the benchmarks poll. The daemon is asked through its API (one HTTP request on the unix
// socket for the whole pod list; the report says what one costs); between polls the benchmark
// sleeps pollSingle for one pod, pollBurst when 20 to 100 pods are listed. Polls are not free:
// the daemon builds the list, on the same two CPUs.
const (
	pollSingle = 3 * time.Millisecond
	pollBurst  = 20 * time.Millisecond
	warmup     = 2 // pods started and removed before a series, not counted
	benchImage = imagebuild.DefaultBusyboxName
	// A container that exits at once on SIGTERM: `wait` is interrupted by the signal, unlike a
	// foreground sleep, which would delay the trap by up to the sleep's length.
	benchCmd = "trap 'exit 0' TERM; while :; do sleep 3600 & wait; done"
)

func benchRuns() int {
	if n, err := strconv.Atoi(os.Getenv("MINIPOD_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 30
}

func benchIdle() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MINIPOD_BENCH_IDLE")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}

// ---- results ----

// figure is one line of the table.
type figure struct {
	Key    string    `json:"key"`
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Runs   int       `json:"runs"`
	Median float64   `json:"median"`
	P95    float64   `json:"p95"`
	Max    float64   `json:"max"`
	Floor  string    `json:"floor,omitempty"` // key of the floor figure it is compared with
	Ratio  float64   `json:"ratio_to_floor,omitempty"`
	Note   string    `json:"note,omitempty"`
	Values []float64 `json:"values"`
}

type benchReport struct {
	Started  time.Time         `json:"started"`
	Finished time.Time         `json:"finished"`
	Machine  map[string]string `json:"machine"`
	Polling  map[string]string `json:"polling"`
	Figures  []*figure         `json:"figures"`
	Phases   []*figure         `json:"phases"`
	CPU      []*figure         `json:"cpu"`
}

var (
	reportMu sync.Mutex
	report   = &benchReport{Machine: map[string]string{}, Polling: map[string]string{}}
	figures  = map[string]*figure{}
)

// summarize computes runs, median, p95 (nearest rank) and max of values.
func summarize(key, name, unit string, values []float64) *figure {
	f := &figure{Key: key, Name: name, Unit: unit, Runs: len(values), Values: values}
	if len(values) == 0 {
		return f
	}
	s := append([]float64(nil), values...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		f.Median = s[n/2]
	} else {
		f.Median = (s[n/2-1] + s[n/2]) / 2
	}
	f.P95 = s[int(math.Ceil(0.95*float64(n)))-1]
	f.Max = s[n-1]
	return f
}

// record adds a figure to the report; floorKey names the floor figure it is divided by.
func record(b *testing.B, key, name, unit string, values []float64, floorKey, note string) *figure {
	f := summarize(key, name, unit, values)
	f.Floor, f.Note = floorKey, note
	reportMu.Lock()
	defer reportMu.Unlock()
	if fl := figures[floorKey]; fl != nil && fl.Median > 0 {
		f.Ratio = f.Median / fl.Median
	}
	if old := figures[key]; old != nil {
		*old = *f
		f = old
	} else {
		figures[key] = f
		report.Figures = append(report.Figures, f)
	}
	if b != nil && len(values) > 0 {
		u := strings.ReplaceAll(unit, " ", "")
		b.ReportMetric(f.Median, key+"-"+u+"-p50")
		b.ReportMetric(f.P95, key+"-"+u+"-p95")
		if f.Ratio > 0 {
			b.ReportMetric(f.Ratio, key+"-x-floor")
		}
	}
	return f
}

func recordPhase(key, name string, values []float64) {
	f := summarize(key, name, "ms", values)
	reportMu.Lock()
	defer reportMu.Unlock()
	report.Phases = append(report.Phases, f)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// ---- running the harness from a benchmark ----

// withT runs fn as a test of its own, so that the harness, written for *testing.T, serves the
// benchmarks too. Every cleanup fn registers has run when withT returns, also when it failed;
// then the benchmark fails.
func withT(b *testing.B, name string, fn func(t *testing.T)) {
	b.Helper()
	all := func(string, string) (bool, error) { return true, nil }
	if !testing.RunTests(all, []testing.InternalTest{{Name: name, F: fn}}) {
		b.Fatalf("%s failed (its log is above)", name)
	}
}

// ---- the benchmark ----

func BenchmarkMinipod(b *testing.B) {
	report.Started = time.Now()
	machineInfo()
	b.Run("PodStart1", func(b *testing.B) { benchPodStart(b, 1) })
	b.Run("PodStart3", func(b *testing.B) { benchPodStart(b, 3) })
	b.Run("Burst20", func(b *testing.B) { benchBurst(b, 20, 5) })
	b.Run("Burst50", func(b *testing.B) { benchBurst(b, 50, 3) })
	b.Run("Footprint", benchFootprint)
	b.Run("Update", benchUpdate)
	report.Finished = time.Now()
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		report.Machine["loadavg_at_end"] = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	printReport(os.Stdout)
	if err := writeReport(); err != nil {
		b.Error(err)
	}
}

func machineInfo() {
	m := report.Machine
	m["nproc"] = strconv.Itoa(goruntime.NumCPU())
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "MemTotal:") {
				m["memory"] = strings.Join(strings.Fields(l)[1:], " ")
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m["loadavg_at_start"] = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if out, err := exec.Command("runc", "--version").Output(); err == nil {
		m["runc"] = strings.SplitN(string(out), "\n", 2)[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rt, err := runtime.New(ctx, runtime.Config{Address: env.address, Namespace: "e2e"}); err == nil {
		if v, err := rt.Version(ctx); err == nil {
			m["containerd"] = v
		}
		rt.Close()
	}
	m["go"] = goruntime.Version()
	m["e2e_network"] = testBridge + " " + testSubnet
	report.Polling["single pod"] = fmt.Sprintf("API polled every %s + the request (see list request, 0 pods)", pollSingle)
	report.Polling["bursts"] = fmt.Sprintf("API polled every %s + the request", pollBurst)
	report.Polling["log phases"] = "daemon log timestamps have millisecond resolution"
}

// ---- the floor ----

// floorEnv makes pods the way the issue defines the floor: netns, CNI ADD, pause container, N
// app containers, one step after the other through pkg/runtime and pkg/sandbox.
type floorEnv struct {
	t       *testing.T
	rt      *runtime.Runtime
	network *sandbox.Network
	ns      string
	dir     string
	cgroups string

	mu   sync.Mutex // seq and live: a burst floor starts and stops pods from many goroutines
	seq  int
	live map[string]*floorPod
}

type floorPod struct {
	id      string
	att     sandbox.Attachment
	pause   string
	apps    []string
	exits   map[string]runtime.ExitWatch
	pids    []int
	cgroup  string
	fifoDir string
}

// floorSteps are the medians' raw material: how long each step of a floor start took.
type floorSteps struct {
	netns, cni, pause, apps time.Duration
}

func newFloorEnv(t *testing.T) *floorEnv {
	t.Helper()
	n := nsCounter.Add(1)
	f := &floorEnv{t: t, ns: fmt.Sprintf("e2e-%d-floor%d", os.Getpid(), n), dir: t.TempDir(), live: map[string]*floorPod{}}
	f.cgroups = "/" + f.ns
	t.Cleanup(f.cleanup) // registered before TempDir's own removal runs (cleanups run last-first)
	importBusybox(t, f.ns)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Config{Address: env.address, Namespace: f.ns})
	if err != nil {
		t.Fatal(err)
	}
	f.rt = rt
	img, err := imagebuild.Pause(imagebuild.DefaultPauseName, filepath.Join(env.bin, "minipod-pause"))
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(imagebuild.WriteOCI(pw, img)) }()
	if _, err := rt.Import(ctx, pr); err != nil {
		t.Fatalf("import pause image: %v", err)
	}
	f.network, err = sandbox.NewNetwork(sandbox.NetworkConfig{
		ConfDir:  filepath.Join(f.dir, "no-cni-conf"), // none: the built-in bridge network, as the daemon
		BinDirs:  filepath.SplitList(cniBinDir),
		StateDir: filepath.Join(f.dir, "cni"),
		Bridge:   testBridge,
		Subnet:   testSubnet,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// start makes one pod with n app containers and returns when all of them run.
func (f *floorEnv) start(ctx context.Context, n int) (*floorPod, floorSteps, error) {
	f.mu.Lock()
	f.seq++
	seq := f.seq
	id := fmt.Sprintf("floor%04d", seq)
	uid := fmt.Sprintf("00000000-0000-4000-8000-%012d", seq)
	p := &floorPod{id: id, pause: id + "-pause", exits: map[string]runtime.ExitWatch{},
		cgroup: f.cgroups + "/pod" + uid, fifoDir: filepath.Join(f.dir, "fifo", id)}
	p.att = sandbox.Attachment{ID: id, NetNS: filepath.Join(f.dir, "netns", id), Namespace: "default", Name: id, UID: uid}
	f.live[id] = p
	f.mu.Unlock()
	var st floorSteps
	t0 := time.Now()
	if _, err := sandbox.NewNetNS(filepath.Dir(p.att.NetNS), id); err != nil {
		return p, st, err
	}
	t1 := time.Now()
	st.netns = t1.Sub(t0)
	if _, err := f.network.Setup(ctx, p.att); err != nil {
		return p, st, err
	}
	t2 := time.Now()
	st.cni = t2.Sub(t1)
	img, err := f.rt.GetImage(ctx, imagebuild.DefaultPauseName)
	if err != nil {
		return p, st, err
	}
	labels := map[string]string{runtime.LabelPodUID: uid, runtime.LabelPodName: id}
	err = f.rt.CreateContainer(ctx, runtime.ContainerConfig{
		ID: p.pause, Image: imagebuild.DefaultPauseName, Resolved: &img, Labels: labels,
		Args: append(append([]string(nil), img.Config.Entrypoint...), img.Config.Cmd...), Env: img.Config.Env,
		Hostname: id, NetNS: p.att.NetNS, CgroupParent: p.cgroup, ShimGroup: p.pause,
	})
	if err != nil {
		return p, st, err
	}
	pid, _, err := f.rt.Start(ctx, p.pause, nil)
	if err != nil {
		return p, st, err
	}
	t3 := time.Now()
	st.pause = t3.Sub(t2)
	for i := 0; i < n; i++ {
		cid := fmt.Sprintf("%s-c%d-0", id, i)
		app, err := f.rt.GetImage(ctx, benchImage)
		if err != nil {
			return p, st, err
		}
		err = f.rt.CreateContainer(ctx, runtime.ContainerConfig{
			ID: cid, Image: benchImage, Resolved: &app, Labels: labels, Args: []string{"sh", "-c", benchCmd},
			Env: app.Config.Env, NetNS: p.att.NetNS, JoinPID: pid, CgroupParent: p.cgroup, ShimGroup: p.pause,
		})
		if err != nil {
			return p, st, err
		}
		p.apps = append(p.apps, cid)
		// Output through FIFOs, as the daemon's containers (which it copies to a log file).
		stdio := &runtime.Stdio{FIFODir: filepath.Join(p.fifoDir, cid), Stdout: io.Discard, Stderr: io.Discard}
		apid, exit, err := f.rt.Start(ctx, cid, stdio)
		if err != nil {
			return p, st, err
		}
		p.exits[cid] = exit
		p.pids = append(p.pids, int(apid))
	}
	st.apps = time.Since(t3)
	return p, st, nil
}

// stop ends a floor pod: SIGTERM to each app container and its exit awaited (SIGKILL after
// 10 s), task and container deleted, then the pause container killed and deleted, CNI DEL, the
// netns and the pod cgroup removed. One step after the other.
func (f *floorEnv) stop(ctx context.Context, p *floorPod) error {
	var errs []error
	for _, cid := range p.apps {
		if exit, ok := p.exits[cid]; ok {
			if err := f.rt.Signal(ctx, cid, syscall.SIGTERM); err != nil {
				errs = append(errs, err)
			}
			select {
			case <-exit.C:
			case <-time.After(10 * time.Second):
				errs = append(errs, fmt.Errorf("%s ignored SIGTERM", cid))
			}
		}
		if err := f.rt.Remove(ctx, cid); err != nil {
			errs = append(errs, err)
		}
	}
	if err := f.rt.Remove(ctx, p.pause); err != nil {
		errs = append(errs, err)
	}
	if err := f.network.Teardown(ctx, p.att); err != nil {
		errs = append(errs, err)
	}
	if err := sandbox.RemoveNetNS(p.att.NetNS); err != nil {
		errs = append(errs, err)
	}
	if err := sandbox.RemoveCgroup(p.cgroup); err != nil {
		errs = append(errs, err)
	}
	_ = os.RemoveAll(p.fifoDir)
	if len(errs) == 0 {
		f.mu.Lock()
		delete(f.live, p.id)
		f.mu.Unlock()
	}
	return errors.Join(errs...)
}

// cleanup removes whatever the floor left, also after a failure: pods still alive, any
// container in its namespace, its images, network namespaces, cgroups and iptables rules.
func (f *floorEnv) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if f.rt != nil {
		for _, p := range f.live {
			p.exits = nil // no waiting for a graceful exit
			if err := f.stop(ctx, p); err != nil {
				f.t.Logf("floor cleanup %s: %v", p.id, err)
			}
		}
		if list, err := f.rt.List(ctx, nil); err == nil {
			for _, c := range list {
				_ = f.rt.Remove(ctx, c.ID)
			}
		}
		f.rt.Close()
	}
	unmountUnder(filepath.Join(f.dir, "netns"))
	ipam := filepath.Join(f.dir, "cni", "networks")
	filepath.WalkDir(ipam, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), testPrefix) {
			removeIptablesRules(e.Name() + "/")
		}
		return nil
	})
	_ = sandbox.RemoveCgroup(f.cgroups)
	ctr := func(args ...string) string {
		out, _ := exec.Command("ctr", append([]string{"-a", env.address, "-n", f.ns}, args...)...).Output()
		return string(out)
	}
	for _, img := range strings.Fields(ctr("images", "ls", "-q")) {
		ctr("images", "rm", img)
	}
	ctr("namespaces", "rm", f.ns)
}

// ---- the daemon side ----

func benchPod(name string, containers int, probe bool) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  terminationGracePeriodSeconds: 10\n  containers:\n", name)
	for i := 0; i < containers; i++ {
		fmt.Fprintf(&sb, "  - name: c%d\n    image: %s\n    command: [\"sh\", \"-c\", %q]\n", i, benchImage, benchCmd)
		if probe {
			sb.WriteString("    readinessProbe:\n      exec: {command: [\"sh\", \"-c\", \"true\"]}\n      periodSeconds: 10\n")
		}
	}
	return sb.String()
}

// benchCtx is a daemon under benchmark with the clients the benchmark polls through.
type benchCtx struct {
	t   *testing.T
	d   *daemon
	api *api.Client
	rt  *runtime.Runtime
}

// benchDaemon starts a daemon of the harness. Its cleanup also removes the daemon's top-level
// cgroup (/<namespace> in every hierarchy), which the harness leaves behind, empty.
func benchDaemon(t *testing.T) *daemon {
	t.Helper()
	var ns string
	t.Cleanup(func() { // runs after the daemon's own cleanup has removed its containers
		if ns != "" {
			if err := sandbox.RemoveCgroup("/" + ns); err != nil {
				t.Logf("remove cgroup /%s: %v", ns, err)
			}
		}
	})
	d := newDaemon(t)
	ns = d.namespace
	d.start()
	return d
}

func newBenchCtx(t *testing.T, d *daemon) *benchCtx {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rt, err := runtime.New(ctx, runtime.Config{Address: env.address, Namespace: d.namespace})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return &benchCtx{t: t, d: d, api: &api.Client{Socket: d.socket}, rt: rt}
}

func (bc *benchCtx) list() map[string]*corev1.Pod {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := bc.api.Pods(ctx)
	if err != nil {
		bc.t.Fatalf("list pods: %v", err)
	}
	m := make(map[string]*corev1.Pod, len(l.Items))
	for i := range l.Items {
		m[l.Items[i].Name] = &l.Items[i]
	}
	return m
}

func running(p *corev1.Pod, containers int) bool {
	if p == nil || len(p.Status.ContainerStatuses) != containers {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if c.State.Running == nil {
			return false
		}
	}
	return true
}

func ready(p *corev1.Pod) bool {
	if p == nil {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// poll calls cond every `every` until it holds and returns the time it first held.
func (bc *benchCtx) poll(timeout, every time.Duration, what string, cond func() (bool, string)) time.Time {
	bc.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, detail := cond()
		now := time.Now()
		if ok {
			return now
		}
		if detail != "" {
			last = detail
		}
		if now.After(deadline) {
			bc.t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(every)
	}
}

// drop writes the files to temporary names first, then renames them all into place: the
// returned time is just before the first rename.
func (bc *benchCtx) drop(files map[string]string) time.Time {
	bc.t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(bc.d.manifests, "."+name+".tmp"), []byte(content), 0o644); err != nil {
			bc.t.Fatal(err)
		}
	}
	t0 := time.Now()
	for name := range files {
		if err := os.Rename(filepath.Join(bc.d.manifests, "."+name+".tmp"), filepath.Join(bc.d.manifests, name)); err != nil {
			bc.t.Fatal(err)
		}
	}
	return t0
}

// gone reports whether nothing of the pods is left: not listed, no container in containerd,
// no sandbox record (removed last, after CNI DEL and the netns).
func (bc *benchCtx) gone(names map[string]bool, uids []string) (bool, string) {
	listed := bc.list()
	for n := range names {
		if listed[n] != nil {
			return false, "still listed: " + n
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var labels map[string]string
	if len(names) == 1 {
		for n := range names {
			labels = map[string]string{runtime.LabelPodName: n}
		}
	}
	cs, err := bc.rt.List(ctx, labels)
	if err != nil {
		bc.t.Fatal(err)
	}
	if len(cs) > 0 {
		return false, fmt.Sprintf("%d containers left", len(cs))
	}
	for _, uid := range uids {
		if _, err := os.Stat(filepath.Join(bc.d.state, "pods", uid)); err == nil {
			return false, "sandbox record of " + uid + " left"
		}
	}
	return true, ""
}

// waitTraps waits until every process is the container's shell with its SIGTERM trap set. The
// shell is the container's PID 1: a SIGTERM that comes before its `trap` is lost, and the pod
// then takes its whole grace period to stop. That window is longer than it looks: for a few
// milliseconds after containerd's Start returns, the process is still runc's init (a Go
// program, whose handlers catch every signal, then execve), and a signal then is lost too.
// The benchmarks stop nothing before the trap is set; this wait is outside every measured
// interval.
func waitTraps(t *testing.T, pids ...int) {
	t.Helper()
	const sigterm = 1 << (syscall.SIGTERM - 1)
	deadline := time.Now().Add(20 * time.Second)
	for _, pid := range pids {
		for {
			data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				t.Fatalf("pid %d: %v", pid, err)
			}
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err != nil {
				t.Fatalf("pid %d: %v", pid, err)
			}
			caught := uint64(0)
			for _, l := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(l, "SigCgt:"); ok {
					caught, _ = strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				}
			}
			if strings.TrimSpace(string(comm)) == "sh" && caught&sigterm != 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d set no SIGTERM handler within 20 s", pid)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// waitTraps waits for the SIGTERM handlers of the daemon's app containers that carry labels.
func (bc *benchCtx) waitTraps(labels map[string]string) {
	bc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := map[string]string{runtime.LabelRole: runtime.RoleApp}
	for k, v := range labels {
		l[k] = v
	}
	cs, err := bc.rt.List(ctx, l)
	if err != nil {
		bc.t.Fatal(err)
	}
	var pids []int
	for _, c := range cs {
		ts, err := bc.rt.Task(ctx, c.ID, nil)
		if err != nil {
			bc.t.Fatal(err)
		}
		if ts.Running {
			pids = append(pids, int(ts.Pid))
		}
	}
	waitTraps(bc.t, pids...)
}

// podTimes is what the benchmark saw of one pod, for matching with the daemon's log.
type podTimes struct {
	name                      string
	written, running, readyAt time.Time
	removed, goneAt           time.Time
	uid                       string
	sandboxReady, lastStarted time.Time // from the log
	stopping, stopped         time.Time // from the log
}

// floorStartStop makes one floor pod with n containers and removes it again.
func floorStartStop(t *testing.T, f *floorEnv, n int) (start, stop time.Duration, st floorSteps) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Now()
	p, st, err := f.start(ctx, n)
	start = time.Since(t0)
	if err != nil {
		t.Fatalf("floor start: %v", err)
	}
	waitTraps(t, p.pids...)
	t1 := time.Now()
	if err := f.stop(ctx, p); err != nil {
		t.Fatalf("floor stop: %v", err)
	}
	return start, time.Since(t1), st
}

// daemonStartStop drops one pod file, waits until the pod runs and is Ready, removes the file
// and waits until nothing of the pod is left.
func daemonStartStop(bc *benchCtx, name string, containers int) *podTimes {
	t := bc.t
	t.Helper()
	pt := &podTimes{name: name}
	file := name + ".yaml"
	pt.written = bc.drop(map[string]string{file: benchPod(name, containers, false)})
	pt.running = bc.poll(60*time.Second, pollSingle, name+" running", func() (bool, string) {
		p := bc.list()[name]
		if p == nil {
			return false, "not listed"
		}
		pt.uid = string(p.UID)
		if pt.readyAt.IsZero() && ready(p) {
			pt.readyAt = time.Now()
		}
		return running(p, containers), string(p.Status.Phase)
	})
	if pt.readyAt.IsZero() {
		pt.readyAt = bc.poll(60*time.Second, pollSingle, name+" ready", func() (bool, string) {
			return ready(bc.list()[name]), "not ready"
		})
	}
	bc.waitTraps(map[string]string{runtime.LabelPodName: name})
	pt.removed = time.Now()
	if err := os.Remove(filepath.Join(bc.d.manifests, file)); err != nil {
		t.Fatal(err)
	}
	pt.goneAt = bc.poll(60*time.Second, pollSingle, name+" gone", func() (bool, string) {
		return bc.gone(map[string]bool{name: true}, []string{pt.uid})
	})
	return pt
}

// benchPodStart starts and removes pods of the given size one at a time, alternating a floor
// pod and a daemon pod, so that both see the same load on this shared machine.
func benchPodStart(b *testing.B, containers int) {
	runs := benchRuns()
	withT(b, fmt.Sprintf("podstart%d", containers), func(t *testing.T) {
		f := newFloorEnv(t)
		d := benchDaemon(t)
		bc := newBenchCtx(t, d)
		var all []*podTimes
		var fStart, fStop []float64
		var steps []floorSteps
		for i := -warmup; i < runs; i++ {
			up, down, st := floorStartStop(t, f, containers)
			pt := daemonStartStop(bc, fmt.Sprintf("start%d-%02d", containers, i+warmup), containers)
			if i >= 0 {
				fStart, fStop, steps = append(fStart, ms(up)), append(fStop, ms(down)), append(steps, st)
				all = append(all, pt)
			}
		}
		var up, rdy, down []float64
		for _, pt := range all {
			up = append(up, ms(pt.running.Sub(pt.written)))
			rdy = append(rdy, ms(pt.readyAt.Sub(pt.written)))
			down = append(down, ms(pt.goneAt.Sub(pt.removed)))
		}
		c := strconv.Itoa(containers)
		noun := "1-container pod"
		if containers > 1 {
			noun = c + "-container pod"
		}
		record(b, "floor-start-"+c, "floor: "+noun+" started (netns, CNI ADD, pause, apps)", "ms", fStart, "", "")
		record(b, "start-"+c+"-running", noun+": file written → all containers running", "ms", up, "floor-start-"+c, "")
		record(b, "start-"+c+"-ready", noun+": file written → Ready (no probe)", "ms", rdy, "floor-start-"+c, "")
		record(b, "floor-stop-"+c, "floor: "+noun+" stopped (SIGTERM, deletes, CNI DEL)", "ms", fStop, "", "")
		record(b, "stop-"+c, noun+": file removed → gone (API, containers, CNI, netns)", "ms", down, "floor-stop-"+c, "containers exit on SIGTERM")
		var a, cn, p, x []float64
		for _, s := range steps {
			a, cn, p, x = append(a, ms(s.netns)), append(cn, ms(s.cni)), append(p, ms(s.pause)), append(x, ms(s.apps))
		}
		prefix := "floor-" + c
		recordPhase(prefix+"-netns", prefix+": new netns", a)
		recordPhase(prefix+"-cni", prefix+": CNI ADD (bridge + host-local; no hostPort, so no portmap)", cn)
		recordPhase(prefix+"-pause", prefix+": pause container created and started", p)
		recordPhase(prefix+"-apps", prefix+": app containers created and started", x)
		logPhases(t, d, "daemon-"+c, all)
		if left := d.leftovers(); len(left) > 0 {
			t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
}

// logPhases splits the pods' start and stop times at the daemon's log lines "sandbox ready",
// "container started", "stopping pod" and "pod stopped".
var logLine = regexp.MustCompile(`^time=(\S+) level=\S+ msg=("(?:[^"\\]|\\.)*"|\S+)(.*)$`)
var podAttr = regexp.MustCompile(`\bpod=(\S+)`)

func logPhases(t *testing.T, d *daemon, prefix string, pods []*podTimes) {
	byName := map[string]*podTimes{}
	for _, p := range pods {
		byName[p.name] = p
	}
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		t.Logf("daemon log: %v", err)
		return
	}
	for _, line := range strings.Split(string(data), "\n") {
		m := logLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pm := podAttr.FindStringSubmatch(m[3])
		if pm == nil {
			continue
		}
		key := pm[1]
		p := byName[key[strings.LastIndex(key, "/")+1:]]
		if p == nil {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		msg, _ := strconv.Unquote(m[2])
		if msg == "" {
			msg = m[2]
		}
		switch msg {
		case "sandbox ready":
			p.sandboxReady = at
		case "container started":
			if at.After(p.lastStarted) {
				p.lastStarted = at
			}
		case "stopping pod":
			p.stopping = at
		case "pod stopped":
			p.stopped = at
		}
	}
	var a, b, c, e, f, g []float64
	for _, p := range pods {
		if p.sandboxReady.IsZero() || p.lastStarted.IsZero() || p.stopping.IsZero() || p.stopped.IsZero() {
			continue
		}
		a = append(a, ms(p.sandboxReady.Sub(p.written)))
		b = append(b, ms(p.lastStarted.Sub(p.sandboxReady)))
		c = append(c, ms(p.running.Sub(p.lastStarted)))
		e = append(e, ms(p.stopping.Sub(p.removed)))
		f = append(f, ms(p.stopped.Sub(p.stopping)))
		g = append(g, ms(p.goneAt.Sub(p.stopped)))
	}
	recordPhase(prefix+"-to-sandbox", prefix+": file written → log \"sandbox ready\" (inotify, decode, netns, CNI ∥ pause)", a)
	recordPhase(prefix+"-containers", prefix+": \"sandbox ready\" → last \"container started\"", b)
	recordPhase(prefix+"-to-api", prefix+": last \"container started\" → running seen in the API", c)
	recordPhase(prefix+"-to-stopping", prefix+": file removed → log \"stopping pod\"", e)
	recordPhase(prefix+"-terminate", prefix+": \"stopping pod\" → \"pod stopped\" (SIGTERM, deletes, CNI DEL)", f)
	recordPhase(prefix+"-to-gone", prefix+": \"pod stopped\" → gone seen by the benchmark", g)
}

// daemonBurst drops n one-container pod files at once, waits until all run, removes the files
// at once and waits until nothing of the pods is left, polling the API every `every`.
func daemonBurst(bc *benchCtx, tag string, n int, every time.Duration) (up, down time.Duration) {
	t := bc.t
	t.Helper()
	files := map[string]string{}
	names := map[string]bool{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("%s-%02d", tag, i)
		files[name+".yaml"] = benchPod(name, 1, false)
		names[name] = true
	}
	t0 := bc.drop(files)
	uids := map[string]string{}
	t1 := bc.poll(3*time.Minute, every, fmt.Sprintf("%d pods running", n), func() (bool, string) {
		listed := bc.list()
		ok := 0
		for name := range names {
			if p := listed[name]; running(p, 1) {
				ok++
				uids[name] = string(p.UID)
			}
		}
		return ok == n, fmt.Sprintf("%d of %d running", ok, n)
	})
	bc.waitTraps(nil)
	t2 := time.Now()
	for file := range files {
		if err := os.Remove(filepath.Join(bc.d.manifests, file)); err != nil {
			t.Fatal(err)
		}
	}
	var ul []string
	for _, u := range uids {
		ul = append(ul, u)
	}
	t3 := bc.poll(3*time.Minute, every, fmt.Sprintf("%d pods gone", n), func() (bool, string) {
		return bc.gone(names, ul)
	})
	return t1.Sub(t0), t3.Sub(t2)
}

// benchBurst drops n pod files at once and removes them at once, reps times; before each
// repetition the floor makes and removes the same n pods one after the other. A last round,
// not timed, polls only every 250 ms and measures the CPU the pods cost.
func benchBurst(b *testing.B, n, reps int) {
	withT(b, fmt.Sprintf("burst%d", n), func(t *testing.T) {
		f := newFloorEnv(t)
		d := benchDaemon(t)
		bc := newBenchCtx(t, d)
		ctx := context.Background()
		var fUp, fDown, pUp, pDown, up, down []float64
		for r := 0; r < reps; r++ {
			pods := make([]*floorPod, 0, n)
			t0 := time.Now()
			for i := 0; i < n; i++ {
				p, _, err := f.start(ctx, 1)
				if err != nil {
					t.Fatalf("floor start: %v", err)
				}
				pods = append(pods, p)
			}
			fUp = append(fUp, ms(time.Since(t0)))
			for _, p := range pods {
				waitTraps(t, p.pids...)
			}
			t0 = time.Now()
			for _, p := range pods {
				if err := f.stop(ctx, p); err != nil {
					t.Fatalf("floor stop: %v", err)
				}
			}
			fDown = append(fDown, ms(time.Since(t0)))

			pu, pd := floorParallel(t, f, n)
			pUp, pDown = append(pUp, ms(pu)), append(pDown, ms(pd))

			u, dn := daemonBurst(bc, fmt.Sprintf("burst%d-%d", n, r), n, pollBurst)
			up, down = append(up, ms(u)), append(down, ms(dn))
		}
		k := strconv.Itoa(n)
		note := ""
		if n == 20 {
			note = "kubelet v1.33 took 1.51 s on this kind of machine (FACTS.md)"
		}
		record(b, "floor-seq"+k+"-start", "floor: "+k+" pods started one after the other", "ms", fUp, "", "")
		record(b, "burst"+k+"-running", k+" pod files dropped at once → all running", "ms", up, "floor-seq"+k+"-start", note)
		record(b, "floor-seq"+k+"-stop", "floor: "+k+" pods stopped one after the other", "ms", fDown, "", "")
		record(b, "burst"+k+"-gone", k+" pod files removed at once → all gone", "ms", down, "floor-seq"+k+"-stop", "")
		// The same pods made all at once, one goroutine each: what the machine itself allows
		// for a burst, which the sequential floor divided by the cores only estimates.
		record(b, "floor-par"+k+"-start", "floor: "+k+" pods started at once (one goroutine each)", "ms", pUp, "", "")
		record(b, "floor-par"+k+"-stop", "floor: "+k+" pods stopped at once (one goroutine each)", "ms", pDown, "", "")

		meter := newCPUMeter(t, d)
		daemonBurst(bc, fmt.Sprintf("burst%d-cpu", n), n, 250*time.Millisecond)
		s, c, kk := meter.since()
		per := float64(n)
		recordCPU(fmt.Sprintf("burst%d", n), fmt.Sprintf("per pod, %d one-container pods started and stopped at once (API polled every 250 ms)", n),
			[]float64{s / per}, []float64{c / per}, []float64{kk / per})
		if left := d.leftovers(); len(left) > 0 {
			t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
}

// floorParallel starts n one-container floor pods at once, each in its own goroutine, waits
// until every app container has its SIGTERM trap, then stops them all at once. It returns how
// long the starts and the stops took.
func floorParallel(t *testing.T, f *floorEnv, n int) (up, down time.Duration) {
	t.Helper()
	ctx := context.Background()
	pods := make([]*floorPod, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Go(func() { pods[i], _, errs[i] = f.start(ctx, 1) })
	}
	wg.Wait()
	up = time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("floor start: %v", err)
	}
	for _, p := range pods {
		waitTraps(t, p.pids...)
	}
	t0 = time.Now()
	for i, p := range pods {
		wg.Go(func() { errs[i] = f.stop(ctx, p) })
	}
	wg.Wait()
	down = time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("floor stop: %v", err)
	}
	return up, down
}

// ---- footprint ----

// procStatus returns a field of /proc/<pid>/status in kB.
func procStatusKB(pid int, field string) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				return strconv.ParseFloat(f[1], 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// clkTck is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on Linux.
const clkTck = 100

// cpuTime is utime+stime of the process.
func cpuTime(pid int) (time.Duration, error) {
	self, _, err := cpuTimes(pid)
	return self, err
}

// cpuTimes returns the process's own CPU time (utime+stime) and that of its children it has
// waited for (cutime+cstime: for the daemon, the CNI plugins and the iptables they run).
func cpuTimes(pid int) (self, children time.Duration, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may hold spaces: count fields after the last ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	var v [4]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil { // fields 14 to 17
			return 0, 0, err
		}
	}
	tick := time.Second / clkTck
	return time.Duration(v[0]+v[1]) * tick, time.Duration(v[2]+v[3]) * tick, nil
}

// cpuMeter measures the CPU the daemon (and its CNI children) and containerd use in a window.
type cpuMeter struct {
	t                    *testing.T
	daemon               int
	self, children, ctrd time.Duration
}

func newCPUMeter(t *testing.T, d *daemon) *cpuMeter {
	m := &cpuMeter{t: t, daemon: d.cmd.Process.Pid}
	m.reset()
	return m
}

func (m *cpuMeter) read() (self, children, ctrd time.Duration) {
	self, children, err := cpuTimes(m.daemon)
	if err != nil {
		m.t.Fatal(err)
	}
	ctrd, _, err = cpuTimes(env.containerd.Process.Pid)
	if err != nil {
		m.t.Fatal(err)
	}
	return
}

func (m *cpuMeter) reset() { m.self, m.children, m.ctrd = m.read() }

// since returns the CPU used since the last reset, in ms.
func (m *cpuMeter) since() (self, children, ctrd float64) {
	s, c, k := m.read()
	return ms(s - m.self), ms(c - m.children), ms(k - m.ctrd)
}

func recordCPU(key, what string, self, children, ctrd []float64) {
	reportMu.Lock()
	defer reportMu.Unlock()
	for _, x := range []struct {
		k, n string
		v    []float64
	}{
		{"-daemon", "daemon's own CPU", self},
		{"-cni", "daemon's children's CPU (CNI plugins, iptables)", children},
		{"-containerd", "containerd's own CPU (shims and runc not counted)", ctrd},
	} {
		f := summarize(key+x.k, what+": "+x.n, "ms CPU", x.v)
		report.CPU = append(report.CPU, f)
	}
}

// shims returns how many containerd shims serve the namespace and their total proportional
// set size (Pss, so that the pages they share are counted once), in MiB.
func shims(namespace string) (int, float64) {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	n, pss := 0, 0.0
	for _, c := range procs {
		data, err := os.ReadFile(c)
		if err != nil || !strings.Contains(string(data), "containerd-shim") || !strings.Contains(string(data), "\x00-namespace\x00"+namespace+"\x00") {
			continue
		}
		n++
		roll, err := os.ReadFile(filepath.Join(filepath.Dir(c), "smaps_rollup"))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(roll), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				pss += kb / 1024
			}
		}
	}
	return n, pss
}

// pollCost measures one API list request as the benchmarks make them: wall time in the
// benchmark, and CPU in the daemon (over 100 requests back to back).
func pollCost(bc *benchCtx, pods int) {
	meter := newCPUMeter(bc.t, bc.d)
	const n = 100
	t0 := time.Now()
	for i := 0; i < n; i++ {
		bc.list()
	}
	wall := ms(time.Since(t0)) / n
	self, _, _ := meter.since()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	data, err := bc.api.PodListJSON(ctx)
	if err != nil {
		bc.t.Fatal(err)
	}
	reportMu.Lock()
	defer reportMu.Unlock()
	report.Polling[fmt.Sprintf("list request, %3d pods", pods)] = fmt.Sprintf("%.2f ms wall, %.2f ms of daemon CPU (mean of %d), %d kB of JSON", wall, self/n, n, len(data)/1024)
}

func benchFootprint(b *testing.B) {
	withT(b, "footprint", func(t *testing.T) {
		d := benchDaemon(t)
		bc := newBenchCtx(t, d)
		pid := d.cmd.Process.Pid
		// rss samples VmRSS ten times, 200 ms apart, and notes how it splits into pages of the
		// executable (file-backed) and the rest (heap, stacks, runtime), as medians. It asks the
		// API for the pod list first: a node's daemon answers status queries even at rest, and
		// after the daemon's trim one list request maps about 9 MiB of the executable again.
		rss := func() ([]float64, string) {
			bc.list()
			var v, file, anon []float64
			for i := 0; i < 10; i++ {
				kb, err1 := procStatusKB(pid, "VmRSS")
				f, err2 := procStatusKB(pid, "RssFile")
				a, err3 := procStatusKB(pid, "RssAnon")
				if err := errors.Join(err1, err2, err3); err != nil {
					t.Fatal(err)
				}
				v, file, anon = append(v, kb/1024), append(file, f/1024), append(anon, a/1024)
				time.Sleep(200 * time.Millisecond)
			}
			return v, fmt.Sprintf("10 samples 200 ms apart; medians %.1f MiB file-backed (the executable's pages), %.1f MiB anonymous", summarize("", "", "", file).Median, summarize("", "", "", anon).Median)
		}
		time.Sleep(2 * time.Second)
		v, note := rss()
		record(b, "rss-0", "daemon RSS, 0 pods", "MiB", v, "", note)
		ctrdRSS := func(key, name string) {
			kb, err := procStatusKB(env.containerd.Process.Pid, "VmRSS")
			if err != nil {
				t.Fatal(err)
			}
			record(b, key, name, "MiB", []float64{kb / 1024}, "", "")
		}
		ctrdRSS("containerd-rss-0", "containerd RSS (the harness's own), 0 pods")
		pollCost(bc, 0)

		names := map[string]bool{}
		uids := map[string]string{}
		add := func(from, to int) time.Duration {
			files := map[string]string{}
			for i := from; i < to; i++ {
				name := fmt.Sprintf("fp-%03d", i)
				files[name+".yaml"] = benchPod(name, 1, true)
				names[name] = true
			}
			t0 := bc.drop(files)
			t1 := bc.poll(3*time.Minute, pollBurst, fmt.Sprintf("%d pods ready", len(names)), func() (bool, string) {
				listed := bc.list()
				ok := 0
				for name := range names {
					if p := listed[name]; running(p, 1) && ready(p) {
						ok++
						uids[name] = string(p.UID)
					}
				}
				return ok == len(names), fmt.Sprintf("%d of %d ready", ok, len(names))
			})
			return t1.Sub(t0)
		}
		up50 := add(0, 50)
		record(b, "probe50-ready", "50 pods with an exec readiness probe dropped at once → all Ready", "ms", []float64{ms(up50)}, "floor-seq50-start", "first probe runs as the container starts")
		// Right after the burst: 1 s after all are Ready, and so before the daemon's trim (5 s
		// after the last start), with the code and garbage of the burst still in.
		time.Sleep(time.Second)
		v, note = rss()
		record(b, "rss-50", "daemon RSS, 50 pods (readiness probe each), 1 s after all are Ready", "MiB", v, "", note)
		ns, pss := shims(d.namespace)
		record(b, "shims-50", "containerd shims of those 50 pods, total Pss", "MiB", []float64{pss}, "", fmt.Sprintf("%d shims: one per pod (the runc shim serves all of a pod's containers)", ns))

		// CPU over the idle window, in 10 s slices (one probe period each).
		idle := benchIdle()
		slice := min(10*time.Second, idle)
		var pct []float64
		c0, err := cpuTime(pid)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		prev, prevT := c0, start
		for time.Since(start) < idle {
			time.Sleep(slice)
			c, err := cpuTime(pid)
			if err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			pct = append(pct, 100*(c-prev).Seconds()/now.Sub(prevT).Seconds())
			prev, prevT = c, now
		}
		total := prev - c0
		// At rest now: the burst's free heap has gone back to the OS (pkg/pod/memtrim.go, 5 s
		// after the last start) and the probes have run several rounds.
		v, note = rss()
		record(b, "rss-50-rest", fmt.Sprintf("daemon RSS, 50 pods, after the %s idle window", idle.Round(time.Second)), "MiB", v, "", note)
		pollCost(bc, 50)
		record(b, "cpu-idle-50", fmt.Sprintf("daemon CPU, %s idle, 50 pods with exec readiness probes (period 10 s)", idle.Round(time.Second)), "% of a CPU", pct, "",
			fmt.Sprintf("%d slices of %s; total %.2f s CPU in %.1f s (USER_HZ resolution, 10 ms)", len(pct), slice, total.Seconds(), prevT.Sub(start).Seconds()))

		add(50, 100)
		time.Sleep(time.Second)
		v, note = rss()
		record(b, "rss-100", "daemon RSS, 100 pods (readiness probe each), 1 s after all are Ready", "MiB", v, "", note)
		time.Sleep(10 * time.Second) // a measurement's wait, not readiness: the state at rest
		v, note = rss()
		record(b, "rss-100-rest", "daemon RSS, 100 pods, 10 s later", "MiB", v, "", note)
		ctrdRSS("containerd-rss-100", "containerd RSS, 100 pods")
		ns, pss = shims(d.namespace)
		record(b, "shims-100", "containerd shims of those 100 pods, total Pss", "MiB", []float64{pss}, "", fmt.Sprintf("%d shims", ns))
		pollCost(bc, 100)
		if hwm, err := procStatusKB(pid, "VmHWM"); err == nil {
			reportMu.Lock()
			report.Machine["daemon_peak_rss_footprint_MiB"] = fmt.Sprintf("%.1f", hwm/1024)
			reportMu.Unlock()
		}

		bc.waitTraps(nil)
		for name := range names {
			if err := os.Remove(filepath.Join(d.manifests, name+".yaml")); err != nil {
				t.Fatal(err)
			}
		}
		var ul []string
		for _, u := range uids {
			ul = append(ul, u)
		}
		t2 := time.Now()
		t3 := bc.poll(5*time.Minute, pollBurst, "100 pods gone", func() (bool, string) { return bc.gone(names, ul) })
		record(b, "probe100-gone", "100 pods removed at once → all gone", "ms", []float64{ms(t3.Sub(t2))}, "", "")
		if left := d.leftovers(); len(left) > 0 {
			t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
		}
	})
}

// ---- output ----

func fmtVal(v float64, unit string) string {
	switch unit {
	case "ms":
		if v >= 10000 {
			return fmt.Sprintf("%.2f s", v/1000)
		}
		return fmt.Sprintf("%.0f ms", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "% of a CPU":
		return fmt.Sprintf("%.2f %%", v)
	}
	return fmt.Sprintf("%.2f %s", v, unit)
}

func printReport(w io.Writer) {
	reportMu.Lock()
	defer reportMu.Unlock()
	fmt.Fprintf(w, "\nminipod benchmark, %s (%s)\n", report.Started.Format(time.RFC3339), report.Finished.Sub(report.Started).Round(time.Second))
	keys := make([]string, 0, len(report.Machine))
	for k := range report.Machine {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, report.Machine[k])
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| %-78s | %4s | %9s | %9s | %9s | %9s | %7s |\n", "figure", "runs", "median", "p95", "max", "floor", "×floor")
	fmt.Fprintf(w, "|%s|%s:|%s:|%s:|%s:|%s:|%s:|\n", strings.Repeat("-", 80), strings.Repeat("-", 5), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 10), strings.Repeat("-", 8))
	for _, f := range report.Figures {
		floor, ratio := "", ""
		if fl := figures[f.Floor]; fl != nil {
			floor = fmtVal(fl.Median, fl.Unit)
			ratio = fmt.Sprintf("%.2f", f.Ratio)
		}
		fmt.Fprintf(w, "| %-78s | %4d | %9s | %9s | %9s | %9s | %7s |\n", f.Name, f.Runs, fmtVal(f.Median, f.Unit), fmtVal(f.P95, f.Unit), fmtVal(f.Max, f.Unit), floor, ratio)
	}
	for _, f := range report.Figures {
		if f.Note != "" {
			fmt.Fprintf(w, "  %s: %s\n", f.Key, f.Note)
		}
	}
	fmt.Fprintf(w, "\nwhere the time goes (medians)\n\n| %-92s | %4s | %9s | %9s |\n|%s|%s:|%s:|%s:|\n", "phase", "runs", "median", "p95",
		strings.Repeat("-", 94), strings.Repeat("-", 5), strings.Repeat("-", 10), strings.Repeat("-", 10))
	for _, f := range report.Phases {
		fmt.Fprintf(w, "| %-92s | %4d | %9s | %9s |\n", f.Name, f.Runs, fmt.Sprintf("%.1f ms", f.Median), fmt.Sprintf("%.1f ms", f.P95))
	}
	fmt.Fprintf(w, "\nCPU used (USER_HZ resolution, 10 ms)\n\n| %-92s | %4s | %9s | %9s |\n|%s|%s:|%s:|%s:|\n", "what", "runs", "median", "p95",
		strings.Repeat("-", 94), strings.Repeat("-", 5), strings.Repeat("-", 10), strings.Repeat("-", 10))
	for _, f := range report.CPU {
		fmt.Fprintf(w, "| %-92s | %4d | %9s | %9s |\n", f.Name, f.Runs, fmt.Sprintf("%.1f ms", f.Median), fmt.Sprintf("%.1f ms", f.P95))
	}
	keys = keys[:0]
	for k := range report.Polling {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "\npolling:")
	for _, k := range keys {
		fmt.Fprintf(w, "  %s: %s\n", k, report.Polling[k])
	}
}

func writeReport() error {
	path := os.Getenv("MINIPOD_BENCH_JSON")
	if path == "" {
		path = filepath.Join("..", "..", "bench.json")
	}
	reportMu.Lock()
	data, err := json.MarshalIndent(report, "", "  ")
	reportMu.Unlock()
	if err != nil {
		return err
	}
	abs, _ := filepath.Abs(path)
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", abs)
	return nil
}
