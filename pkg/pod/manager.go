// Package pod turns desired pods into running ones. The Manager receives complete snapshots of
// the desired set and runs one worker goroutine per pod identity (namespace/name); each worker
// owns its pod's sandbox and containers, restarts them as the restart policy says, and
// publishes the pod's status. Decisions (restart, backoff, phase) are pure functions in
// decide.go; side effects stay in the worker.
package pod

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/logs"
	"github.com/minipod/minipod/pkg/metrics"
	"github.com/minipod/minipod/pkg/probe"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/userns"
	"github.com/minipod/minipod/pkg/volume"
)

// Runtime is what workers need from containerd, in three parts.
type Runtime interface {
	Images
	Containers
	Execer
}

// Images finds and pulls images, and keeps what a start is made of while it is made.
type Images interface {
	GetImage(ctx context.Context, ref string) (runtime.Image, error)
	Pull(ctx context.Context, ref string, creds runtime.Credentials, progress *runtime.PullProgress) (runtime.Image, error)
	PrepareRootfs(ctx context.Context, lease, id, ref string) (runtime.Image, error)
	NewLease(ctx context.Context) (string, error)
	DeleteLease(ctx context.Context, id string) error
	DeleteLeases(ctx context.Context) error
}

// Containers makes, runs, finds and removes containers and their tasks.
type Containers interface {
	CreateContainer(ctx context.Context, cfg runtime.ContainerConfig) error
	ProcessUser(ctx context.Context, id string) (runtime.ProcessUser, error)
	Start(ctx context.Context, id string, stdio *runtime.Stdio) (uint32, runtime.ExitWatch, error)
	Task(ctx context.Context, id string, stdio *runtime.Stdio) (runtime.TaskState, error)
	Signal(ctx context.Context, id string, sig syscall.Signal) error
	Remove(ctx context.Context, id string) error
	List(ctx context.Context, labels map[string]string) ([]runtime.Container, error)
	SetLabel(ctx context.Context, id, key, value string) error
	RemoveSnapshots(ctx context.Context, prefix string, earlier bool) error
	WatchOOM(ctx context.Context, fn func(id string))
}

// Execer runs commands in running containers: probes, hooks and the API's exec.
type Execer interface {
	Exec(ctx context.Context, id string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	ExecOutput(ctx context.Context, id string, cmd []string, dir string, limit int) (int, []byte, error)
}

// Network is what workers need from CNI.
type Network interface {
	Setup(ctx context.Context, a sandbox.Attachment) ([]string, error)
	Teardown(ctx context.Context, a sandbox.Attachment) error
	CachedIPs(a sandbox.Attachment) []string
}

// Config wires a Manager.
type Config struct {
	Runtime    Runtime
	Network    Network
	StateDir   string // pods/<uid>/ holds each pod's sandbox record and files
	LogDir     string
	NetNSDir   string
	PauseImage string
	CgroupRoot string // pods' cgroups are CgroupRoot/pod<uid>/<container>
	SeccompDir string // Localhost seccomp profiles
	// ConfigMapDir and SecretDir hold local configMaps and secrets as NAME/KEY files.
	ConfigMapDir, SecretDir string
	// Objects are the ConfigMaps and Secrets of the manifest files, used before those of
	// ConfigMapDir and SecretDir (volume.Lookup); nil when there are none.
	Objects volume.Objects
	// InsecureSecretPerms uses secrets whatever their owner and mode; otherwise they must be
	// root's alone (volume.CheckSecretDir, volume.ReadSecretFile).
	InsecureSecretPerms bool
	// AllowedHostPaths is the node policy's allowedHostPaths (nil: any host path); hostPath
	// volumes are opened and mounted only below them (volume.Config.AllowedHostPaths).
	AllowedHostPaths []string
	// AllowedDevices is the node policy's allowedDevices (nil: unset, any device node a
	// hostPath may name); checked on what a hostPath volume really mounts.
	AllowedDevices []string
	// Updates says whether failed updates are rolled back, and how long one may take to become
	// Ready; a pod's annotations override it.
	Updates config.Updates
	// Credentials for registries; nil means anonymous pulls.
	Credentials runtime.Credentials
	// Events and Metrics may be nil.
	Events     *events.Recorder
	Metrics    *metrics.Metrics
	NodeName   string
	HostIP     string
	ResolvConf []byte
	Backoff    Backoff
	// LogRotation limits each container attempt's log; zero means logs.DefaultRotation.
	LogRotation logs.Rotation
	// StartSlots bounds the pods being started at once (0: StartSlots(NumCPU)); CNISlots the
	// CNI operations at once (0: CNISlots(NumCPU)).
	StartSlots, CNISlots int
	Log                  *slog.Logger
}

// Manager runs the pod workers. Create it with NewManager, start Run, then feed it with Update.
type Manager struct {
	cfg     Config
	dirs    Dirs
	log     *slog.Logger
	store   store
	updates chan []*corev1.Pod
	desired atomic.Pointer[[]*corev1.Pod] // the last desired set, for ImagesInUse

	// found is what existed before this daemon started, grouped by pod key; workers take
	// their part when they start. Guarded by foundMu.
	foundMu sync.Mutex
	found   map[string][]found

	pulls  pulls
	images chan struct{} // new images arrived
	probes *probe.Manager

	// adopted is closed once the pods found at start are adopted (or torn down); heartbeat
	// is the unix time in ns of the manager loop's last turn, for the systemd watchdog.
	adopted   chan struct{}
	adoptWG   sync.WaitGroup
	heartbeat atomic.Int64

	// oomed holds the IDs of containers the OOM killer hit, until their exit is handled.
	oomed sync.Map

	trim *memTrim // free heap back to the OS after a burst of starts and stops

	startSlots chan struct{} // see StartSlots
	cni        semaphore     // see CNISlots

	// rollouts holds each pod's api.Rollout snapshot by key, for the API; retries carries
	// the keys of `minipodctl rollout retry` to the manager loop, which tells the worker.
	rollouts sync.Map
	retries  chan string
	records  *recordWriter // writes the rollout records off the workers' loops
	// good holds each pod's last good version by key (a *corev1.Pod never changed), whose
	// images garbage collection keeps for a rollback.
	good sync.Map

	// userns gives pods with hostUsers: false their ID ranges (userNS).
	userns *userns.Allocator
}

// NewManager returns a Manager; nothing runs until Run.
func NewManager(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.LogRotation == (logs.Rotation{}) {
		cfg.LogRotation = logs.DefaultRotation
	}
	if cfg.Backoff == (Backoff{}) {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.StartSlots <= 0 {
		cfg.StartSlots = StartSlots(goruntime.NumCPU())
	}
	if cfg.CNISlots <= 0 {
		cfg.CNISlots = CNISlots(goruntime.NumCPU())
	}
	dirs := Dirs{State: cfg.StateDir, Log: cfg.LogDir, NetNS: cfg.NetNSDir, CgroupRoot: cfg.CgroupRoot}
	// Ranges recorded by pods of an earlier run stay theirs; a file that cannot be used is
	// left out (its pod, if it starts again, gets a new range).
	ranges, err := userns.New(dirs.podsDir(), sandbox.WriteFileAtomic)
	if err != nil {
		cfg.Log.Warn("user namespace ranges", "err", err)
	}
	return &Manager{
		cfg:        cfg,
		dirs:       dirs,
		userns:     ranges,
		log:        cfg.Log,
		updates:    make(chan []*corev1.Pod, 1),
		images:     make(chan struct{}, 1),
		adopted:    make(chan struct{}),
		probes:     probe.NewManager(probe.DefaultConcurrency),
		trim:       newMemTrim(),
		startSlots: make(chan struct{}, cfg.StartSlots),
		cni:        make(semaphore, cfg.CNISlots),
		retries:    make(chan string, 16),
		records:    newRecordWriter(cfg.Log),
	}
}

// Update hands the manager the complete desired set; an older pending set is dropped. It never
// blocks.
func (m *Manager) Update(pods []*corev1.Pod) {
	m.desired.Store(&pods)
	for {
		select {
		case m.updates <- pods:
			return
		default:
			select {
			case <-m.updates:
			default:
			}
		}
	}
}

// adoptDone is called once by each worker after its adoption step; those of the first desired
// set count towards Adopted.
func (m *Manager) adoptDone(w *worker) {
	if w.firstRound {
		m.adoptWG.Done()
	}
}

// heartbeatPeriod is how often the manager loop proves it is alive.
const heartbeatPeriod = time.Second

// Adopted is closed once every pod found in containerd at start has been adopted or torn
// down, after the first desired set arrived.
func (m *Manager) Adopted() <-chan struct{} { return m.adopted }

// Alive reports whether the manager loop turned within d: the systemd watchdog is fed only
// while it does, so that a hung daemon gets restarted.
func (m *Manager) Alive(d time.Duration) bool {
	return time.Since(time.Unix(0, m.heartbeat.Load())) < d
}

// ImagesChanged tells the workers that new images are present, so that containers waiting
// for an image try again now rather than after their backoff. It never blocks.
func (m *Manager) ImagesChanged() {
	select {
	case m.images <- struct{}{}:
	default:
	}
}

// List returns every pod the manager runs with its status and JSON, sorted by namespace and
// name. The pods are shared: read them, never change them.
func (m *Manager) List() []Encoded { return m.store.list() }

// Run blocks until ctx is cancelled. Pods keep running after it returns.
func (m *Manager) Run(ctx context.Context) error {
	// Probe and hook output files; any left by a crash are stale.
	_ = os.RemoveAll(m.execDir())
	if err := os.MkdirAll(m.execDir(), 0o700); err != nil {
		return err
	}
	// A lease left by a sandbox start that an earlier run did not finish would keep what it
	// made from containerd's garbage collector for minutes. Its containers, if any were
	// created, are adopted or torn down like any others.
	if err := m.cfg.Runtime.DeleteLeases(ctx); err != nil {
		m.log.Warn("leases of an earlier run", "err", err)
	}
	if err := m.discover(ctx); err != nil {
		return err
	}
	go m.cfg.Runtime.WatchOOM(ctx, func(id string) { m.oomed.Store(id, true) })
	go m.probes.Run(ctx)
	ws := &workers{m: m, ctx: ctx, byKey: map[string]*workerEntry{}, done: make(chan string), first: true}
	stopRecords := m.records.start()
	defer m.pulls.wait() // after the workers, whose leaving cancels the pulls
	defer stopRecords()  // writes what the workers left pending, once they are gone
	defer ws.wg.Wait()
	beat := time.NewTicker(heartbeatPeriod)
	defer beat.Stop()
	m.heartbeat.Store(time.Now().UnixNano())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-beat.C:
			m.heartbeat.Store(time.Now().UnixNano())
		case pods := <-m.updates:
			ws.apply(pods)
		case <-m.images:
			ws.wakeAll()
		case key := <-m.retries:
			if e := ws.byKey[key]; e != nil {
				e.w.inbox.post(func(w *worker) { w.retryRollout() })
			}
		case key := <-ws.done:
			ws.finished(key)
		}
	}
}

// workers is the manager loop's set of pod workers, one per pod key. Only that loop uses it.
type workers struct {
	m       *Manager
	ctx     context.Context
	byKey   map[string]*workerEntry
	desired map[string]*corev1.Pod
	done    chan string // a worker's key once its pod is gone
	first   bool        // the first desired set is yet to come
	wg      sync.WaitGroup
}

type workerEntry struct {
	w   *worker
	uid string // the UID the worker was last given; "" once told the pod is gone
}

func (ws *workers) spawn(key string, p *corev1.Pod) {
	w := newWorker(ws.m, key)
	w.firstRound = ws.first
	e := &workerEntry{w: w}
	if p != nil {
		e.uid = string(p.UID)
	}
	ws.byKey[key] = e
	w.update(p)
	ws.wg.Go(func() {
		w.run(ws.ctx)
		select {
		case ws.done <- key:
		case <-ws.ctx.Done():
		}
	})
}

// apply hands each worker its pod's new desired version, starts workers for new pods, and tells
// those whose pods are gone.
func (ws *workers) apply(pods []*corev1.Pod) {
	m := ws.m
	next := make(map[string]*corev1.Pod, len(pods))
	for _, p := range pods {
		next[Key(p.Namespace, p.Name)] = p
	}
	if ws.first {
		// Before any worker runs (and takes its part of what was found): the records of pods
		// gone while the daemon was stopped.
		m.pruneRollouts(next)
		// Every worker started now adopts what it finds before anything else. Leftovers of
		// pods that are not desired are torn down by a worker of their own, so that a new pod
		// of the same name waits for the old one to be gone.
		m.adoptWG.Add(len(next))
		for _, key := range m.foundKeys() {
			if next[key] == nil {
				m.adoptWG.Add(1)
				ws.spawn(key, nil)
			}
		}
	}
	for key, p := range next {
		e := ws.byKey[key]
		switch {
		case e == nil:
			ws.spawn(key, p)
		case e.uid != string(p.UID):
			e.uid = string(p.UID)
			e.w.update(p)
		}
	}
	if ws.first {
		ws.first = false
		go func() { m.adoptWG.Wait(); close(m.adopted) }()
	}
	for key := range ws.desired {
		if e := ws.byKey[key]; next[key] == nil && e != nil && e.uid != "" {
			e.uid = ""
			e.w.update(nil)
		}
	}
	ws.desired = next
}

// wakeAll tells every worker that images arrived.
func (ws *workers) wakeAll() {
	for _, e := range ws.byKey {
		select {
		case e.w.wake <- struct{}{}:
		default:
		}
	}
}

// finished forgets a worker whose pod is gone, and starts a new one if the pod is desired again.
func (ws *workers) finished(key string) {
	delete(ws.byKey, key)
	if p := ws.desired[key]; p != nil {
		ws.spawn(key, p)
	}
}

// discover collects what an earlier run left: containers by their labels, and sandbox records
// from the state dir (which exist from before the first containerd object of a sandbox).
func (m *Manager) discover(ctx context.Context) error {
	list, err := m.cfg.Runtime.List(ctx, nil)
	if err != nil {
		return err
	}
	byUID := map[string]*found{}
	get := func(uid string) *found {
		f := byUID[uid]
		if f == nil {
			f = &found{}
			byUID[uid] = f
		}
		return f
	}
	for _, c := range list {
		uid := c.Labels[runtime.LabelPodUID]
		if uid == "" {
			continue
		}
		f := get(uid)
		f.containers = append(f.containers, c)
		if f.rec.UID == "" {
			n := m.dirs.pod(c.Labels[runtime.LabelPodNamespace], c.Labels[runtime.LabelPodName], uid)
			f.rec = sandboxRecord{
				UID:       uid,
				Namespace: n.namespace,
				Name:      n.name,
				SandboxID: n.sandboxID(),
				Grace:     corev1.DefaultTerminationGracePeriodSeconds,
			}
		}
		if c.Labels[runtime.LabelRole] == runtime.RoleSandbox {
			f.rec.SandboxID = c.ID
			f.rec.NetNS = c.Labels[runtime.LabelNetNS]
		}
	}
	dirs, _ := os.ReadDir(m.dirs.podsDir())
	for _, d := range dirs {
		dir := filepath.Join(m.dirs.podsDir(), d.Name())
		rec, err := readRecord(dir)
		if err != nil || rec.UID == "" {
			// A directory without a usable record holds nothing that needs teardown; volumes
			// are unmounted first, so that removing it never reaches into a mount.
			if err := volume.Cleanup(dir); err != nil {
				m.log.Error("clean up volumes of a pod without a record", "dir", dir, "err", err)
				continue
			}
			m.userns.Release(d.Name())
			_ = os.RemoveAll(dir)
			continue
		}
		get(rec.UID).rec = rec
	}
	m.found = map[string][]found{}
	for _, f := range byUID {
		if f.rec.NetNS == "" {
			f.rec.NetNS = m.dirs.pod(f.rec.Namespace, f.rec.Name, f.rec.UID).netns()
		}
		key := Key(f.rec.Namespace, f.rec.Name)
		m.found[key] = append(m.found[key], *f)
	}
	return nil
}

func (m *Manager) foundKeys() []string {
	m.foundMu.Lock()
	defer m.foundMu.Unlock()
	keys := make([]string, 0, len(m.found))
	for k := range m.found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (m *Manager) takeFound(key string) []found {
	m.foundMu.Lock()
	defer m.foundMu.Unlock()
	f := m.found[key]
	delete(m.found, key)
	return f
}

// ErrNotFound is returned for a pod, container or log the manager does not have. It wraps
// fs.ErrNotExist so that callers outside this package can test for it without importing it.
var ErrNotFound = fmt.Errorf("not found: %w", fs.ErrNotExist)

// containerOf finds a container's status in the published pod.
func (m *Manager) containerOf(namespace, name, container string) (*corev1.Pod, *corev1.ContainerStatus, error) {
	p := m.store.get(Key(namespace, name))
	if p == nil {
		return nil, nil, fmt.Errorf("pod %s/%s: %w", namespace, name, ErrNotFound)
	}
	all := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for i := range all {
		if all[i].Name == container {
			return p, &all[i], nil
		}
	}
	return nil, nil, fmt.Errorf("container %s in pod %s/%s: %w", container, namespace, name, ErrNotFound)
}

// LogPath returns the log file of a container's current attempt, or of the one before it.
func (m *Manager) LogPath(namespace, name, container string, previous bool) (string, error) {
	p, cs, err := m.containerOf(namespace, name, container)
	if err != nil {
		return "", err
	}
	attempt := int(cs.RestartCount)
	if previous {
		if attempt == 0 {
			return "", fmt.Errorf("previous terminated container %q in pod %q: %w", container, name, ErrNotFound)
		}
		attempt--
	}
	path := m.dirs.pod(p.Namespace, p.Name, string(p.UID)).logPath(container, attempt)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("log of container %s: %w", container, ErrNotFound)
	}
	return path, nil
}

// Exec runs cmd in a running container of a pod and returns its exit code.
func (m *Manager) Exec(ctx context.Context, namespace, name, container string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	_, cs, err := m.containerOf(namespace, name, container)
	if err != nil {
		return -1, err
	}
	if cs.State.Running == nil {
		return -1, fmt.Errorf("container %s is not running", container)
	}
	return m.cfg.Runtime.Exec(ctx, strings.TrimPrefix(cs.ContainerID, "containerd://"), cmd, tty, stdin, stdout, stderr)
}

// execDir holds the output files of probe and hook execs while they run.
func (m *Manager) execDir() string { return filepath.Join(m.cfg.StateDir, "exec") }

// maxExecOutput bounds what a probe or hook keeps of its command's output (the kubelet's
// exec probes keep 10 KiB).
const maxExecOutput = 10 << 10

// execOutput runs cmd in a container for a probe or a hook and returns its exit code and
// combined output.
func (m *Manager) execOutput(ctx context.Context, id string, cmd []string) (int, []byte, error) {
	return m.cfg.Runtime.ExecOutput(ctx, id, cmd, m.execDir(), maxExecOutput)
}
