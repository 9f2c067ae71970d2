package pod

import (
	"context"
	"encoding/json"
	"os"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
)

// found is one pod UID's leftovers in containerd and the state dir.
type found struct {
	rec        sandboxRecord
	containers []runtime.Container
}

// adopt takes over what an earlier run of the daemon left for this pod key: the wanted
// version's sandbox and containers are kept running as they are. So is the version that ran
// last, when the file changed while the daemon was away and the wanted one has nothing yet: it
// serves on while the new version's images come (holdForImages), as it would have had the
// daemon seen the edit. Any other version is torn down, off the loop, before the wanted one
// starts.
func (w *worker) adopt(ctx context.Context) {
	want := w.want()
	founds := w.m.takeFound(w.key)
	wantFound := false
	for _, f := range founds {
		wantFound = wantFound || want != nil && f.rec.UID == string(want.UID)
	}
	for _, f := range founds {
		switch {
		case want != nil && f.rec.UID == string(want.UID):
			w.cur = w.adoptState(ctx, want, f)
			w.versionStarted(want) // nothing when the record knew it already
		case want != nil && !wantFound && f.rec.UID == w.ro.currentUID():
			w.cur = w.adoptState(ctx, w.ro.Current, f)
			w.log.Info("adopted the version that ran before the file changed", "revision", revision(f.rec.UID))
		default:
			s := &podState{rec: f.rec, n: w.m.dirs.pod(f.rec.Namespace, f.rec.Name, f.rec.UID), earlier: true, slot: &slotHold{slots: w.m.startSlots}}
			s.ctx, s.cancel = context.WithCancel(ctx)
			w.teardown(s)
		}
	}
}

func (w *worker) adoptState(ctx context.Context, want *corev1.Pod, f found) *podState {
	cfg := &w.m.cfg
	s := w.newState(ctx, want)
	s.rec = f.rec
	s.earlier = true
	w.adoptSandbox(ctx, s)
	// The newest attempt of each container is its current one; older ones are leftovers.
	newest := map[string]runtime.Container{}
	for _, c := range f.containers {
		if c.Labels[runtime.LabelRole] != runtime.RoleApp {
			continue
		}
		name := c.Labels[runtime.LabelContainer]
		if old, ok := newest[name]; ok {
			if attemptOf(old) >= attemptOf(c) {
				_ = cfg.Runtime.Remove(ctx, c.ID)
				continue
			}
			_ = cfg.Runtime.Remove(ctx, old.ID)
		}
		newest[name] = c
	}
	for _, c := range s.all() {
		if rc, ok := newest[c.spec.Name]; ok {
			w.adoptContainer(ctx, s, c, rc)
		}
	}
	w.log.Info("adopted pod", "sandbox", s.sandboxOK)
	return s
}

// adoptSandbox takes over the sandbox if it runs with the files its containers mount: a daemon
// killed after the pause container started and before they were written left a sandbox whose
// containers would fail to start for ever. Without them a new sandbox is made.
func (w *worker) adoptSandbox(ctx context.Context, s *podState) {
	cfg := &w.m.cfg
	files := sandbox.FilesIn(s.n.dir())
	for _, f := range []string{files.Hosts, files.Hostname, files.ResolvConf} {
		if _, err := os.Stat(f); err != nil {
			return
		}
	}
	st, err := cfg.Runtime.Task(ctx, s.rec.SandboxID, nil)
	if err != nil || !st.Running || !(s.rec.HostNetwork || sandbox.NetNSAlive(s.rec.NetNS)) {
		return
	}
	s.sandboxOK = true
	s.pausePID = st.Pid
	s.startTime = startTime(st.Pid)
	s.ips = cfg.Network.CachedIPs(attachment(s.rec, s.pod))
	if s.rec.HostNetwork {
		s.ips = []string{cfg.HostIP}
	}
	s.files = files
	w.watch(s.rec.SandboxID, st.Wait)
}

// adoptContainer takes over the newest attempt of a container: running, it is watched and
// probed again; ended, its exit is reported.
func (w *worker) adoptContainer(ctx context.Context, s *podState, c *ctrState, rc runtime.Container) {
	cfg := &w.m.cfg
	c.id, c.attempt = rc.ID, attemptOf(rc)
	c.last, c.delay = lastStateOf(rc)
	c.logPath = s.n.logPath(c.spec.Name, c.attempt)
	c.started = rc.CreatedAt
	if t, err := time.Parse(time.RFC3339Nano, rc.Labels[runtime.LabelStartedAt]); err == nil {
		// When the previous daemon saw it start: the process may be gone by now.
		c.started = t
	}
	c.stopSignal = rc.Labels[runtime.LabelStopSignal]
	if u, ok := runtime.ParseProcessUser(rc.Labels[runtime.LabelUser]); ok {
		c.user = &u // containers made by builds before the label have none to report
	}
	if img, err := cfg.Runtime.GetImage(ctx, c.spec.Image); err == nil {
		c.imageID = img.ID
	}
	stdio, err := w.reopenLog(s, c)
	if err != nil {
		w.log.Warn("reopen container log", "container", c.spec.Name, "err", err)
	}
	st, err := cfg.Runtime.Task(ctx, rc.ID, stdio)
	c.phase = ctrRunning // what it was when the last daemon saw it
	switch {
	case err == nil && st.Running:
		if _, labelled := rc.Labels[runtime.LabelStartedAt]; !labelled {
			c.started = startTime(st.Pid)
		}
		w.watch(rc.ID, st.Wait)
		w.startProbes(s, c)
	case err == nil && st.Exists:
		w.exited(s, c, st.Exit)
	default:
		w.exited(s, c, runtime.Exit{Unknown: true, At: rc.CreatedAt})
	}
}

// reopenLog opens the adopted attempt's log file again, where its output goes on.
func (w *worker) reopenLog(s *podState, c *ctrState) (*runtime.Stdio, error) {
	job := startJob{n: s.n, spec: c.spec, attempt: c.attempt, id: c.id}
	r, stdio, err := w.openLog(job)
	if err != nil {
		return nil, err
	}
	c.log, c.stdin = r.log, r.stdin
	return stdio, nil
}

// lastStateOf reads what a container's labels kept of its previous attempt: its termination
// and the crash backoff delay.
func lastStateOf(c runtime.Container) (*corev1.ContainerStateTerminated, time.Duration) {
	var last *corev1.ContainerStateTerminated
	if v := c.Labels[runtime.LabelLastState]; v != "" {
		last = &corev1.ContainerStateTerminated{}
		if json.Unmarshal([]byte(v), last) != nil {
			last = nil
		}
	}
	d, _ := time.ParseDuration(c.Labels[runtime.LabelBackoff])
	return last, d
}

func attemptOf(c runtime.Container) int {
	n, _ := strconv.Atoi(c.Labels[runtime.LabelAttempt])
	return n
}
