package pod

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/config"
	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
	"github.com/minipod/minipod/pkg/userns"
)

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

// sandboxJob is what making a sandbox needs, copied off the loop's state.
type sandboxJob struct {
	pod     *corev1.Pod
	n       names
	rec     sandboxRecord
	stale   []string // containers of the sandbox before: removed first
	targets []rootfsTarget
	userns  *userns.Range // hostUsers: false
}

// sandboxResult is what a made sandbox reports back to the loop.
type sandboxResult struct {
	rec   sandboxRecord
	lease string
	prep  map[string]runtime.Image
	ips   []string
	files sandbox.Files
	pid   uint32
	watch runtime.ExitWatch
	err   error
}

// startSandbox makes the sandbox off the loop, once a start slot is free. Containers of the
// sandbox before, if any, are gone first: a kubelet restarts all containers when their sandbox
// died.
func (w *worker) startSandbox(s *podState) {
	job := sandboxJob{pod: s.pod, n: s.n, rec: s.rec, targets: rootfsTargets(s)}
	for _, c := range s.all() {
		if c.id == "" {
			continue
		}
		if c.alive() {
			w.exited(s, c, runtime.Exit{Unknown: true, At: time.Now()})
		}
		closeLog(c)
		job.stale = append(job.stale, c.id)
	}
	s.sandboxBusy = true
	w.spawn(s, func() {
		var r sandboxResult
		if s.slot.take(s.ctx) {
			r = w.makeSandbox(s.ctx, job)
		} else {
			r.err = fmt.Errorf("waiting for a start slot: %w", s.ctx.Err())
		}
		w.deliver(s, func() { w.sandboxDone(s, r) }, func() {
			// The version went meanwhile; its teardown removes the sandbox, but not the lease.
			if r.lease != "" {
				w.wg.Go(func() { w.deleteLease(context.Background(), r.lease) })
			}
		})
	})
}

// sandboxDone applies a sandbox's creation, or its failure, on the loop.
func (w *worker) sandboxDone(s *podState, r sandboxResult) {
	s.sandboxBusy = false
	s.rec, s.lease, s.prep = r.rec, r.lease, r.prep
	if r.err != nil {
		w.log.Error("create sandbox failed", "err", r.err)
		w.event(s, nil, events.Warning, events.ReasonFailedCreatePodSandBox, "Failed to create pod sandbox: %v", r.err)
		s.sandboxErr = r.err
		s.retryAt = time.Now().Add(sandboxRetry)
		s.slot.release()
		return
	}
	s.sandboxErr = nil
	s.ips, s.files, s.pausePID = r.ips, r.files, r.pid
	s.sandboxOK = true
	s.startTime = startTime(r.pid)
	w.watch(s.rec.SandboxID, r.watch)
}

const sandboxRetry = 5 * time.Second

// makeSandbox makes the network namespace, attaches it with CNI, writes the pod's files and
// starts the pause container. A failed step undoes the earlier ones.
func (w *worker) makeSandbox(ctx context.Context, job sandboxJob) (r sandboxResult) {
	cfg := &w.m.cfg
	r.rec = job.rec
	for _, id := range job.stale {
		if err := cfg.Runtime.Remove(ctx, id); err != nil {
			w.log.Warn("remove container", "id", id, "err", err)
		}
	}
	// A pod with hostUsers: false gets its range before anything of it exists (its volumes
	// may have asked first: the range is the same).
	if job.userns, r.err = w.m.userNS(job.pod); r.err != nil {
		return r
	}
	// Anything left of an earlier sandbox goes first. Its record is written before any part of
	// a sandbox exists and removed after all of them are gone, so without a record there is
	// nothing to clean up, and a brand-new pod skips a CNI DEL of nothing (about 11 ms of
	// plugin execs).
	if _, err := os.Stat(job.n.recordPath()); err == nil {
		if r.err = w.removeSandbox(ctx, r.rec); r.err != nil {
			return r
		}
	}
	if r.err = os.MkdirAll(job.n.dir(), 0o755); r.err != nil {
		r.err = fmt.Errorf("create pod dir: %w", r.err)
		return r
	}
	r.rec.ShimGroup = r.rec.SandboxID + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if r.err = writeRecord(job.n.dir(), r.rec); r.err != nil {
		return r
	}
	// One lease covers the pause container and the first containers: each would otherwise
	// make and delete one of its own.
	var err error
	if r.lease, err = cfg.Runtime.NewLease(ctx); err != nil {
		w.log.Warn("no lease for the sandbox's containers", "err", err)
		r.lease = ""
	}
	if job.userns != nil {
		// Their root filesystems are copies owned by the range, made by CreateContainer.
		job.targets = nil
	}
	waitRootfs := w.prepareRootfs(ctx, r.lease, job.targets)
	r.err = w.runSandbox(ctx, job, &r)
	r.prep = waitRootfs()
	if r.err != nil {
		ctx := context.WithoutCancel(ctx)
		w.deleteLease(ctx, r.lease)
		r.lease, r.prep = "", nil
		_ = w.removeSandbox(ctx, r.rec)
		return r
	}
	w.log.Info("sandbox ready", "ip", firstIP(r.ips), "rootfsAhead", len(r.prep))
	return r
}

// runSandbox starts the pause container while CNI attaches the network namespace (neither
// needs the other, only the namespace, which exists first), then writes the pod's files.
func (w *worker) runSandbox(ctx context.Context, job sandboxJob, r *sandboxResult) error {
	cfg := &w.m.cfg
	cniDone := make(chan error, 1)
	attach := func() {
		a := attachment(r.rec, job.pod)
		go func() {
			cniDone <- w.m.cni.do(ctx, func(ctx context.Context) (err error) {
				start := time.Now()
				r.ips, err = cfg.Network.Setup(ctx, a)
				cfg.Metrics.CNIOperation("add", time.Since(start), err)
				return err
			})
		}()
	}
	switch {
	case job.pod.Spec.HostNetwork:
		r.ips = []string{cfg.HostIP}
		cniDone <- nil
	case ownNetNS(job):
		// The pause container makes the network namespace, in its user namespace; it is
		// pinned and attached once the pause container runs (below).
	default:
		if _, err := sandbox.NewNetNS(filepath.Dir(r.rec.NetNS), filepath.Base(r.rec.NetNS)); err != nil {
			return err
		}
		attach()
	}
	// Whatever happens below, the CNI call is over before this returns, so that a rollback's
	// DEL never races the ADD.
	cniErr, cniWaited := error(nil), false
	waitCNI := func() error {
		if !cniWaited {
			cniErr, cniWaited = <-cniDone, true
		}
		return cniErr
	}
	defer waitCNI()
	// The pod's cgroup gets its pod-level limits before anything runs in it.
	if err := sandbox.SetPodCgroup(job.n.cgroupParent(), podCgroupLimits(job.pod)); err != nil {
		return err
	}
	pid, watch, err := w.startPause(ctx, job, r.rec, r.lease)
	if err != nil {
		if ownNetNS(job) {
			cniDone <- nil // never attached
		}
		return err
	}
	if ownNetNS(job) {
		if _, err := sandbox.PinNetNS(pid, filepath.Dir(r.rec.NetNS), filepath.Base(r.rec.NetNS)); err != nil {
			cniDone <- nil
			return err
		}
		attach()
	}
	if err := waitCNI(); err != nil {
		return err
	}
	r.pid, r.watch = pid, watch
	r.files, err = w.writePodFiles(job, firstIP(r.ips))
	if err == nil && job.userns != nil {
		// Root inside owns them, as an ID-mapped mount of them would show.
		for _, f := range []string{r.files.Hosts, r.files.Hostname, r.files.ResolvConf} {
			if err = job.userns.ShiftFile(f); err != nil {
				break
			}
		}
	}
	return err
}

// ownNetNS reports whether the pause container makes the pod's network namespace: in a user
// namespace, the network namespace must be that namespace's for the kernel to mount sysfs in
// it (runc 1.1 does not fall back to a bind of /sys), so it cannot be made beforehand.
func ownNetNS(job sandboxJob) bool {
	return job.userns != nil && !job.pod.Spec.HostNetwork
}

func (w *worker) startPause(ctx context.Context, job sandboxJob, rec sandboxRecord, lease string) (uint32, runtime.ExitWatch, error) {
	cfg := &w.m.cfg
	img, err := cfg.Runtime.GetImage(ctx, cfg.PauseImage)
	if err != nil {
		return 0, runtime.ExitWatch{}, fmt.Errorf("pause image: %w", err)
	}
	netns := rec.NetNS
	if ownNetNS(job) {
		netns = "" // a new one, of the pod's user namespace
	}
	err = cfg.Runtime.CreateContainer(ctx, runtime.ContainerConfig{
		UserNS:       job.userns,
		ID:           rec.SandboxID,
		Image:        cfg.PauseImage,
		Resolved:     &img,
		Labels:       labels(job.pod, rec, runtime.RoleSandbox, "", 0),
		Args:         Command(&corev1.Container{}, img.Config),
		Env:          img.Config.Env,
		Hostname:     hostname(job.pod),
		NetNS:        netns,
		CgroupParent: job.n.cgroupParent(),
		Namespaces:   podNamespaces(job.pod),
		ShimGroup:    rec.ShimGroup,
		Lease:        lease,
	})
	if err != nil {
		return 0, runtime.ExitWatch{}, err
	}
	return cfg.Runtime.Start(ctx, rec.SandboxID, nil)
}

func hostname(p *corev1.Pod) string {
	if p.Spec.Hostname != "" {
		return p.Spec.Hostname
	}
	return p.Name
}

func firstIP(ips []string) string {
	if len(ips) > 0 {
		return ips[0]
	}
	return ""
}

// clusterDomain completes a pod's FQDN when it sets a subdomain, as in a cluster's default.
const clusterDomain = "cluster.local"

// writePodFiles writes the pod's /etc/hosts, /etc/hostname and /etc/resolv.conf.
func (w *worker) writePodFiles(job sandboxJob, podIP string) (sandbox.Files, error) {
	p := job.pod
	var aliases []sandbox.HostAlias
	for _, a := range p.Spec.HostAliases {
		aliases = append(aliases, sandbox.HostAlias{IP: a.IP, Hostnames: a.Hostnames})
	}
	fqdn := ""
	if sub := p.Spec.Subdomain; sub != "" {
		fqdn = fmt.Sprintf("%s.%s.%s.svc.%s", hostname(p), sub, p.Namespace, clusterDomain)
	}
	resolv := sandbox.ResolvConf(p.Spec.DNSPolicy, p.Spec.DNSConfig, w.m.cfg.ResolvConf)
	var hosts []byte
	if p.Spec.HostNetwork {
		// The node's file, opened as a file the daemon trusts: a regular file (never a FIFO
		// waited on) of at most 1 MiB.
		node, err := config.ReadTrusted("node hosts file", "/etc/hosts", false, true, 1<<20)
		if err != nil {
			return sandbox.Files{}, err
		}
		hosts = sandbox.HostNetworkHosts(node, aliases)
	} else {
		hosts = sandbox.ManagedHosts(hostname(p), fqdn, podIP, aliases)
	}
	return sandbox.WriteFiles(job.n.dir(), hosts, hostname(p), resolv)
}

// attachment is the sandbox's CNI attachment; p may be nil (a teardown without the manifest
// has no port mappings to name: CNI's cached result has them).
func attachment(rec sandboxRecord, p *corev1.Pod) sandbox.Attachment {
	a := sandbox.Attachment{ID: rec.SandboxID, NetNS: rec.NetNS, Namespace: rec.Namespace, Name: rec.Name, UID: rec.UID}
	if p == nil {
		return a
	}
	for _, c := range p.Spec.Containers {
		for _, port := range c.Ports {
			if port.HostPort == 0 {
				continue
			}
			proto := string(port.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			a.Ports = append(a.Ports, sandbox.Port{HostPort: port.HostPort, ContainerPort: port.ContainerPort, Protocol: strings.ToLower(proto), HostIP: port.HostIP})
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
	if rec.HostNetwork {
		return nil
	}
	a := attachment(rec, nil)
	if !sandbox.NetNSAlive(rec.NetNS) {
		// CNI DEL must still run to release the IP and iptables rules, but without a netns.
		a.NetNS = ""
	}
	err := w.m.cni.do(ctx, func(ctx context.Context) error {
		start := time.Now()
		err := cfg.Network.Teardown(ctx, a)
		cfg.Metrics.CNIOperation("del", time.Since(start), err)
		return err
	})
	return errors.Join(err, sandbox.RemoveNetNS(rec.NetNS))
}

func labels(p *corev1.Pod, rec sandboxRecord, role, container string, attempt int) map[string]string {
	l := map[string]string{
		runtime.LabelPodUID:       string(p.UID),
		runtime.LabelPodName:      p.Name,
		runtime.LabelPodNamespace: p.Namespace,
		runtime.LabelRole:         role,
		runtime.LabelManifest:     p.Annotations[AnnotationManifest],
	}
	if role == runtime.RoleSandbox {
		l[runtime.LabelNetNS] = rec.NetNS
	} else {
		l[runtime.LabelContainer] = container
		l[runtime.LabelAttempt] = strconv.Itoa(attempt)
	}
	return l
}

// AnnotationManifest names the file a pod came from.
const AnnotationManifest = "minipod.io/manifest"

// writeRecord writes the sandbox record durably: it is what a daemon after a crash or a power
// loss tears the sandbox down by.
func writeRecord(dir string, rec sandboxRecord) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := sandbox.WriteFileAtomic(recordIn(dir), b, 0o644); err != nil {
		return fmt.Errorf("write sandbox record: %w", err)
	}
	return nil
}

func readRecord(dir string) (sandboxRecord, error) {
	var rec sandboxRecord
	b, err := os.ReadFile(recordIn(dir))
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(b, &rec)
}

func podMounts(f sandbox.Files) []specs.Mount {
	if f.Hosts == "" {
		return nil
	}
	return []specs.Mount{
		bindPodFile(f.Hosts, "/etc/hosts"),
		bindPodFile(f.Hostname, "/etc/hostname"),
		bindPodFile(f.ResolvConf, "/etc/resolv.conf"),
	}
}

func bindPodFile(src, dst string) specs.Mount {
	return specs.Mount{Source: src, Destination: dst, Type: "bind", Options: []string{"rbind", "rprivate", "rw"}}
}
