package pod

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/minipod/minipod/pkg/envvar"
	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/logs"
	"github.com/minipod/minipod/pkg/metrics"
	"github.com/minipod/minipod/pkg/probe"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/volume"
)

// A worker owns one pod identity (namespace/name) and drives containerd towards the latest
// desired version of it. Its lifecycle:
//
//	       update (new UID)            file removed
//	start ─────────> syncing <──────────────┐ │
//	  │ adopt what      │  exits, timers    │ │
//	  │ containerd has  └───────────────────┘ v
//	  └─────────────────────────────────> terminating ──> done (status removed)
//
// A worker handles one event at a time; pending updates collapse to the latest. It stops without
// touching the pod when its context ends (daemon shutdown): pods outlive the daemon.
type worker struct {
	key     string
	m       *Manager
	log     *slog.Logger
	updates chan *corev1.Pod // nil pod: the file is gone
	probed  chan probeEvent
	wake    chan struct{} // images arrived

	// Task exits, queued by the runtime's exit notifications (see watch).
	exitMu   sync.Mutex
	exitQ    []exitEvent
	exitWake chan struct{}

	desired     *corev1.Pod
	cur         *podState
	done        bool
	adoptedOnce bool
	firstRound  bool // started with the manager's first desired set
	slot        slotHold
	resync      bool // sync again at once: it stopped early for a newer desired version
}

type exitEvent struct {
	id   string
	exit runtime.Exit
}

// podState is what the worker knows of the running version of its pod.
type podState struct {
	pod         *corev1.Pod
	dir         string // <state-dir>/pods/<uid>
	rec         sandboxRecord
	sandboxOK   bool
	pausePID    uint32
	ips         []string
	files       sandbox.Files
	startTime   time.Time
	retryAt     time.Time // when sandbox creation may be tried again
	sandboxErr  error
	inits       []*ctrState
	apps        []*ctrState
	conds       map[corev1.PodConditionType]corev1.PodCondition
	vols        *volume.Prepared // nil until the volumes are made
	volErr      error            // why they could not be made
	volRetryAt  time.Time
	refreshAt   time.Time     // next look at configMap, secret and downwardAPI sources
	seen        time.Time     // when the worker got this version: the start of its start latency
	startDone   bool          // the start latency was recorded
	sandboxLost bool          // the pause exit wait broke
	lostAt      time.Time     // when to ask containerd again about lost tasks
	lostDelay   time.Duration // backoff of those questions while containerd is away
	terminal    bool          // all containers finished for good (Succeeded or Failed)
	earlier     bool          // made by an earlier run of the daemon (adopted or left to tear down)
	// While the sandbox and its first containers are created: a containerd lease that keeps
	// what they are made of, and the snapshots made ahead by container ID, with the image
	// each was made of (see prepareRootfs).
	lease string
	prep  map[string]runtime.Image
}

// sandboxRecord is written to disk before anything of the sandbox exists, so that teardown
// after a crash at any point knows what to delete.
type sandboxRecord struct {
	UID         string `json:"uid"`
	Namespace   string `json:"namespace"`
	Name        string `json:"name"`
	SandboxID   string `json:"sandboxID"`
	NetNS       string `json:"netns"`
	Grace       int64  `json:"graceSeconds"`          // terminationGracePeriodSeconds, for teardown without the manifest
	HostNetwork bool   `json:"hostNetwork,omitempty"` // no netns and no CNI to undo
	// ShimGroup makes one containerd shim serve the pause container and every app container of
	// this sandbox (see runtime.ContainerConfig.ShimGroup). It is new for every sandbox, never
	// the sandbox's ID alone: the pause container's ID is the same for each sandbox of a pod,
	// and a shim whose last container was just deleted is on its way out; a new sandbox that
	// joined it by the same name would have its task on a shim that is gone. Empty in records
	// of earlier versions: their pods' containers each keep a shim of their own.
	ShimGroup string `json:"shimGroup,omitempty"`
}

// ctrState is one container of the pod across its attempts.
type ctrState struct {
	spec    *corev1.Container
	init    bool
	attempt int    // restartCount
	id      string // containerd ID of the current attempt, "" before the first
	running bool
	exited  bool
	exit    runtime.Exit
	started time.Time
	imageID string
	logPath string

	log        *logs.File
	ready      bool           // readiness probe verdict (true without a readiness probe)
	startedOK  bool           // startup probe passed (true without a startup probe)
	killing    bool           // being killed after a failed liveness or startup probe
	lost       bool           // its exit wait broke: containerd must be asked again
	pullDelay  time.Duration  // image pull backoff
	stdin      *io.PipeWriter // held open for stdin: true
	stopSignal string
	message    string // termination message of the exited attempt
	hookErr    string // why a postStart hook killed the current attempt

	last         *corev1.ContainerStateTerminated
	delay        time.Duration // crash backoff delay to apply to the next restart
	restartAt    time.Time
	waitReason   string
	waitMessage  string
	permanentErr bool   // waiting for a change of spec, not for time
	pulling      string // while its image is pulled: the progress, shown as ContainerCreating's message
}

func newWorker(m *Manager, key string) *worker {
	return &worker{
		key:      key,
		m:        m,
		log:      m.log.With("pod", key),
		updates:  make(chan *corev1.Pod, 1),
		probed:   make(chan probeEvent, 16),
		wake:     make(chan struct{}, 1),
		exitWake: make(chan struct{}, 1),
		slot:     slotHold{slots: startSlots},
	}
}

// update hands the worker a new desired version; an older pending one is dropped.
// Only the manager's goroutine calls it.
func (w *worker) update(p *corev1.Pod) {
	for {
		select {
		case w.updates <- p:
			return
		default:
			select {
			case <-w.updates:
			default:
			}
		}
	}
}

// run blocks until the pod is gone (after a removal) or ctx ends.
func (w *worker) run(ctx context.Context) {
	// The worker's own context ends what it started when it is done with the pod.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w.desired = <-w.updates
	w.adopt(ctx)
	if !w.adoptedOnce {
		w.adoptedOnce = true
		w.m.adoptDone(w)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.sync(ctx)
		if w.done {
			return
		}
		if w.resync {
			w.resync = false
			continue
		}
		next := w.nextWake()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if !next.IsZero() {
			timer.Reset(max(time.Until(next), time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return
		case p := <-w.updates:
			w.desired = p
		case <-w.exitWake:
			for _, e := range w.takeExits() {
				w.handleExit(e)
			}
		case e := <-w.probed:
			w.handleProbe(ctx, e)
		case <-w.wake:
			w.retryImages()
		case <-timer.C:
		}
	}
}

func (w *worker) nextWake() time.Time {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if w.cur == nil {
		return next
	}
	earlier(w.cur.retryAt)
	earlier(w.cur.lostAt)
	earlier(w.cur.volRetryAt)
	earlier(w.cur.refreshAt)
	for _, c := range w.cur.all() {
		if !c.permanentErr {
			earlier(c.restartAt)
		}
	}
	return next
}

func (s *podState) all() []*ctrState {
	return append(append([]*ctrState{}, s.inits...), s.apps...)
}

func (s *podState) byID(id string) *ctrState {
	for _, c := range s.all() {
		if c.id == id {
			return c
		}
	}
	return nil
}

func (w *worker) handleExit(e exitEvent) {
	if w.cur == nil {
		return
	}
	if e.id == w.cur.rec.SandboxID {
		if e.exit.Err == nil {
			w.log.Info("sandbox exited", "code", e.exit.Code)
			w.cur.sandboxOK = false
		} else {
			w.log.Warn("lost track of the sandbox", "err", e.exit.Err)
			w.cur.sandboxLost = true
			w.cur.lostAt = time.Now().Add(time.Second)
		}
		return
	}
	c := w.cur.byID(e.id)
	if c == nil || !c.running {
		return
	}
	if e.exit.Err != nil {
		// The wait broke, most likely because containerd restarted: the container itself
		// probably runs on under its shim. Look again shortly; never start a second copy.
		w.log.Warn("lost track of container", "container", c.spec.Name, "err", e.exit.Err)
		c.lost = true
		w.cur.lostAt = time.Now().Add(time.Second)
		return
	}
	w.log.Info("container exited", "container", c.spec.Name, "code", e.exit.Code)
	c.running = false
	c.exited = true
	c.exit = e.exit
	w.m.probes.Remove(c.id)
	if _, ok := w.m.oomed.LoadAndDelete(e.id); ok {
		c.exit.OOM = true
	}
	w.closeLog(c)
	c.message = w.terminationMessage(w.cur, c)
}

// watch hands one task's exit to the worker when it comes. The runtime calls back instead of
// a goroutine per task waiting for it: at 50 pods that was 100 parked goroutines and their
// stacks. Exits that come after the worker is done are queued for nobody and dropped with it.
func (w *worker) watch(id string, ew runtime.ExitWatch) {
	ew.Notify(func() {
		e := <-ew.C
		w.exitMu.Lock()
		w.exitQ = append(w.exitQ, exitEvent{id: id, exit: e})
		w.exitMu.Unlock()
		select {
		case w.exitWake <- struct{}{}:
		default:
		}
	})
}

// takeExits returns the queued exits, oldest first.
func (w *worker) takeExits() []exitEvent {
	w.exitMu.Lock()
	defer w.exitMu.Unlock()
	q := w.exitQ
	w.exitQ = nil
	return q
}

// sync moves the pod one step closer to the desired state and publishes its status.
func (w *worker) sync(ctx context.Context) {
	if w.cur != nil && (w.desired == nil || w.desired.UID != w.cur.pod.UID) {
		w.publishTerminating()
		w.terminate(ctx, w.cur)
		w.cur = nil
	}
	if w.desired == nil {
		w.m.store.remove(w.key)
		w.done = true
		return
	}
	if w.cur == nil {
		w.cur = w.newState(w.desired)
	}
	s := w.cur
	if !s.lostAt.IsZero() && !time.Now().Before(s.lostAt) {
		w.findLost(ctx, s)
	}
	if !s.terminal {
		if !s.sandboxOK {
			if time.Now().Before(s.retryAt) {
				w.publish()
				return
			}
			newer, ok := w.slot.take(ctx, w.updates, w.publish)
			if !ok {
				if ctx.Err() == nil {
					w.desired, w.resync = newer, true
				}
				return
			}
			defer w.slot.release()
			w.killContainers(ctx, s)
			if err := w.createSandbox(ctx, s); err != nil {
				w.log.Error("create sandbox failed", "err", err)
				w.event(s, nil, events.Warning, events.ReasonFailedCreatePodSandBox, "Failed to create pod sandbox: %v", err)
				s.sandboxErr = err
				s.retryAt = time.Now().Add(sandboxRetry)
				w.publish()
				return
			}
			s.sandboxErr = nil
		}
		if !w.syncVolumes(s) {
			w.releaseRootfs(ctx, s)
			w.publish()
			return
		}
		w.syncContainers(ctx, s)
		w.slot.release()
	}
	w.publish()
	// After the status is out: nothing a reader waits for depends on the lease's end.
	w.releaseRootfs(ctx, s)
}

const sandboxRetry = 5 * time.Second

func (w *worker) newState(p *corev1.Pod) *podState {
	uid := string(p.UID)
	s := &podState{
		pod:   p,
		dir:   filepath.Join(w.m.cfg.StateDir, "pods", uid),
		conds: map[corev1.PodConditionType]corev1.PodCondition{},
		seen:  time.Now(),
		rec: sandboxRecord{
			UID:       uid,
			Namespace: p.Namespace,
			Name:      p.Name,
			SandboxID: shortUID(uid) + "-sandbox",
			NetNS:     filepath.Join(w.m.cfg.NetNSDir, "minipod-"+shortUID(uid)),
			Grace:     corev1.DefaultTerminationGracePeriodSeconds,
		},
	}
	if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
		s.rec.Grace = *g
	}
	s.rec.HostNetwork = p.Spec.HostNetwork
	for i := range p.Spec.InitContainers {
		s.inits = append(s.inits, &ctrState{spec: &p.Spec.InitContainers[i], init: true})
	}
	for i := range p.Spec.Containers {
		s.apps = append(s.apps, &ctrState{spec: &p.Spec.Containers[i]})
	}
	for _, c := range s.all() {
		c.logPath = w.logPath(p, c.spec.Name, 0)
	}
	return s
}

func shortUID(uid string) string {
	if len(uid) > 16 {
		return uid[:16]
	}
	return uid
}

func (w *worker) logPath(p *corev1.Pod, container string, attempt int) string {
	return filepath.Join(w.m.cfg.LogDir, fmt.Sprintf("%s_%s_%s", p.Namespace, p.Name, p.UID), container, strconv.Itoa(attempt)+".log")
}

func (w *worker) containerID(s *podState, c *ctrState, attempt int) string {
	name := c.spec.Name
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("%s-%s-%d", shortUID(string(s.pod.UID)), name, attempt)
}

// createSandbox makes the network namespace, attaches it with CNI, writes the pod's files and
// starts the pause container. A failed step undoes the earlier ones.
func (w *worker) createSandbox(ctx context.Context, s *podState) (err error) {
	cfg := &w.m.cfg
	// Anything left of an earlier sandbox goes first. Its record is written before any part of
	// a sandbox exists and removed after all of them are gone, so without a record there is
	// nothing to clean up, and a brand-new pod skips a CNI DEL of nothing (about 11 ms of
	// plugin execs).
	if _, err := os.Stat(filepath.Join(s.dir, "sandbox.json")); err == nil {
		if err := w.removeSandbox(ctx, s.rec); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("create pod dir: %w", err)
	}
	s.rec.ShimGroup = s.rec.SandboxID + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if err := writeRecord(s.dir, s.rec); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			w.releaseRootfs(context.WithoutCancel(ctx), s)
			_ = w.removeSandbox(context.WithoutCancel(ctx), s.rec)
		}
	}()
	// One lease covers the pause container and the first containers: each would otherwise
	// make and delete one of its own.
	if s.lease, err = cfg.Runtime.NewLease(ctx); err != nil {
		w.log.Warn("no lease for the sandbox's containers", "err", err)
		s.lease, err = "", nil
	}
	waitRootfs := w.prepareRootfs(ctx, s)
	defer waitRootfs()
	hostNet := s.pod.Spec.HostNetwork
	// CNI ADD runs while the pause container is created and started: neither needs the other,
	// only the network namespace, which exists first.
	type cniResult struct {
		ips []string
		err error
	}
	cniDone := make(chan cniResult, 1)
	if hostNet {
		cniDone <- cniResult{ips: []string{cfg.HostIP}}
	} else {
		if _, err := sandbox.NewNetNS(filepath.Dir(s.rec.NetNS), filepath.Base(s.rec.NetNS)); err != nil {
			return err
		}
		go func() {
			var ips []string
			err := withCNISlot(ctx, func(ctx context.Context) (err error) {
				start := time.Now()
				ips, err = cfg.Network.Setup(ctx, w.attachment(s))
				cfg.Metrics.CNIOperation("add", time.Since(start), err)
				return err
			})
			cniDone <- cniResult{ips, err}
		}()
	}
	// Whatever happens below, the CNI call must be over before this function returns, so that
	// a rollback's DEL never races the ADD.
	var cni *cniResult
	waitCNI := func() cniResult {
		if cni == nil {
			r := <-cniDone
			cni = &r
		}
		return *cni
	}
	defer waitCNI()

	hostname := s.pod.Name
	if s.pod.Spec.Hostname != "" {
		hostname = s.pod.Spec.Hostname
	}
	img, err := cfg.Runtime.GetImage(ctx, cfg.PauseImage)
	if err != nil {
		return fmt.Errorf("pause image: %w", err)
	}
	err = cfg.Runtime.CreateContainer(ctx, runtime.ContainerConfig{
		ID:           s.rec.SandboxID,
		Image:        cfg.PauseImage,
		Resolved:     &img,
		Labels:       w.labels(s, runtime.RoleSandbox, "", 0),
		Args:         Command(&corev1.Container{}, img.Config),
		Env:          img.Config.Env,
		Hostname:     hostname,
		NetNS:        s.rec.NetNS,
		CgroupParent: w.cgroupParent(s),
		Namespaces:   podNamespaces(s.pod),
		ShimGroup:    s.rec.ShimGroup,
		Lease:        s.lease,
	})
	if err != nil {
		return err
	}
	pid, exitCh, err := cfg.Runtime.Start(ctx, s.rec.SandboxID, nil)
	if err != nil {
		return err
	}
	r := waitCNI()
	if r.err != nil {
		return r.err
	}
	s.ips = r.ips
	var aliases []sandbox.HostAlias
	for _, a := range s.pod.Spec.HostAliases {
		aliases = append(aliases, sandbox.HostAlias{IP: a.IP, Hostnames: a.Hostnames})
	}
	podIP := ""
	if len(s.ips) > 0 {
		podIP = s.ips[0]
	}
	fqdn := ""
	if sub := s.pod.Spec.Subdomain; sub != "" {
		fqdn = fmt.Sprintf("%s.%s.%s.svc.%s", hostname, sub, s.pod.Namespace, clusterDomain)
	}
	resolv := sandbox.ResolvConf(s.pod.Spec.DNSPolicy, s.pod.Spec.DNSConfig, cfg.ResolvConf)
	s.files, err = sandbox.WriteFiles(s.dir, hostname, fqdn, podIP, aliases, resolv)
	if err != nil {
		return err
	}
	w.watch(s.rec.SandboxID, exitCh)
	s.pausePID = pid
	s.sandboxOK = true
	s.startTime = startTime(pid)
	waitRootfs()
	w.log.Info("sandbox ready", "ip", podIP, "rootfsAhead", len(s.prep))
	return nil
}

func (w *worker) attachment(s *podState) sandbox.Attachment {
	a := sandbox.Attachment{
		ID:        s.rec.SandboxID,
		NetNS:     s.rec.NetNS,
		Namespace: s.rec.Namespace,
		Name:      s.rec.Name,
		UID:       s.rec.UID,
	}
	if s.pod != nil {
		for _, c := range s.pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.HostPort == 0 {
					continue
				}
				proto := string(p.Protocol)
				if proto == "" {
					proto = "TCP"
				}
				a.Ports = append(a.Ports, sandbox.Port{HostPort: p.HostPort, ContainerPort: p.ContainerPort, Protocol: strings.ToLower(proto), HostIP: p.HostIP})
			}
		}
	}
	return a
}

// removeSandbox deletes the pause container, the CNI attachment and the network namespace.
// Every step treats "already gone" as done, so it can run any number of times.
func (w *worker) removeSandbox(ctx context.Context, rec sandboxRecord) error {
	err := w.m.cfg.Runtime.Remove(ctx, rec.SandboxID)
	return errors.Join(err, w.removeNetwork(ctx, rec))
}

// removeNetwork releases the sandbox's network: CNI DEL (its address, iptables rules) and the
// pinned network namespace. The pause container need not be gone first.
func (w *worker) removeNetwork(ctx context.Context, rec sandboxRecord) error {
	cfg := &w.m.cfg
	var errs []error
	if rec.HostNetwork {
		return nil
	}
	a := sandbox.Attachment{ID: rec.SandboxID, NetNS: rec.NetNS, Namespace: rec.Namespace, Name: rec.Name, UID: rec.UID}
	if !sandbox.NetNSAlive(rec.NetNS) {
		// CNI DEL must still run to release the IP and iptables rules, but without a netns.
		a.NetNS = ""
	}
	err := withCNISlot(ctx, func(ctx context.Context) error {
		start := time.Now()
		err := cfg.Network.Teardown(ctx, a)
		cfg.Metrics.CNIOperation("del", time.Since(start), err)
		return err
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := sandbox.RemoveNetNS(rec.NetNS); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (w *worker) labels(s *podState, role, container string, attempt int) map[string]string {
	l := map[string]string{
		runtime.LabelPodUID:       string(s.pod.UID),
		runtime.LabelPodName:      s.pod.Name,
		runtime.LabelPodNamespace: s.pod.Namespace,
		runtime.LabelRole:         role,
		runtime.LabelManifest:     s.pod.Annotations[AnnotationManifest],
	}
	if role == runtime.RoleSandbox {
		l[runtime.LabelNetNS] = s.rec.NetNS
	} else {
		l[runtime.LabelContainer] = container
		l[runtime.LabelAttempt] = strconv.Itoa(attempt)
	}
	return l
}

// AnnotationManifest names the file a pod came from.
const AnnotationManifest = "minipod.io/manifest"

func writeRecord(dir string, rec sandboxRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "sandbox.json.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("write sandbox record: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "sandbox.json")); err != nil {
		return fmt.Errorf("write sandbox record: %w", err)
	}
	return nil
}

func readRecord(dir string) (sandboxRecord, error) {
	var rec sandboxRecord
	b, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(b, &rec)
}

// syncContainers runs init containers in order, then keeps the app containers as the restart
// policy says.
func (w *worker) syncContainers(ctx context.Context, s *podState) {
	policy := s.pod.Spec.RestartPolicy
	for _, c := range s.inits {
		if isSidecar(c.spec) {
			// A sidecar starts in its turn, lets the next one start once it has started (its
			// startup probe passed), and keeps running: restarted whenever it exits.
			switch {
			case c.running && c.startedOK:
				continue
			case c.running, s.terminal:
				return
			case c.exited && !w.restartDue(c):
				return
			}
			w.startContainer(ctx, s, c)
			return
		}
		if c.exited && c.exit.Code == 0 && !c.exit.Unknown {
			continue // done
		}
		if c.running {
			return // wait for it
		}
		if c.exited {
			if policy == corev1.RestartPolicyNever {
				s.terminal = true
				return
			}
			if !w.restartDue(c) {
				return
			}
		}
		w.startContainer(ctx, s, c)
		return
	}
	var wg sync.WaitGroup
	for _, c := range s.apps {
		if c.running || c.permanentErr {
			continue
		}
		if c.id != "" {
			if c.exited && !ShouldRestart(policy, int32(c.exit.Code)) {
				continue
			}
			if !w.restartDue(c) {
				continue
			}
		} else if !c.restartAt.IsZero() && time.Now().Before(c.restartAt) {
			continue
		}
		// Member containers start together: they do not wait for each other.
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.startContainer(ctx, s, c)
		}()
	}
	wg.Wait()
	finished := true
	for _, c := range s.apps {
		if c.running || !c.exited || ShouldRestart(policy, int32(c.exit.Code)) {
			finished = false
		}
	}
	s.terminal = finished
	if finished {
		// The regular containers are done for good: sidecars go too, as on a kubelet.
		for _, c := range s.inits {
			if isSidecar(c.spec) && c.running && !c.killing {
				c.killing = true
				target := runtime.Container{ID: c.id, Labels: map[string]string{runtime.LabelStopSignal: c.stopSignal}}
				go w.stopContainer(context.WithoutCancel(ctx), target, c.spec, time.Now().Add(time.Duration(s.rec.Grace)*time.Second))
			}
		}
	}
}

// isSidecar reports whether an init container is a sidecar (restartPolicy: Always).
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// restartDue records an exited container's last state and reports whether its backoff allows
// starting the next attempt now.
func (w *worker) restartDue(c *ctrState) bool {
	if c.restartAt.IsZero() {
		ranFor := c.exit.At.Sub(c.started)
		c.restartAt, c.delay = w.m.cfg.Backoff.NextRestart(c.exit.At, ranFor, c.delay)
	}
	if time.Now().Before(c.restartAt) {
		if c.waitReason == "" {
			w.event(w.cur, c, events.Warning, events.ReasonBackOff, "Back-off restarting failed container %s in pod %s_%s(%s)", c.spec.Name, w.cur.pod.Name, w.cur.pod.Namespace, w.cur.pod.UID)
		}
		if c.waitReason == "" || c.waitReason == "CrashLoopBackOff" {
			c.waitReason = "CrashLoopBackOff"
			c.waitMessage = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				c.restartAt.Sub(c.exit.At).Round(time.Second), c.spec.Name, w.cur.pod.Name, w.cur.pod.Namespace, w.cur.pod.UID)
		}
		return false
	}
	return true
}

// startContainer creates and starts the container's next attempt. Errors become the
// container's waiting reason.
func (w *worker) startContainer(ctx context.Context, s *podState, c *ctrState) {
	cfg := &w.m.cfg
	attempt := 0
	if c.id != "" {
		attempt = c.attempt + 1
		c.last = terminatedState(c)
		// The old attempt's container goes; its log file stays for `logs --previous`.
		if err := cfg.Runtime.Remove(ctx, c.id); err != nil {
			w.log.Warn("remove old container", "container", c.spec.Name, "err", err)
		}
		w.closeLog(c)
		_ = os.RemoveAll(w.fifoDir(s, c.id))
	}
	fail := func(reason string, err error, permanent bool) {
		w.event(s, c, events.Warning, events.ReasonFailed, "Error: %v", err)
		c.waitReason, c.waitMessage, c.permanentErr = reason, err.Error(), permanent
		c.restartAt = time.Now().Add(cfg.Backoff.Initial)
		w.log.Warn("container not started", "container", c.spec.Name, "reason", reason, "err", err)
	}
	id := w.containerID(s, c, attempt)
	img, reason, err := w.ensureImage(ctx, c.spec, s.prep[id])
	if err != nil {
		if reason == ReasonErrImagePull && (c.waitReason == ReasonErrImagePull || c.waitReason == ReasonImagePullBackOff) {
			// The first failure says ErrImagePull; the retries wait in ImagePullBackOff.
			reason = ReasonImagePullBackOff
		}
		fail(reason, err, false)
		c.pullDelay = w.nextPullDelay(c.pullDelay)
		c.restartAt = time.Now().Add(c.pullDelay)
		return
	}
	c.pullDelay = 0
	fields := podFields{pod: s.pod, podIPs: s.ips, hostIP: cfg.HostIP, nodeName: cfg.NodeName,
		configMapDir: cfg.ConfigMapDir, secretDir: cfg.SecretDir, insecureSecrets: cfg.InsecureSecretPerms, podDir: s.dir}
	env, err := Env(c.spec, img.Config, fields)
	if err != nil {
		// The configMap or secret may appear later: try again with backoff.
		fail("CreateContainerConfigError", err, false)
		return
	}
	vars := envMap(env, c.spec)
	args := envvar.ExpandAll(Command(c.spec, img.Config), vars)
	if len(args) == 0 {
		fail("CreateContainerConfigError", errors.New("no command specified"), true)
		return
	}
	sec, err := Security(s.pod, c.spec, img.Config.User, cfg.SeccompDir)
	if err != nil {
		fail("CreateContainerConfigError", err, true)
		return
	}
	logPath := w.logPath(s.pod, c.spec.Name, attempt)
	cwd := c.spec.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	labels := w.labels(s, runtime.RoleApp, c.spec.Name, attempt)
	if c.init {
		labels[runtime.LabelInit] = "true"
		if isSidecar(c.spec) {
			labels[runtime.LabelSidecar] = "true"
		}
	}
	if img.Config.StopSignal != "" {
		labels[runtime.LabelStopSignal] = img.Config.StopSignal
	}
	// What a restarted daemon needs to report and pace this container like this one would.
	if c.last != nil {
		// containerd caps a label at 4 KiB: keep the message short.
		last := *c.last
		last.Message = truncate(last.Message, 1024)
		if b, err := json.Marshal(&last); err == nil {
			labels[runtime.LabelLastState] = string(b)
		}
	}
	if c.delay > 0 {
		labels[runtime.LabelBackoff] = c.delay.String()
	}
	var mounts []specs.Mount
	if !s.pod.Spec.HostNetwork {
		// Host-network pods see the host's own files, as on a kubelet.
		mounts = podMounts(s.files)
	}
	if s.vols != nil {
		vm, err := s.vols.Mounts(c.spec, vars)
		if err != nil {
			reason := "CreateContainerConfigError"
			var verr *volume.Error
			if errors.As(err, &verr) {
				reason = verr.Reason
			}
			fail(reason, err, false)
			return
		}
		mounts = append(mounts, vm...)
	}
	if c.spec.TerminationMessagePath != "" {
		// The container writes its termination message into a host file, read after it exits.
		termLog := w.termLogPath(s, c.spec.Name, attempt)
		if err := os.MkdirAll(filepath.Dir(termLog), 0o755); err != nil {
			fail("CreateContainerError", err, false)
			return
		}
		if err := os.WriteFile(termLog, nil, 0o666); err != nil {
			fail("CreateContainerError", err, false)
			return
		}
		mounts = append(mounts, specs.Mount{Source: termLog, Destination: c.spec.TerminationMessagePath, Type: "bind", Options: []string{"rbind", "rprivate", "rw"}})
	}
	// A snapshot made ahead (prepareRootfs) is taken if it is of this image, under the lease
	// that holds it. Without one the container makes its own lease: one whose image had to be
	// pulled first may come after the sandbox's lease has expired.
	ready := s.prep[id].ID != "" && s.prep[id].ID == img.ID
	lease := ""
	if ready {
		lease = s.lease
	} else {
		// A leftover of a crash mid-start, or a snapshot made ahead of an image since retagged.
		_ = cfg.Runtime.Remove(ctx, id)
	}
	err = cfg.Runtime.CreateContainer(ctx, runtime.ContainerConfig{
		ID:                id,
		Image:             c.spec.Image,
		Resolved:          &img,
		Labels:            labels,
		Args:              args,
		Env:               env,
		Cwd:               cwd,
		User:              img.Config.User,
		NetNS:             s.rec.NetNS,
		JoinPID:           s.pausePID,
		Mounts:            mounts,
		CgroupParent:      w.cgroupParent(s),
		Resources:         Resources(c.spec.Resources),
		Security:          sec,
		RootfsPropagation: volume.RootfsPropagation(mounts),
		Namespaces:        podNamespaces(s.pod),
		TTY:               c.spec.TTY,
		LogPath:           logPath,
		ShimGroup:         s.rec.ShimGroup,
		RootfsReady:       ready,
		Lease:             lease,
	})
	if err != nil {
		fail("CreateContainerError", err, false)
		return
	}
	c.id, c.attempt, c.logPath = id, attempt, logPath
	stdio, err := w.openLog(s, c, id)
	if err != nil {
		_ = cfg.Runtime.Remove(context.WithoutCancel(ctx), id)
		fail("RunContainerError", err, false)
		return
	}
	pid, exitCh, err := cfg.Runtime.Start(ctx, id, stdio)
	if err != nil {
		_ = cfg.Runtime.Remove(context.WithoutCancel(ctx), id)
		w.closeLog(c)
		fail("RunContainerError", err, false)
		return
	}
	c.running, c.exited, c.exit = true, false, runtime.Exit{}
	c.message, c.hookErr = "", ""
	c.started = startTime(pid)
	// Kept on the container, so that a daemon that adopts it after it has exited reports the
	// same startedAt (the process, whose start /proc tells, is gone by then). Off the start's
	// path: without the label an adopting daemon falls back to the container's creation.
	startedAt := c.started.Format(time.RFC3339Nano)
	go func() { _ = cfg.Runtime.SetLabel(context.WithoutCancel(ctx), id, runtime.LabelStartedAt, startedAt) }()
	c.imageID = img.ID
	c.restartAt = time.Time{}
	c.waitReason, c.waitMessage, c.permanentErr = "", "", false
	w.watch(id, exitCh)
	w.log.Info("container started", "container", c.spec.Name, "attempt", attempt)
	w.m.trim.touch()
	w.event(s, c, events.Normal, events.ReasonCreated, "Created container %s", c.spec.Name)
	w.event(s, c, events.Normal, events.ReasonStarted, "Started container %s", c.spec.Name)
	if attempt > 0 {
		w.m.cfg.Metrics.ContainerRestart()
	}
	c.stopSignal = img.Config.StopSignal
	defer w.startProbes(ctx, s, c)
	if h := c.spec.Lifecycle; h != nil && h.PostStart != nil {
		// As on a kubelet, the container counts as started only after its postStart hook, and a
		// failed hook kills it; the restart policy decides what comes next.
		w.slot.release() // a hook waits on the container, not on the CPU
		hctx, cancel := context.WithTimeout(ctx, postStartTimeout)
		err := w.runHook(hctx, h.PostStart, id, c.spec)
		cancel()
		if err != nil {
			w.log.Warn("postStart hook failed, killing container", "container", c.spec.Name, "err", err)
			c.hookErr = "FailedPostStartHook: " + err.Error()
			_ = cfg.Runtime.Signal(ctx, id, syscall.SIGKILL)
		}
	}
}

// syncVolumes makes the pod's volumes (once), retrying with a delay while they cannot be made,
// and refreshes the ones whose content comes from local configMaps, secrets and pod fields. It
// reports whether containers may start.
func (w *worker) syncVolumes(s *podState) bool {
	cfg := &w.m.cfg
	podIP := ""
	if len(s.ips) > 0 {
		podIP = s.ips[0]
	}
	if s.vols == nil {
		if time.Now().Before(s.volRetryAt) {
			return false
		}
		vols, err := volume.Prepare(volume.Config{PodDir: s.dir, ConfigMapDir: cfg.ConfigMapDir, SecretDir: cfg.SecretDir, InsecureSecretPerms: cfg.InsecureSecretPerms}, s.pod, podIP)
		if err != nil {
			w.log.Warn("volumes not ready", "err", err)
			w.event(s, nil, events.Warning, events.ReasonFailedMount, "%v", err)
			s.volErr = err
			s.volRetryAt = time.Now().Add(volumeRetry)
			return false
		}
		s.vols, s.volErr, s.volRetryAt = vols, nil, time.Time{}
		if hasSourcedVolumes(s.pod) {
			s.refreshAt = time.Now().Add(volumeRefresh)
		}
		return true
	}
	if !s.refreshAt.IsZero() && !time.Now().Before(s.refreshAt) {
		if changed, err := s.vols.Refresh(s.pod, podIP); err != nil {
			w.log.Warn("refresh volumes", "err", err)
		} else if changed {
			w.log.Info("volumes updated")
		}
		s.refreshAt = time.Now().Add(volumeRefresh)
	}
	return true
}

// How often a volume that failed is tried again, and how often configMap, secret and
// downwardAPI volumes are compared with their sources (the kubelet's sync period is a minute;
// ten seconds is cheap here because only pods with such volumes look).
const (
	volumeRetry   = 5 * time.Second
	volumeRefresh = 10 * time.Second
)

func hasSourcedVolumes(p *corev1.Pod) bool {
	for _, v := range p.Spec.Volumes {
		if v.ConfigMap != nil || v.Secret != nil || v.DownwardAPI != nil || v.Projected != nil {
			return true
		}
	}
	return false
}

// findLost asks containerd again about tasks whose exit wait broke: running ones are watched
// again, ended ones are handled as exits. While containerd does not answer, it asks again
// with a growing delay.
func (w *worker) findLost(ctx context.Context, s *podState) {
	rt := w.m.cfg.Runtime
	stillLost := false
	if s.sandboxLost {
		st, err := rt.Task(ctx, s.rec.SandboxID, nil)
		switch {
		case err != nil && !runtime.IsNotFound(err):
			stillLost = true
		case err == nil && st.Running:
			s.sandboxLost = false
			w.watch(s.rec.SandboxID, st.Wait)
		default:
			s.sandboxLost = false
			s.sandboxOK = false
		}
	}
	for _, c := range s.all() {
		if !c.lost {
			continue
		}
		st, err := rt.Task(ctx, c.id, nil)
		switch {
		case err != nil && !runtime.IsNotFound(err):
			stillLost = true
		case err == nil && st.Running:
			c.lost = false
			w.watch(c.id, st.Wait)
		case err == nil && st.Exists:
			c.lost = false
			w.handleExit(exitEvent{id: c.id, exit: st.Exit})
		default:
			c.lost = false
			w.handleExit(exitEvent{id: c.id, exit: runtime.Exit{Unknown: true, At: time.Now()}})
		}
	}
	if !stillLost {
		s.lostAt, s.lostDelay = time.Time{}, 0
		w.log.Info("found lost tasks again")
		return
	}
	s.lostDelay = min(max(2*s.lostDelay, time.Second), 10*time.Second)
	s.lostAt = time.Now().Add(s.lostDelay)
}

// event records a pod event; c names the container it is about, or nil for the pod.
func (w *worker) event(s *podState, c *ctrState, typ, reason, format string, args ...any) {
	if w.m.cfg.Events == nil || s == nil || s.pod == nil {
		return
	}
	field := ""
	if c != nil {
		field = events.ContainerFieldPath(c.spec.Name)
		if c.init {
			field = events.InitContainerFieldPath(c.spec.Name)
		}
	}
	w.m.cfg.Events.Eventf(s.pod.Namespace, s.pod.Name, string(s.pod.UID), field, typ, reason, format, args...)
}

// clusterDomain completes a pod's FQDN when it sets a subdomain, as in a cluster's default.
const clusterDomain = "cluster.local"

// startTime is when the process started, as /proc records it (so that an adopting daemon
// reports the same time), or now when /proc cannot tell.
func startTime(pid uint32) time.Time {
	if t, err := runtime.ProcessStartTime(pid); err == nil {
		return t
	}
	return time.Now()
}

// openLog opens the container attempt's CRI log file and returns where its output goes.
func (w *worker) openLog(s *podState, c *ctrState, id string) (*runtime.Stdio, error) {
	w.closeLog(c)
	f, err := logs.Open(c.logPath, w.m.cfg.LogRotation)
	if err != nil {
		return nil, err
	}
	c.log = f
	stdio := &runtime.Stdio{FIFODir: w.fifoDir(s, id), Stdout: f.Stdout, Stderr: f.Stderr}
	if c.spec.Stdin {
		// stdin: true keeps the container's stdin open (nothing is written to it yet), so that
		// a program reading it waits instead of seeing end-of-file.
		r, wr := io.Pipe()
		c.stdin = wr
		stdio.Stdin = r
	}
	return stdio, nil
}

func (w *worker) closeLog(c *ctrState) {
	if c.log != nil {
		c.log.Close()
		c.log = nil
	}
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
}

func podNamespaces(p *corev1.Pod) runtime.Namespaces {
	share := p.Spec.ShareProcessNamespace != nil && *p.Spec.ShareProcessNamespace
	return runtime.Namespaces{HostNetwork: p.Spec.HostNetwork, HostPID: p.Spec.HostPID, HostIPC: p.Spec.HostIPC, SharePID: share}
}

func (w *worker) cgroupParent(s *podState) string { return w.cgroupParentOf(s.rec.UID) }

func (w *worker) cgroupParentOf(uid string) string {
	if w.m.cfg.CgroupRoot == "" {
		return ""
	}
	return w.m.cfg.CgroupRoot + "/pod" + uid
}

func (w *worker) fifoDir(s *podState, id string) string {
	return filepath.Join(s.dir, "fifo", id)
}

// retryImages lets containers that wait for an image try again at once.
func (w *worker) retryImages() {
	if w.cur == nil {
		return
	}
	for _, c := range w.cur.all() {
		switch c.waitReason {
		case ReasonErrImagePull, ReasonImagePullBackOff, ReasonErrImageNeverPull:
			c.restartAt = time.Now()
		}
	}
}

// nextPullDelay is the image pull backoff: the crash backoff's numbers, as on a kubelet.
func (w *worker) nextPullDelay(d time.Duration) time.Duration {
	b := w.m.cfg.Backoff
	if d == 0 {
		return b.Initial
	}
	return min(2*d, b.Max)
}

type probeEvent struct {
	id      string
	kind    probe.Kind
	result  probe.Result
	msg     string
	attempt bool // one failed attempt, not a verdict
}

// startProbes starts the container's probes; their verdicts come back to the worker's loop.
func (w *worker) startProbes(ctx context.Context, s *podState, c *ctrState) {
	c.ready = c.spec.ReadinessProbe == nil
	c.startedOK = c.spec.StartupProbe == nil
	c.killing = false
	if !c.running || (c.init && !isSidecar(c.spec)) || (c.spec.ReadinessProbe == nil && c.spec.LivenessProbe == nil && c.spec.StartupProbe == nil) {
		return
	}
	podIP := ""
	if len(s.ips) > 0 {
		podIP = s.ips[0]
	}
	id := c.id
	execFn := func(ctx context.Context, cmd []string) (int, []byte, error) {
		return w.m.execOutput(ctx, id, cmd)
	}
	send := func(e probeEvent) {
		select {
		case w.probed <- e:
		case <-ctx.Done():
		}
	}
	w.m.probes.Add(id, c.spec, podIP, c.started, execFn, func(kind probe.Kind, r probe.Result, msg string) {
		send(probeEvent{id: id, kind: kind, result: r, msg: msg})
	}, probe.WithFailedAttempts(func(kind probe.Kind, msg string) {
		send(probeEvent{id: id, kind: kind, result: probe.Failure, msg: msg, attempt: true})
	}))
}

// handleProbe applies a probe verdict: readiness sets ready; a startup success lets the
// container count as started; a liveness failure, or a startup probe that failed for good,
// kills the container, and its restart policy decides what follows.
func (w *worker) handleProbe(ctx context.Context, e probeEvent) {
	if w.cur == nil {
		return
	}
	c := w.cur.byID(e.id)
	if c == nil || !c.running {
		return
	}
	if e.attempt {
		w.event(w.cur, c, events.Warning, events.ReasonUnhealthy, "%s probe failed: %s", e.kind, truncate(e.msg, 512))
		return
	}
	switch e.kind {
	case probe.Readiness:
		c.ready = e.result == probe.Success
		return
	case probe.Startup:
		if e.result == probe.Success {
			c.startedOK = true
			return
		}
	}
	result := metrics.ProbeUnknown
	switch e.result {
	case probe.Success:
		result = metrics.ProbeSuccessful
	case probe.Failure:
		result = metrics.ProbeFailed
	}
	w.m.cfg.Metrics.ProbeResult(e.kind.String(), result)
	if e.result != probe.Failure || c.killing {
		return
	}
	w.event(w.cur, c, events.Normal, events.ReasonKilling, "Container %s failed %s probe, will be restarted", c.spec.Name, strings.ToLower(e.kind.String()))
	w.log.Info("container failed its probe, killing", "container", c.spec.Name, "probe", e.kind.String(), "msg", e.msg)
	c.killing = true
	c.hookErr = ""
	w.m.probes.Remove(c.id)
	grace := time.Duration(w.cur.rec.Grace) * time.Second
	pr := c.spec.LivenessProbe
	if e.kind == probe.Startup {
		pr = c.spec.StartupProbe
	}
	if pr != nil && pr.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pr.TerminationGracePeriodSeconds) * time.Second
	}
	target := runtime.Container{ID: c.id, Labels: map[string]string{runtime.LabelStopSignal: c.stopSignal}}
	spec := c.spec
	go w.stopContainer(context.WithoutCancel(ctx), target, spec, time.Now().Add(grace))
}

// postStartTimeout bounds a postStart hook, like the kubelet's handler timeout.
const postStartTimeout = 2 * time.Minute

func (w *worker) termLogPath(s *podState, container string, attempt int) string {
	return filepath.Join(s.dir, "containers", container, strconv.Itoa(attempt)+".termination-log")
}

// terminationMessage reads what an exited container left in its termination message file, or
// with FallbackToLogsOnError the end of its log when it failed without one.
func (w *worker) terminationMessage(s *podState, c *ctrState) string {
	if c.hookErr != "" {
		return c.hookErr
	}
	msg := readTail(w.termLogPath(s, c.spec.Name, c.attempt), maxTerminationMessage, false)
	if msg == "" && c.exit.Code != 0 && c.spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = readTail(c.logPath, maxFallbackMessage, true)
	}
	return msg
}

// The kubelet's limits: 4096 bytes of message file, 80 lines or 2048 bytes of log.
const (
	maxTerminationMessage = 4096
	maxFallbackMessage    = 2048
	maxFallbackLines      = 80
)

func readTail(path string, limit int64, isLog bool) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	if !isLog {
		buf := make([]byte, limit)
		n, _ := f.ReadAt(buf, 0)
		return string(buf[:n])
	}
	// The log is in CRI format: decode its last lines, then keep the last limit bytes.
	off := logs.TailOffset(f, st.Size(), maxFallbackLines)
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	var out bytes.Buffer
	_, _ = io.Copy(&logs.Decoder{W: &out}, f)
	msg := strings.TrimRight(out.String(), "\n")
	if int64(len(msg)) > limit {
		msg = msg[int64(len(msg))-limit:]
	}
	return msg
}

func terminatedState(c *ctrState) *corev1.ContainerStateTerminated {
	if !c.exited {
		return c.last
	}
	t := &corev1.ContainerStateTerminated{
		ExitCode:    int32(c.exit.Code),
		StartedAt:   metav1.NewTime(c.started),
		FinishedAt:  metav1.NewTime(c.exit.At),
		ContainerID: "containerd://" + c.id,
		Message:     c.message,
	}
	switch {
	case c.exit.Unknown:
		t.Reason = "Unknown"
		t.ExitCode = 137
	case c.exit.OOM:
		t.Reason = "OOMKilled"
	case c.exit.Code == 0:
		t.Reason = "Completed"
	default:
		t.Reason = "Error"
	}
	if c.exit.Code > 128 && c.exit.Code < 128+65 {
		t.Signal = int32(c.exit.Code - 128)
	}
	return t
}

func podMounts(f sandbox.Files) []specs.Mount {
	if f.Hosts == "" {
		return nil
	}
	bind := func(src, dst string) specs.Mount {
		return specs.Mount{Source: src, Destination: dst, Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}
	}
	return []specs.Mount{
		bind(f.Hosts, "/etc/hosts"),
		bind(f.Hostname, "/etc/hostname"),
		bind(f.ResolvConf, "/etc/resolv.conf"),
	}
}

// killContainers removes every container of the pod (used before a sandbox is recreated: a
// kubelet restarts all containers when their sandbox died).
func (w *worker) killContainers(ctx context.Context, s *podState) {
	for _, c := range s.all() {
		if c.id == "" {
			continue
		}
		if c.running {
			c.running, c.exited = false, true
			c.exit = runtime.Exit{Unknown: true, At: time.Now()}
		}
		if err := w.m.cfg.Runtime.Remove(ctx, c.id); err != nil {
			w.log.Warn("remove container", "container", c.spec.Name, "err", err)
		}
		w.closeLog(c)
	}
}

// terminate stops a pod gracefully and removes everything it had: SIGTERM to every container
// at once, SIGKILL to those still running after the grace period, then the sandbox, its network
// and files. It runs to the end even when ctx is cancelled, within its own deadline.
func (w *worker) terminate(ctx context.Context, s *podState) {
	ctx = context.WithoutCancel(ctx)
	grace := s.rec.Grace
	w.log.Info("stopping pod", "grace", grace)
	for _, c := range s.all() {
		if c.running {
			w.event(s, c, events.Normal, events.ReasonKilling, "Stopping container %s", c.spec.Name)
		}
	}
	cfg := &w.m.cfg
	uid := s.rec.UID
	list, err := cfg.Runtime.List(ctx, map[string]string{runtime.LabelPodUID: uid})
	if err != nil {
		w.log.Error("list containers", "err", err)
	}
	specs := map[string]*corev1.Container{}
	if s.pod != nil {
		for i := range s.pod.Spec.Containers {
			specs[s.pod.Spec.Containers[i].Name] = &s.pod.Spec.Containers[i]
		}
		for i := range s.pod.Spec.InitContainers {
			specs[s.pod.Spec.InitContainers[i].Name] = &s.pod.Spec.InitContainers[i]
		}
	}
	deadline := time.Now().Add(time.Duration(grace) * time.Second)
	// The regular containers stop first, then the sidecars, as on a kubelet: a sidecar (a
	// proxy, a log shipper) serves the others until they are gone.
	for _, sidecars := range []bool{false, true} {
		var wg sync.WaitGroup
		for _, c := range list {
			if c.Labels[runtime.LabelRole] != runtime.RoleApp || (c.Labels[runtime.LabelSidecar] == "true") != sidecars {
				continue
			}
			wg.Go(func() { w.stopContainer(ctx, c, specs[c.Labels[runtime.LabelContainer]], deadline) })
		}
		wg.Wait()
	}
	// Every app container has stopped, so the network serves no one: its teardown (CNI DEL,
	// netns) overlaps the removal of the containers' tasks, records and snapshots. The pause
	// container goes last, as on a kubelet: it holds the pod's namespaces for the others.
	var removed sync.WaitGroup
	for _, c := range list {
		if c.Labels[runtime.LabelRole] != runtime.RoleApp {
			continue
		}
		removed.Go(func() {
			if err := cfg.Runtime.Remove(ctx, c.ID); err != nil {
				w.log.Warn("remove container", "id", c.ID, "err", err)
			}
		})
	}
	netErr := w.removeNetwork(ctx, s.rec)
	removed.Wait()
	sandboxErr := errors.Join(cfg.Runtime.Remove(ctx, s.rec.SandboxID), netErr)
	// A removal that failed is tried again a few times (each step undoes only what is left)
	// before it is left, with its record, to the next start of the daemon.
	for delay := time.Second; sandboxErr != nil && delay <= 4*time.Second; delay *= 2 {
		w.log.Warn("remove sandbox failed, trying again", "err", sandboxErr, "in", delay)
		time.Sleep(delay)
		sandboxErr = w.removeSandbox(ctx, s.rec)
	}
	for _, c := range s.all() {
		w.m.probes.Remove(c.id)
		w.closeLog(c)
	}
	if sandboxErr != nil {
		w.log.Error("remove sandbox", "err", sandboxErr)
		// Keep the record so a later start of the daemon can try again.
		return
	}
	// Every container of the pod is gone: a snapshot left with the pod's prefix is one whose
	// container record a crash never wrote, or one made ahead for a container never created.
	// Only a pod an earlier run made needs all snapshots listed to find them.
	if err := cfg.Runtime.RemoveSnapshots(ctx, shortUID(s.rec.UID)+"-", s.earlier); err != nil {
		// The record is kept: the next start of the daemon sees the pod as an earlier run's
		// and lists every snapshot again.
		w.log.Error("remove leftover snapshots", "err", err)
		return
	}
	if err := sandbox.RemoveCgroup(w.cgroupParentOf(s.rec.UID)); err != nil {
		w.log.Warn("remove pod cgroup", "err", err)
	}
	// Volumes are unmounted first: removing the pod directory must never reach into a mount.
	if err := volume.Cleanup(s.dir); err != nil {
		w.log.Error("clean up volumes", "err", err)
		return
	}
	_ = os.RemoveAll(s.dir)
	_ = os.RemoveAll(filepath.Join(cfg.LogDir, fmt.Sprintf("%s_%s_%s", s.rec.Namespace, s.rec.Name, s.rec.UID)))
	w.log.Info("pod stopped")
	w.m.trim.touch()
}

// stopContainer runs the container's preStop hook, sends its stop signal, and waits until the
// deadline for the exit before it sends SIGKILL. As on a kubelet, the hook's time comes out of
// the grace period, but the signal always gets at least minStopGrace.
func (w *worker) stopContainer(ctx context.Context, c runtime.Container, spec *corev1.Container, deadline time.Time) {
	rt := w.m.cfg.Runtime
	st, err := rt.Task(ctx, c.ID, nil)
	if err != nil || !st.Running {
		return
	}
	if spec != nil && spec.Lifecycle != nil && spec.Lifecycle.PreStop != nil {
		hctx, cancel := context.WithDeadline(ctx, deadline)
		if err := w.runHook(hctx, spec.Lifecycle.PreStop, c.ID, spec); err != nil {
			w.log.Warn("preStop hook failed", "container", spec.Name, "err", err)
		}
		cancel()
		if d := time.Now().Add(minStopGrace); deadline.Before(d) {
			deadline = d
		}
	}
	sig, err := ParseSignal(c.Labels[runtime.LabelStopSignal])
	if err != nil {
		sig = syscall.SIGTERM
	}
	if err := rt.Signal(ctx, c.ID, sig); err != nil {
		w.log.Warn("signal container", "id", c.ID, "err", err)
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-st.Wait.C:
		return
	case <-t.C:
	}
	w.log.Info("grace period over, killing", "id", c.ID)
	_ = rt.Signal(ctx, c.ID, syscall.SIGKILL)
	select {
	case <-st.Wait.C:
	case <-time.After(10 * time.Second):
	}
}

// minStopGrace is the least time a container gets between its stop signal and SIGKILL after a
// preStop hook used up the grace period (the kubelet's minimumGracePeriodInSeconds).
const minStopGrace = 2 * time.Second

func (s *podState) byName(name string) *ctrState {
	for _, c := range s.all() {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}
