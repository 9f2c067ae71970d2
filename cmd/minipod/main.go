// Command minipod is the daemon: it runs the Kubernetes v1 Pods found in a manifest directory on
// containerd, keeps them as their restartPolicy says, and serves their status on a unix socket.
// This file only parses flags and wires the packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/airgap"
	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/apparmor"
	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/imagebuild"
	"github.com/minipod/minipod/pkg/imagegc"
	"github.com/minipod/minipod/pkg/logs"
	"github.com/minipod/minipod/pkg/manifest"
	"github.com/minipod/minipod/pkg/metrics"
	"github.com/minipod/minipod/pkg/pod"
	"github.com/minipod/minipod/pkg/policy"
	"github.com/minipod/minipod/pkg/reclaim"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/source"
	"github.com/minipod/minipod/pkg/status"
	"github.com/minipod/minipod/pkg/volume"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// gcPercent is the daemon's GOGC unless the environment sets one. The live heap is small and
// steady (about 5 MB at 50 pods: pod specs, status, buffers), so the default 100 mostly buys
// garbage headroom. At rest a collection of so small a heap costs a few milliseconds every
// several seconds; 25 keeps about 1.5 MB less resident at 50 pods than 50 did, which kept
// about 4 MB less than 100 (docs/performance.md).
const gcPercent = 25

// daemonProcs is how many threads may run the daemon's Go code at once, given how many the Go
// runtime would use (the CPUs it may run on): a quarter of them, at least one. The daemon's own
// work is under a tenth of a pod start's CPU on the node (about 20 ms a pod against runc's, the
// shims', containerd's and the CNI plugins' 150 ms or more), so a quarter keeps it from holding
// a burst up. Fewer Ps matter most at rest, where each probe's few calls to containerd hand
// work between the gRPC goroutines: with an idle P the Go scheduler likely wakes another thread
// to look for work at each hand-off. On 2 CPUs one P cut the daemon's idle CPU with 50 probing
// pods from 0.78 to 0.68 % and its CPU per pod in a 20-pod burst by about a fifth; 1-container
// starts were as fast, 3-container starts about 3 % slower (docs/performance.md).
func daemonProcs(runtimeDefault int) int {
	return max(1, runtimeDefault/4)
}

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		goruntime.GOMAXPROCS(daemonProcs(goruntime.GOMAXPROCS(0)))
	}
	cfg, printConfig, err := config.Load(os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, config.ErrVersion):
		fmt.Println("minipod", version)
		return
	case err != nil:
		fmt.Fprintln(os.Stderr, "minipod:", err)
		os.Exit(2)
	}
	if printConfig {
		out, err := cfg.YAML()
		if err != nil {
			fmt.Fprintln(os.Stderr, "minipod:", err)
			os.Exit(1)
		}
		os.Stdout.Write(out)
		return
	}
	log := newLogger(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, &cfg, log); err != nil {
		log.Error("minipod failed", "err", err)
		os.Exit(1)
	}
}

// newLogger writes to stderr; under systemd (JOURNAL_STREAM set) without timestamps of its
// own, since the journal stamps every line.
func newLogger(cfg config.Config) *slog.Logger {
	if os.Getenv("JOURNAL_STREAM") == "" {
		return cfg.NewLogger(os.Stderr)
	}
	opts := &slog.HandlerOptions{Level: cfg.Level(), ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	if cfg.LogFormat == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func run(ctx context.Context, o *config.Config, log *slog.Logger) error {
	for _, d := range []string{o.StateDir, o.LogDir, o.ManifestDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if err := chooseContainerd(ctx, o, log); err != nil {
		return err
	}
	rt, err := connect(ctx, o, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := ensurePauseImage(ctx, rt, o.PauseImage, o.PauseBinary, log); err != nil {
		return err
	}
	network, err := sandbox.NewNetwork(sandbox.NetworkConfig{
		ConfDir:  o.CNIConfDir,
		BinDirs:  filepath.SplitList(o.CNIBinDir),
		StateDir: filepath.Join(o.StateDir, "cni"),
		Bridge:   o.Bridge,
		Subnet:   o.PodCIDR,
		Log:      log,
	})
	if err != nil {
		return err
	}
	log.Info("network", "source", network.Source(), "name", network.Name())
	// The built-in network's one masquerade rule for the pod CIDR: ensured now, kept while
	// the daemon runs, left in place when it stops (pods outlive the daemon).
	network.StartMasquerade(ctx)

	if !o.InsecureManifestPerms {
		// Secrets must be root's alone; pods that use one that is not are refused (see
		// pkg/volume): say so at start too.
		for _, err := range volume.ScanSecrets(o.SecretDir) {
			log.Warn("secret not used: insecure permissions", "err", err)
		}
	}
	hostname, _ := os.Hostname()
	recorder := events.NewRecorder(1000)
	recorder.SetHost(hostname)
	mets := metrics.New()
	// The manifest files' ConfigMaps and Secrets, in memory only; pods read them before the
	// directories', once the files were first read.
	objects := source.NewObjects()
	var mgr *pod.Manager
	gc := imagegc.New(imagegc.Config{
		Store:     rt,
		Policy:    gcPolicy(o),
		Root:      imageFSRoot(ctx, o, rt, log),
		InUse:     func() (map[string][]string, bool) { return mgr.ImagesInUse() },
		Protected: []string{o.PauseImage},
		Events:    recorder,
		Metrics:   mets,
		Log:       log.With("component", "imagegc"),
	})
	mgr = pod.NewManager(pod.Config{
		Runtime:      pullKicker{Runtime: rt, kick: gc.Kick},
		Network:      network,
		StateDir:     o.StateDir,
		LogDir:       o.LogDir,
		NetNSDir:     o.NetNSDir,
		PauseImage:   o.PauseImage,
		CgroupRoot:   "/" + o.ContainerdNamespace,
		SeccompDir:   filepath.Join(o.StateDir, "seccomp"),
		ConfigMapDir: o.ConfigMapDir,
		SecretDir:    o.SecretDir,
		Objects:      objects,
		NodeName:     hostname,
		HostIP:       hostIP(),
		ResolvConf:   sandbox.HostResolvConf(),
		Backoff:      pod.Backoff{Initial: o.BackoffInitial.D(), Max: o.BackoffMax.D()},
		Updates:      o.Updates,
		LogRotation:  logs.Rotation{MaxSize: o.ContainerLogMaxSize.Bytes(), MaxFiles: o.ContainerLogMaxFiles},
		Credentials:  registryCredentials(o.AuthFile, o.InsecureManifestPerms, log),
		Events:       recorder,
		Metrics:      mets,
		Log:          log,

		// One escape for both: --insecure-manifest-perms also accepts secrets others can read.
		InsecureSecretPerms: o.InsecureManifestPerms,
		// Enforced again where hostPath volumes are mounted: links a pod plants there.
		AllowedHostPaths: o.Policy.AllowedHostPaths,
		AllowedDevices:   o.Policy.AllowedDevices,
	})
	var airgapper *airgap.Watcher
	dir, importImages := o.ImageDir()
	if importImages && !o.InsecureManifestPerms {
		// Whoever can write an archive there chooses the images pods run: the directory and
		// its archives are checked as manifests are. One that fails is not used at all, for
		// this run of the daemon; the pods keep being run (images they lack fail to pull).
		if err := config.CheckImageDir(dir); err != nil {
			log.Error("image import dir not used: insecure permissions", "err", err)
			importImages = false
		}
	}
	if importImages {
		airgapper = airgap.New(airgap.Config{
			Dir: dir, Record: filepath.Join(o.StateDir, "images-imported.json"), Importer: rt, Log: log,
			Imported: func([]string) { mgr.ImagesChanged() },
			Check:    archiveCheck(o.InsecureManifestPerms),
		})
		// Images present before pods start: pods that need them do not fail first.
		airgapper.ImportAll(ctx)
	}
	view := status.NewView(mgr.List)
	view.SetEvents(recorder) // refused manifests (policy, validation, conflicts) as Warning events
	scfg := source.Config{Dir: o.ManifestDir, Resync: o.Resync.D(), Log: log, InsecurePerms: o.InsecureManifestPerms,
		ConfigMapDir: o.ConfigMapDir, SecretDir: o.SecretDir}
	// Every pod passes the node policy (even an empty one refuses sysctls outside the
	// kubelet's safe set), then the kubelet's AppArmor admission: no profile where AppArmor is
	// not enabled.
	pol := o.Policy
	aa := apparmor.System() // read once, as by the kubelet
	scfg.Admit = func(p *corev1.Pod) error {
		if err := pol.Admit(p); err != nil {
			return &manifest.Error{Reason: policy.ReasonOf(err), Message: err.Error()}
		}
		if err := aa.Admit(p); err != nil {
			return &manifest.Error{Reason: apparmor.Reason, Message: err.Error()}
		}
		return nil
	}
	if !pol.Unset() {
		log.Info("node policy", "policy", pol.String())
	}
	log.Info("apparmor", "enabled", aa.Enabled, "supported", aa.Supported)
	src := source.New(scfg)
	srv := api.NewServer(view, mgr, log)
	srv.SetEvents(recorder)
	srv.SetRollouts(mgr)
	srv.SetImages(imagesAPI{gc})
	metricsHandler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		updateGauges(mets, view)
		mets.Handler().ServeHTTP(w, r)
	})
	srv.Handle("GET /metrics", metricsHandler)
	// Go's profiler, on the root-only socket only: where the CPU and memory go, on a live node.
	srv.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
	srv.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	srv.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	srv.SetHealth(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := rt.Version(ctx); err != nil {
			return fmt.Errorf("containerd is not answering at %s", o.ContainerdAddress)
		}
		return nil
	})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 3)
	go func() { errc <- mgr.Run(ctx) }()
	if airgapper != nil {
		go func() {
			if err := airgapper.Run(ctx); err != nil {
				log.Error("image import dir", "err", err)
			}
		}()
	}
	go func() {
		errc <- src.Run(ctx, func(s source.Snapshot) {
			// Objects first: a pod of this snapshot finds the objects of its file.
			objects.Set(s)
			view.SetProblems(s.Problems)
			mgr.Update(s.Pods)
		})
	}()
	mode := os.FileMode(0o600)
	if o.SocketGroup >= 0 {
		mode = 0o660
	}
	go func() { errc <- srv.ServeUnix(ctx, o.Socket, mode, o.SocketGroup) }()
	if o.MetricsAddress != "" {
		// Opt-in TCP endpoint for Prometheus; config validation keeps it on loopback unless
		// metrics-allow-non-loopback says otherwise.
		ln, err := net.Listen("tcp", o.MetricsAddress)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		msrv := &http.Server{Handler: metricsHandler, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = msrv.Serve(ln) }()
		go func() { <-ctx.Done(); _ = msrv.Close() }()
		log.Info("metrics listening", "address", ln.Addr().String())
	}
	if err := waitForSocket(ctx, o.Socket); err != nil {
		return err
	}
	// Ready means: the API serves and the pods that ran before are adopted.
	select {
	case <-mgr.Adopted():
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
	// Images are collected once the desired pods are known and adopted; logs are capped from
	// now on. Both loops end with ctx.
	go func() { _ = gc.Run(ctx) }()
	logCap := &logs.Cap{Dir: o.LogDir, Max: o.ContainerLogMaxTotalSize.Bytes(), Log: log.With("component", "logcap"), Metrics: mets}
	go func() { _ = logCap.Run(ctx) }()
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady+"\n"+statusLine(view))
	log.Info("minipod ready", "version", version, "socket", o.Socket, "manifests", o.ManifestDir)
	// Start-up is over: Go's package initialisation touched nearly all of the executable, and a
	// first pause image import leaves megabytes of garbage. Neither is needed again.
	reclaim.Release()
	go notifyLoop(ctx, []alive{mgr, src}, view, log)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	cancel()
	log.Info("minipod stopping; pods keep running")
	return err
}

// alive is a loop the systemd watchdog watches: the pod manager's, the manifest source's.
type alive interface {
	// Alive reports whether the loop turned within d.
	Alive(d time.Duration) bool
}

// archiveCheck vets an image archive as it is opened: one changed after the start-up check of
// the image directory must still be root's and not writable by others.
func archiveCheck(insecure bool) func(string, os.FileInfo) error {
	if insecure {
		return nil
	}
	return func(path string, info os.FileInfo) error {
		return config.CheckPerms("image archive", path, info, false)
	}
}

// notifyLoop keeps systemd informed: STATUS= with pod counts, and WATCHDOG=1 at half the
// watchdog interval, but only while every loop in loops is alive (the pod manager's, and the
// source's, which a manifest read that hangs would stop), so that a hung daemon is restarted
// rather than kept alive by a healthy side goroutine.
func notifyLoop(ctx context.Context, loops []alive, view *status.View, log *slog.Logger) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog settings", "err", err)
	}
	period := 10 * time.Second
	if interval > 0 {
		period = interval / 2
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msg := statusLine(view)
		// The loops beat every second: allow a few beats even with a short interval.
		if interval > 0 && allAlive(loops, max(interval, 3*time.Second)) {
			msg = daemon.SdNotifyWatchdog + "\n" + msg
		}
		_, _ = daemon.SdNotify(false, msg)
	}
}

// allAlive reports whether every loop turned within d.
func allAlive(loops []alive, d time.Duration) bool {
	for _, l := range loops {
		if !l.Alive(d) {
			return false
		}
	}
	return true
}

// updateGauges sets the pod and container gauges from the current view, at scrape time.
func updateGauges(m *metrics.Metrics, view *status.View) {
	pods := map[string]int{}
	ctrs := map[string]int{}
	for _, p := range view.List() {
		if p.Status.Reason != "" {
			continue // a manifest problem, not a pod
		}
		pods[string(p.Status.Phase)]++
		for _, c := range p.Status.ContainerStatuses {
			switch {
			case c.State.Running != nil:
				ctrs["running"]++
			case c.State.Terminated != nil:
				ctrs["exited"]++
			default:
				ctrs["created"]++
			}
		}
	}
	m.SetPods(pods)
	m.SetContainers(ctrs)
}

// statusLine is the STATUS= line systemctl status shows.
func statusLine(view *status.View) string {
	running, problems, total := 0, 0, 0
	for _, p := range view.List() {
		total++
		switch {
		case p.Status.Reason != "":
			problems++
		case p.Status.Phase == "Running":
			running++
		}
	}
	return fmt.Sprintf("STATUS=%d pods, %d running, %d manifests with problems", total-problems, running, problems)
}

// registryCredentials reads the auth file at every pull, so that credentials can change
// without a restart of the daemon. Unless insecure, a file must be root's and give group and
// others no access (config.CheckPerms): one that is not is not used, and the daemon says so
// at start and at each pull.
func registryCredentials(path string, insecure bool, log *slog.Logger) runtime.Credentials {
	paths := []string{path}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".docker", "config.json"))
	}
	var check func(string, os.FileInfo) error
	if !insecure {
		check = func(p string, info os.FileInfo) error {
			return config.CheckPerms("registry auth file", p, info, true)
		}
	}
	if _, err := runtime.AuthFile(check, paths...); err != nil {
		log.Error("registry credentials not used", "err", err)
	}
	return func(host string) (string, string, bool) {
		creds, err := runtime.AuthFile(check, paths...)
		if err != nil {
			log.Warn("registry credentials unreadable", "err", err)
			return "", "", false
		}
		if creds == nil {
			return "", "", false
		}
		return creds(host)
	}
}

// chooseContainerd decides which containerd to use: with --containerd=auto the one at
// --containerd-address when it answers, else a managed one when a containerd binary is on
// PATH; "external" always the address; "managed" always minipod's own. For a managed one it
// points o.ContainerdAddress at it.
func chooseContainerd(ctx context.Context, o *config.Config, log *slog.Logger) error {
	if o.Containerd == config.ContainerdExternal {
		return nil
	}
	if o.Containerd == config.ContainerdAuto && runtime.Answers(ctx, o.ContainerdAddress, o.ContainerdNamespace, 2*time.Second) {
		return nil
	}
	root, state, addr := runtime.ManagedPaths(o.StateDir, filepath.Dir(o.Socket))
	if runtime.Answers(ctx, addr, o.ContainerdNamespace, 2*time.Second) {
		// Ours, left running by an earlier run of the daemon.
		log.Info("using the managed containerd already running", "address", addr)
		o.ContainerdAddress = addr
		return nil
	}
	bin, err := exec.LookPath("containerd")
	if err != nil {
		if o.Containerd == config.ContainerdManaged {
			return fmt.Errorf("--containerd=managed: %w", err)
		}
		log.Warn("no containerd answers and none is installed; waiting for one", "address", o.ContainerdAddress)
		return nil
	}
	m := &runtime.Managed{Binary: bin, Root: root, State: state, Address: addr, Log: log}
	if err := m.Run(ctx); err != nil {
		return err
	}
	o.ContainerdAddress = addr
	return nil
}

// connect waits for containerd, retrying with backoff: at boot minipod may start first.
func connect(ctx context.Context, o *config.Config, log *slog.Logger) (*runtime.Runtime, error) {
	delay := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rt, err := runtime.New(cctx, runtime.Config{Address: o.ContainerdAddress, Namespace: o.ContainerdNamespace})
		cancel()
		if err == nil {
			v, _ := rt.Version(ctx)
			log.Info("connected to containerd", "address", o.ContainerdAddress, "version", v)
			return rt, nil
		}
		log.Warn("containerd not answering, retrying", "address", o.ContainerdAddress, "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// ensurePauseImage imports the project's own pause image when containerd lacks it, built from
// the minipod-pause program: no registry is needed.
func ensurePauseImage(ctx context.Context, rt *runtime.Runtime, ref, binary string, log *slog.Logger) error {
	_, err := rt.GetImage(ctx, ref)
	if err == nil {
		return nil
	}
	if !errors.Is(err, runtime.ErrImageNotFound) {
		return err
	}
	if ref != imagebuild.DefaultPauseName && binary == "" {
		return fmt.Errorf("pause image %s is not present: import it, or leave --pause-image at its default", ref)
	}
	bin, err := findPause(binary)
	if err != nil {
		return err
	}
	img, err := imagebuild.Pause(ref, bin)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(imagebuild.WriteOCI(pw, img)) }()
	if _, err := rt.Import(ctx, pr); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("import pause image: %w", err)
	}
	log.Info("imported pause image", "image", ref, "from", bin)
	return nil
}

func findPause(flagPath string) (string, error) {
	candidates := []string{flagPath}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		candidates = append(candidates, filepath.Join(dir, "minipod-pause"), filepath.Join(dir, "..", "lib", "minipod", "minipod-pause"))
	}
	candidates = append(candidates, "/usr/lib/minipod/minipod-pause", "/usr/libexec/minipod/minipod-pause")
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if st, err := os.Stat(c); err == nil && st.Mode().IsRegular() {
			return c, nil
		}
	}
	return "", fmt.Errorf("pause image missing and no minipod-pause program found (looked at %s)", strings.Join(candidates[1:], ", "))
}

func waitForSocket(ctx context.Context, path string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("unix", path)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("API socket %s did not come up: %w", path, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// hostIP is the first IPv4 address of the interface that holds the default route, as the
// kubelet reports it; "" when there is none. It reads the routing table and sends nothing.
func hostIP() string {
	data, err := os.ReadFile("/proc/net/route")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 2 || f[1] != "00000000" {
			continue
		}
		ifc, err := net.InterfaceByName(f[0])
		if err != nil {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				return n.IP.String()
			}
		}
	}
	return ""
}

var _ pod.Runtime = (*runtime.Runtime)(nil)
var _ pod.Runtime = pullKicker{}
var _ imagegc.Store = (*runtime.Runtime)(nil)
var _ api.Images = imagesAPI{}
var _ pod.Network = (*sandbox.Network)(nil)
var _ api.Store = (*status.View)(nil)
var _ volume.Objects = (*source.Objects)(nil)
