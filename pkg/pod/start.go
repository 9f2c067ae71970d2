package pod

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/envvar"
	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/logs"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/userns"
	"github.com/minipod/minipod/pkg/volume"
)

// startJob is what starting one attempt of a container needs, copied off the loop's state: the
// goroutine that runs it touches nothing the loop owns.
type startJob struct {
	pod      *corev1.Pod
	n        names
	rec      sandboxRecord
	spec     *corev1.Container
	init     bool
	attempt  int
	id       string
	oldID    string // the previous attempt's container, removed first
	last     *corev1.ContainerStateTerminated
	delay    time.Duration
	ahead    runtime.Image // the root filesystem made ahead for this ID, if any
	lease    string        // the sandbox's lease that holds it
	ips      []string
	files    sandbox.Files
	vols     *volume.Prepared
	pausePID uint32
	pullErr  bool // its last attempt failed to pull: a new failure is ImagePullBackOff
	slot     *slotHold
}

// startResult is how a start ended: a running task, or the reason it could not be made.
type startResult struct {
	log        *logs.File
	stdin      *io.PipeWriter
	pid        uint32
	startedAt  time.Time
	imageID    string
	stopSignal string
	user       *runtime.ProcessUser
	hook       bool // a postStart hook runs now; hookDone follows

	reason    string // the waiting reason when err is set
	err       error
	permanent bool // waits for a change of spec, not for time
	pull      bool // the image could not be had

	watch runtime.ExitWatch // for the goroutine that started it
}

// startContainer begins the container's next attempt off the loop.
func (w *worker) startContainer(s *podState, c *ctrState) {
	job := startJob{pod: s.pod, n: s.n, rec: s.rec, spec: c.spec, init: c.init, ips: s.ips,
		files: s.files, vols: s.vols, pausePID: s.pausePID, delay: c.delay, lease: s.lease,
		pullErr: c.waitReason == ReasonErrImagePull || c.waitReason == ReasonImagePullBackOff, slot: s.slot}
	if c.id != "" {
		job.attempt = c.attempt + 1
		job.oldID = c.id
		if c.phase == ctrExited {
			c.last = terminatedState(c)
		}
		closeLog(c)
	}
	job.last = c.last
	job.id = s.n.containerID(c.spec.Name, job.attempt)
	job.ahead = s.prep[job.id]
	w.moveTo(c, ctrStarting)
	c.pulling = ""
	w.spawn(s, func() {
		r := w.runStart(s.ctx, job, func(msg string) {
			w.post(s, func() { c.pulling = msg })
		})
		w.deliver(s, func() { w.started(s, c, job, r) }, func() {
			if r.log != nil {
				r.log.Close()
			}
			if r.stdin != nil {
				r.stdin.Close()
			}
		})
		if r.err != nil {
			return
		}
		// The exit is watched only now, so that it reaches the loop after the start did.
		w.watch(job.id, r.watch)
		if r.hook {
			w.postStart(s, c, job)
		}
	})
}

// started applies a start's result on the loop.
func (w *worker) started(s *podState, c *ctrState, job startJob, r startResult) {
	c.pulling = ""
	c.reset = false // the attempt is made: its number counts the restart
	if r.err != nil {
		w.moveTo(c, ctrFailed)
		if r.reason == reasonRunContainerError {
			c.startFailed(job.id, job.attempt, job.n.logPath(c.spec.Name, job.attempt), r.err, time.Now())
		}
		c.waitReason, c.waitMessage, c.permanentErr = r.reason, r.err.Error(), r.permanent
		// A start that failed is tried again with the doubling backoff, as a kubelet does
		// for image pulls and for containers that could not be made or started.
		c.failDelay = nextFailDelay(w.m.cfg.Backoff, c.failDelay)
		c.restartAt = time.Now().Add(c.failDelay)
		return
	}
	w.moveTo(c, ctrRunning)
	c.id, c.attempt, c.logPath = job.id, job.attempt, job.n.logPath(c.spec.Name, job.attempt)
	c.log, c.stdin = r.log, r.stdin
	c.exit, c.message, c.hookErr = runtime.Exit{}, "", ""
	c.started = r.startedAt
	c.imageID, c.stopSignal, c.user = r.imageID, r.stopSignal, r.user
	c.restartAt, c.failDelay = time.Time{}, 0
	c.waitReason, c.waitMessage, c.permanentErr = "", "", false
	c.hookBusy = r.hook
	// Kept on the container, so that a daemon that adopts it after it has exited reports the
	// same startedAt (the process, whose start /proc tells, is gone by then). Off the start's
	// path: without the label an adopting daemon falls back to the container's creation.
	startedAt := c.started.Format(time.RFC3339Nano)
	w.spawn(s, func() {
		_ = w.m.cfg.Runtime.SetLabel(context.WithoutCancel(s.ctx), job.id, runtime.LabelStartedAt, startedAt)
	})
	if !r.hook {
		w.startProbes(s, c)
	}
}

// postStart runs the container's postStart hook. As on a kubelet, the container counts as
// started only after it, and a failed hook kills it; the restart policy decides what comes next.
// The hook is cut short when the pod version goes.
func (w *worker) postStart(s *podState, c *ctrState, job startJob) {
	s.slot.release() // a hook waits on the container, not on the CPU
	hctx, cancel := context.WithTimeout(s.ctx, postStartTimeout)
	err := w.runHook(hctx, job.spec.Lifecycle.PostStart, job.id, job.spec, firstIP(job.ips))
	cancel()
	if s.ctx.Err() != nil {
		return // the version is going: its teardown stops the container
	}
	w.post(s, func() { w.hookDone(s, c, job.id, err) })
	if err != nil {
		w.log.Warn("postStart hook failed, killing container", "container", job.spec.Name, "err", err)
		_ = w.m.cfg.Runtime.Signal(s.ctx, job.id, syscall.SIGKILL)
	}
}

// postStartTimeout bounds a postStart hook, like the kubelet's handler timeout.
const postStartTimeout = 2 * time.Minute

func (w *worker) hookDone(s *podState, c *ctrState, id string, err error) {
	if c.id != id || !c.alive() {
		return
	}
	c.hookBusy = false
	if err != nil {
		c.hookErr = "FailedPostStartHook: " + err.Error()
		return
	}
	w.startProbes(s, c)
}

// reasonRunContainerError is the waiting reason of a container whose process could not be
// started, as the kubelet's ErrRunContainer.
const reasonRunContainerError = "RunContainerError"

// nextFailDelay is the backoff of failed starts: the crash backoff's numbers, as on a kubelet.
func nextFailDelay(b Backoff, d time.Duration) time.Duration {
	if d == 0 {
		return b.Initial
	}
	return min(2*d, b.Max)
}

// runStart makes and starts one attempt of a container. It runs off the loop.
func (w *worker) runStart(ctx context.Context, job startJob, progress func(string)) (r startResult) {
	cfg := &w.m.cfg
	fail := func(reason string, err error, permanent bool) startResult {
		if ctx.Err() != nil {
			// The version is going: nothing to report, its teardown follows.
			return startResult{reason: reason, err: err}
		}
		w.eventFor(job.pod, job.spec, job.init, events.Warning, events.ReasonFailed, "Error: %v", err)
		w.log.Warn("container not started", "container", job.spec.Name, "reason", reason, "err", err)
		return startResult{reason: reason, err: err, permanent: permanent}
	}
	if job.oldID != "" {
		// The old attempt's container goes; its log file stays for `logs --previous`.
		if err := cfg.Runtime.Remove(ctx, job.oldID); err != nil {
			w.log.Warn("remove old container", "container", job.spec.Name, "err", err)
		}
		_ = os.RemoveAll(job.n.fifoDir(job.oldID))
		job.n.pruneAttempts(job.spec.Name, job.attempt-1)
	}
	img, reason, err := w.ensureImage(ctx, job, progress)
	if err != nil {
		if reason == ReasonErrImagePull && job.pullErr {
			// The first failure says ErrImagePull; the retries wait in ImagePullBackOff.
			reason = ReasonImagePullBackOff
		}
		r = fail(reason, err, false)
		r.pull = true
		return r
	}
	cc, reason, err := w.containerConfig(job, img)
	if err != nil {
		var perm *permanentError
		return fail(reason, err, errors.As(err, &perm))
	}
	// A snapshot made ahead (prepareRootfs) is taken if it is of this image, under the lease
	// that holds it. Without one the container makes its own lease: one whose image had to be
	// pulled first may come after the sandbox's lease has expired.
	if job.ahead.ID != "" && job.ahead.ID == img.ID {
		cc.RootfsReady, cc.Lease = true, job.lease
	} else {
		// A leftover of a crash mid-start, or a snapshot made ahead of an image since retagged.
		_ = cfg.Runtime.Remove(ctx, job.id)
	}
	if err := cfg.Runtime.CreateContainer(ctx, cc); err != nil {
		return fail("CreateContainerError", err, false)
	}
	r, err = w.runTask(ctx, job)
	if err != nil {
		_ = cfg.Runtime.Remove(context.WithoutCancel(ctx), job.id)
		return fail(reasonRunContainerError, err, false)
	}
	r.imageID, r.stopSignal = img.ID, img.Config.StopSignal
	if u, err := cfg.Runtime.ProcessUser(ctx, job.id); err == nil {
		r.user = &u // from the spec just made: no call to containerd
	}
	r.hook = job.spec.Lifecycle != nil && job.spec.Lifecycle.PostStart != nil
	w.log.Info("container started", "container", job.spec.Name, "attempt", job.attempt)
	w.m.trim.touch()
	w.eventFor(job.pod, job.spec, job.init, events.Normal, events.ReasonCreated, "Created container %s", job.spec.Name)
	w.eventFor(job.pod, job.spec, job.init, events.Normal, events.ReasonStarted, "Started container %s", job.spec.Name)
	if job.attempt > 0 {
		cfg.Metrics.ContainerRestart()
	}
	return r
}

// openLog opens the attempt's CRI log file and returns where its output goes.
func (w *worker) openLog(job startJob) (startResult, *runtime.Stdio, error) {
	var r startResult
	f, err := logs.Open(job.n.logPath(job.spec.Name, job.attempt), w.m.cfg.LogRotation)
	if err != nil {
		return r, nil, err
	}
	r.log = f
	stdio := &runtime.Stdio{FIFODir: job.n.fifoDir(job.id), Stdout: f.Stdout, Stderr: f.Stderr, Terminal: job.spec.TTY}
	if job.spec.Stdin {
		// stdin: true keeps the container's stdin open (nothing is written to it yet), so that
		// a program reading it waits instead of seeing end-of-file.
		pr, pw := io.Pipe()
		r.stdin = pw
		stdio.Stdin = pr
	}
	return r, stdio, nil
}

// runTask opens the attempt's log and starts its task.
func (w *worker) runTask(ctx context.Context, job startJob) (startResult, error) {
	r, stdio, err := w.openLog(job)
	if err != nil {
		return r, err
	}
	r.pid, r.watch, err = w.m.cfg.Runtime.Start(ctx, job.id, stdio)
	// When the task started, as containerd's CRI records it: the process's start time in /proc
	// is only as exact as the whole-second boot time it counts from.
	r.startedAt = time.Now()
	if err != nil {
		r.log.Close()
		if r.stdin != nil {
			r.stdin.Close()
		}
		return startResult{}, err
	}
	return r, nil
}

// permanentError is a container configuration that cannot work until the manifest changes.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// containerConfig builds the container's runtime configuration from its spec, its image and
// the pod. The error's reason is the container's waiting reason.
func (w *worker) containerConfig(job startJob, img runtime.Image) (runtime.ContainerConfig, string, error) {
	cfg := &w.m.cfg
	spec := job.spec
	fields := podFields{pod: job.pod, podIPs: job.ips, hostIP: cfg.HostIP, nodeName: cfg.NodeName,
		configMapDir: cfg.ConfigMapDir, secretDir: cfg.SecretDir, objects: cfg.Objects, insecureSecrets: cfg.InsecureSecretPerms, podDir: job.n.dir()}
	env, err := Env(spec, img.Config, fields)
	if err != nil {
		// The configMap or secret may appear later: try again with backoff.
		return runtime.ContainerConfig{}, "CreateContainerConfigError", err
	}
	env = withHostname(env, job.pod, cfg.NodeName)
	vars := envMap(env, spec)
	args := envvar.ExpandAll(Command(spec, img.Config), vars)
	if len(args) == 0 {
		return runtime.ContainerConfig{}, "CreateContainerConfigError", &permanentError{errors.New("no command specified")}
	}
	sec, err := Security(job.pod, spec, img.Config.User, cfg.SeccompDir)
	if err != nil {
		return runtime.ContainerConfig{}, "CreateContainerConfigError", &permanentError{err}
	}
	ns, err := w.m.userNS(job.pod)
	if err != nil {
		return runtime.ContainerConfig{}, "CreateContainerError", err
	}
	mounts, devices, reason, err := w.containerMounts(job, vars, ns)
	if err != nil {
		return runtime.ContainerConfig{}, reason, err
	}
	cwd := spec.WorkingDir
	if cwd == "" {
		cwd = img.Config.WorkingDir
	}
	return runtime.ContainerConfig{
		ID:                job.id,
		Image:             spec.Image,
		Resolved:          &img,
		Labels:            containerLabels(job, img),
		Args:              args,
		Env:               env,
		Cwd:               cwd,
		User:              img.Config.User,
		NetNS:             job.rec.NetNS,
		JoinPID:           job.pausePID,
		Mounts:            mounts,
		Devices:           devices,
		CgroupParent:      job.n.cgroupParent(),
		Resources:         Resources(spec.Resources),
		Security:          sec,
		RootfsPropagation: volume.RootfsPropagation(mounts),
		Namespaces:        podNamespaces(job.pod),
		TTY:               spec.TTY,
		LogPath:           job.n.logPath(spec.Name, job.attempt),
		ShimGroup:         job.rec.ShimGroup,
		UserNS:            ns,
	}, "", nil
}

// withHostname puts HOSTNAME, the pod's hostname (the node's for a host-network pod), before
// the container's environment, as containerd's CRI does; the image or the container may set
// another.
func withHostname(env []string, p *corev1.Pod, nodeName string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOSTNAME=") {
			return env
		}
	}
	h := hostname(p)
	if p.Spec.HostNetwork {
		h = nodeName
	}
	return append([]string{"HOSTNAME=" + h}, env...)
}

// containerLabels are the container's labels: who it is, and what a restarted daemon needs to
// report and pace it like this one would.
func containerLabels(job startJob, img runtime.Image) map[string]string {
	l := labels(job.pod, job.rec, runtime.RoleApp, job.spec.Name, job.attempt)
	if job.init {
		l[runtime.LabelInit] = "true"
		if isSidecar(job.spec) {
			l[runtime.LabelSidecar] = "true"
		}
	}
	if img.Config.StopSignal != "" {
		l[runtime.LabelStopSignal] = img.Config.StopSignal
	}
	if job.last != nil {
		// containerd caps a label at 4 KiB: keep the message short.
		last := *job.last
		last.Message = truncate(last.Message, 1024)
		if b, err := json.Marshal(&last); err == nil {
			l[runtime.LabelLastState] = string(b)
		}
	}
	if job.delay > 0 {
		l[runtime.LabelBackoff] = job.delay.String()
	}
	return l
}

// containerMounts are the pod's files, the container's volumes and its termination message
// file, with the device cgroup rules of the device nodes its hostPath volumes are.
func (w *worker) containerMounts(job startJob, vars map[string]string, ns *userns.Range) ([]specs.Mount, []specs.LinuxDeviceCgroup, string, error) {
	var devices []specs.LinuxDeviceCgroup
	var mounts []specs.Mount
	if !job.pod.Spec.HostNetwork {
		mounts = podMounts(job.files)
	} else if job.files.Hosts != "" {
		// Host-network pods see the node's name and resolv.conf, and the node's /etc/hosts
		// with the pod's hostAliases, as on a kubelet.
		mounts = []specs.Mount{bindPodFile(job.files.Hosts, "/etc/hosts")}
	}
	if job.vols != nil {
		vm, devs, err := job.vols.MountsAndDevices(job.spec, vars)
		if err != nil {
			reason := "CreateContainerConfigError"
			var verr *volume.Error
			if errors.As(err, &verr) {
				reason = verr.Reason
			}
			return nil, nil, reason, err
		}
		mounts = append(mounts, vm...)
		for _, d := range devs {
			devices = append(devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &d.Major, Minor: &d.Minor, Access: d.Access})
		}
	}
	if job.spec.TerminationMessagePath != "" {
		// The container writes its termination message into a host file, read after it exits.
		termLog := job.n.termLogPath(job.spec.Name, job.attempt)
		if err := os.MkdirAll(filepath.Dir(termLog), 0o755); err != nil {
			return nil, nil, "CreateContainerError", err
		}
		if err := createTermLog(termLog); err != nil {
			return nil, nil, "CreateContainerError", err
		}
		if ns != nil {
			// Root inside owns it, as on a kubelet, whose runtime ID-maps the mount.
			if err := ns.ShiftFile(termLog); err != nil {
				return nil, nil, "CreateContainerError", err
			}
		}
		mounts = append(mounts, specs.Mount{Source: termLog, Destination: job.spec.TerminationMessagePath, Type: "bind", Options: []string{"rbind", "rprivate", "rw"}})
	}
	return mounts, devices, "", nil
}

// createTermLog makes an empty termination message file that any user in the container can
// write, as the kubelet does: a container running as a non-root user writes its message to
// it too. The mode is set on the open file, so the umask cannot narrow it.
func createTermLog(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	err = f.Chmod(0o666)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
