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
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/minipod/minipod/pkg/airgap"
	"github.com/minipod/minipod/pkg/api"
	"github.com/minipod/minipod/pkg/imagebuild"
	"github.com/minipod/minipod/pkg/pod"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/source"
	"github.com/minipod/minipod/pkg/status"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type options struct {
	manifestDir  string
	stateDir     string
	socket       string
	socketGroup  int
	containerd   string
	namespace    string
	cniConfDir   string
	cniBinDir    string
	logDir       string
	netnsDir     string
	pauseImage   string
	pauseBinary  string
	bridge       string
	podCIDR      string
	backoffInit  time.Duration
	backoffMax   time.Duration
	resync       time.Duration
	logLevel     string
	authFile     string
	imageDir     string
	insecurePerm bool
	configMapDir string
	secretDir    string
	printVersion bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("minipod", flag.ContinueOnError)
	fs.StringVar(&o.manifestDir, "manifest-dir", "/etc/minipod/manifests", "directory of Pod manifests (.yaml, .yml, .json)")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/minipod", "directory for minipod's own state")
	fs.StringVar(&o.socket, "socket", api.DefaultSocket, "unix socket of the API")
	fs.IntVar(&o.socketGroup, "socket-group", -1, "numeric group allowed to use the API socket (mode 0660); -1 means root only (0600)")
	fs.StringVar(&o.containerd, "containerd-address", "/run/containerd/containerd.sock", "containerd socket")
	fs.StringVar(&o.namespace, "containerd-namespace", "minipod", "containerd namespace for minipod's containers")
	fs.StringVar(&o.cniConfDir, "cni-conf-dir", "/etc/cni/net.d", "CNI configuration directory; without a config the built-in bridge network is used")
	fs.StringVar(&o.cniBinDir, "cni-bin-dir", "/opt/cni/bin:/usr/lib/cni", "CNI plugin search path")
	fs.StringVar(&o.logDir, "log-dir", "/var/log/minipod/pods", "directory of container logs")
	fs.StringVar(&o.netnsDir, "netns-dir", "/run/netns", "where pod network namespaces are pinned")
	fs.StringVar(&o.pauseImage, "pause-image", imagebuild.DefaultPauseName, "image of the pod sandbox's pause container")
	fs.StringVar(&o.pauseBinary, "pause-binary", "", "pause program to build the pause image from when it is missing (default: minipod-pause beside this binary, then /usr/lib/minipod)")
	fs.StringVar(&o.bridge, "bridge", "minipod0", "bridge of the built-in network")
	fs.StringVar(&o.podCIDR, "pod-cidr", "10.88.0.0/16", "subnet of the built-in network")
	fs.DurationVar(&o.backoffInit, "backoff-initial", pod.DefaultBackoff.Initial, "first crash-loop restart delay")
	fs.DurationVar(&o.backoffMax, "backoff-max", pod.DefaultBackoff.Max, "maximum crash-loop restart delay")
	fs.DurationVar(&o.resync, "resync", 20*time.Second, "period of the full manifest re-list")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.imageDir, "image-import-dir", "", "directory whose image archives (OCI or docker-archive tars, optionally gzip or zstd) are imported at start and when they appear; default <state-dir>/images, \"off\" to disable")
	fs.StringVar(&o.configMapDir, "configmap-dir", "/etc/minipod/configmaps", "local configMaps: NAME/KEY files, for configMap volumes, configMapKeyRef and envFrom")
	fs.StringVar(&o.secretDir, "secret-dir", "/etc/minipod/secrets", "local secrets: NAME/KEY files (keep it root-only)")
	fs.BoolVar(&o.insecurePerm, "insecure-manifest-perms", false, "accept manifests and a manifest dir that users other than root can write")
	fs.StringVar(&o.authFile, "auth-file", "/etc/minipod/auth.json", "registry credentials (Docker config format); $HOME/.docker/config.json is read when it is missing")
	fs.BoolVar(&o.printVersion, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if o.backoffInit <= 0 || o.backoffMax < o.backoffInit {
		return nil, fmt.Errorf("--backoff-initial must be > 0 and <= --backoff-max")
	}
	return o, nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "minipod:", err)
		os.Exit(2)
	}
	if o.printVersion {
		fmt.Println("minipod", version)
		return
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "minipod: --log-level:", err)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("minipod failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o *options, log *slog.Logger) error {
	for _, d := range []string{o.stateDir, o.logDir, o.manifestDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	rt, err := connect(ctx, o, log)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := ensurePauseImage(ctx, rt, o.pauseImage, o.pauseBinary, log); err != nil {
		return err
	}
	network, err := sandbox.NewNetwork(sandbox.NetworkConfig{
		ConfDir:  o.cniConfDir,
		BinDirs:  filepath.SplitList(o.cniBinDir),
		StateDir: filepath.Join(o.stateDir, "cni"),
		Bridge:   o.bridge,
		Subnet:   o.podCIDR,
	})
	if err != nil {
		return err
	}
	log.Info("network", "source", network.Source(), "name", network.Name())

	hostname, _ := os.Hostname()
	mgr := pod.NewManager(pod.Config{
		Runtime:      rt,
		Network:      network,
		StateDir:     o.stateDir,
		LogDir:       o.logDir,
		NetNSDir:     o.netnsDir,
		PauseImage:   o.pauseImage,
		CgroupRoot:   "/" + o.namespace,
		SeccompDir:   filepath.Join(o.stateDir, "seccomp"),
		ConfigMapDir: o.configMapDir,
		SecretDir:    o.secretDir,
		NodeName:     hostname,
		HostIP:       hostIP(),
		ResolvConf:   sandbox.HostResolvConf(),
		Backoff:      pod.Backoff{Initial: o.backoffInit, Max: o.backoffMax},
		Credentials:  registryCredentials(o.authFile, log),
		Log:          log,
	})
	var airgapper *airgap.Watcher
	if o.imageDir != "off" {
		dir := o.imageDir
		if dir == "" {
			dir = filepath.Join(o.stateDir, "images")
		}
		airgapper = airgap.New(airgap.Config{
			Dir: dir, Record: filepath.Join(o.stateDir, "images-imported.json"), Importer: rt, Log: log,
			Imported: func([]string) { mgr.ImagesChanged() },
		})
		// Images present before pods start: pods that need them do not fail first.
		airgapper.ImportAll(ctx)
	}
	view := status.NewView(mgr.List)
	src := source.New(source.Config{Dir: o.manifestDir, Resync: o.resync, Log: log, InsecurePerms: o.insecurePerm})
	srv := api.NewServer(view, mgr, log)
	srv.SetHealth(func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if _, err := rt.Version(ctx); err != nil {
			return fmt.Errorf("containerd is not answering at %s", o.containerd)
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
			view.SetProblems(s.Problems)
			mgr.Update(s.Pods)
		})
	}()
	mode := os.FileMode(0o600)
	if o.socketGroup >= 0 {
		mode = 0o660
	}
	go func() { errc <- srv.ServeUnix(ctx, o.socket, mode, o.socketGroup) }()
	if err := waitForSocket(ctx, o.socket); err != nil {
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
	_, _ = daemon.SdNotify(false, daemon.SdNotifyReady+"\n"+statusLine(view))
	log.Info("minipod ready", "version", version, "socket", o.socket, "manifests", o.manifestDir)
	go notifyLoop(ctx, mgr, view, log)

	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	_, _ = daemon.SdNotify(false, daemon.SdNotifyStopping)
	cancel()
	log.Info("minipod stopping; pods keep running")
	return err
}

// notifyLoop keeps systemd informed: STATUS= with pod counts, and WATCHDOG=1 at half the
// watchdog interval, but only while the pod manager's loop is alive, so that a hung daemon is
// restarted rather than kept alive by a healthy side goroutine.
func notifyLoop(ctx context.Context, mgr *pod.Manager, view *status.View, log *slog.Logger) {
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
		// The manager's loop beats every second: allow a few beats even with a short interval.
		if interval > 0 && mgr.Alive(max(interval, 3*time.Second)) {
			msg = daemon.SdNotifyWatchdog + "\n" + msg
		}
		_, _ = daemon.SdNotify(false, msg)
	}
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
// without a restart of the daemon.
func registryCredentials(path string, log *slog.Logger) runtime.Credentials {
	paths := []string{path}
	if home, err := os.UserHomeDir(); err == nil {
		paths = append(paths, filepath.Join(home, ".docker", "config.json"))
	}
	return func(host string) (string, string, bool) {
		creds, err := runtime.AuthFile(paths...)
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

// connect waits for containerd, retrying with backoff: at boot minipod may start first.
func connect(ctx context.Context, o *options, log *slog.Logger) (*runtime.Runtime, error) {
	delay := 200 * time.Millisecond
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rt, err := runtime.New(cctx, runtime.Config{Address: o.containerd, Namespace: o.namespace})
		cancel()
		if err == nil {
			v, _ := rt.Version(ctx)
			log.Info("connected to containerd", "address", o.containerd, "version", v)
			return rt, nil
		}
		log.Warn("containerd not answering, retrying", "address", o.containerd, "err", err, "in", delay)
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
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "minipod-pause"))
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
var _ pod.Network = (*sandbox.Network)(nil)
var _ api.Store = (*status.View)(nil)
