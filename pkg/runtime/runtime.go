// Package runtime is minipod's only door to containerd: images, containers, tasks and exec.
//
// It speaks only the classic containerd APIs (containers, tasks, images, content, snapshots,
// leases) so that one binary serves containerd 1.6, 1.7 and 2.x daemons. Everything minipod
// creates carries labels (see the Label* constants), which is how a restarted daemon finds its
// pods again: containerd is the source of truth.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/core/snapshots"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/minipod/minipod/pkg/userns"
)

// Labels minipod puts on every container it creates.
const (
	LabelPodUID       = "minipod.io/pod-uid"
	LabelPodName      = "minipod.io/pod-name"
	LabelPodNamespace = "minipod.io/pod-namespace"
	LabelRole         = "minipod.io/role" // RoleSandbox or RoleApp
	LabelContainer    = "minipod.io/container"
	LabelAttempt      = "minipod.io/attempt"
	LabelManifest     = "minipod.io/manifest"
	LabelNetNS        = "minipod.io/netns"
	LabelLogPath      = "minipod.io/log-path"
	LabelStartedAt    = "minipod.io/started-at"
	LabelInit         = "minipod.io/init"
	LabelSidecar      = "minipod.io/sidecar"
	LabelStopSignal   = "minipod.io/stop-signal"
	LabelLastState    = "minipod.io/last-state" // JSON of the previous attempt's termination
	LabelBackoff      = "minipod.io/backoff"    // crash backoff delay when this attempt started
	LabelUser         = "minipod.io/user"       // the process's uid:gid:groups (ProcessUser)

	RoleSandbox = "sandbox"
	RoleApp     = "app"
)

// ErrImageNotFound is returned when an image is not in containerd's image store.
var ErrImageNotFound = errors.New("image not found")

// Config says which containerd to use.
type Config struct {
	Address     string // containerd socket
	Namespace   string // containerd namespace holding everything minipod owns
	Snapshotter string // "" means overlayfs
}

// Runtime is a connection to containerd bound to one namespace. It is safe for concurrent use
// and lives until Close.
type Runtime struct {
	client      *client.Client
	namespace   string
	snapshotter string
	procs       sync.Map // container ID -> *specs.Process, for ExecOutput
	images      imageCache
	exits       exitHub
	run         string          // labels this Runtime's leases (labelLease)
	prepared    preparedKeys    // snapshots this Runtime made and has not removed
	remaps      keyLocks        // one copy at a time of a remapped rootfs (remappedParent)
	done        context.Context // ends at Close
	close       context.CancelFunc
}

// New connects to containerd and checks that it answers within the context's deadline.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	c, err := client.New(cfg.Address, client.WithDefaultNamespace(cfg.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", cfg.Address, err)
	}
	r := &Runtime{client: c, namespace: cfg.Namespace, snapshotter: cfg.Snapshotter,
		run: strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	r.exits.r = r
	r.done, r.close = context.WithCancel(context.Background())
	if r.snapshotter == "" {
		r.snapshotter = "overlayfs"
	}
	// client.New returns at once even when nothing listens: ask for the version to be sure.
	if _, err := r.Version(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Close releases the connection.
func (r *Runtime) Close() error {
	r.close()
	return r.client.Close()
}

// Version returns the daemon's version string.
func (r *Runtime) Version(ctx context.Context) (string, error) {
	v, err := r.client.Version(r.ns(ctx))
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return v.Version, nil
}

func (r *Runtime) ns(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, r.namespace)
}

// Pinned images: the CRI's label, which its image service reports as pinned and a kubelet's
// image garbage collection then never removes (k3s marks its air-gap imports the same way).
const (
	LabelPinned = "io.cri-containerd.pinned"
	Pinned      = "pinned"
)

// Import reads an OCI layout or docker-archive tar stream, stores its images and unpacks them
// for the snapshotter. It returns the names of the imported images (a docker archive's short
// names normalised: "busybox:1.36" is docker.io/library/busybox:1.36). Imported images are
// labelled LabelPinned: they cannot be pulled again, so nothing should collect them.
func (r *Runtime) Import(ctx context.Context, rd io.Reader) ([]string, error) {
	ctx = r.ns(ctx)
	var names []string
	err := r.withTransferLease(ctx, func(ctx context.Context) error {
		imgs, err := r.client.Import(ctx, rd,
			client.WithSkipDigestRef(func(string) bool { return true }),
			client.WithImageLabels(map[string]string{LabelPinned: Pinned}),
		)
		if err != nil {
			return fmt.Errorf("import image: %w", err)
		}
		for _, i := range imgs {
			img := client.NewImage(r.client, i)
			if err := img.Unpack(ctx, r.snapshotter); err != nil {
				return fmt.Errorf("unpack image %s: %w", i.Name, err)
			}
			names = append(names, i.Name)
		}
		return nil
	})
	return names, err
}

// Image is a locally present image's identity and run configuration.
type Image struct {
	Ref    string
	ID     string // digest of the image's manifest target, reported as imageID
	Config ocispec.ImageConfig
	name   string // the name containerd has it under (Ref, or Ref normalised)
}

// GetImage looks an image up by reference, makes sure it is unpacked and returns its
// config. It returns an error wrapping ErrImageNotFound when the image is not present.
func (r *Runtime) GetImage(ctx context.Context, ref string) (Image, error) {
	ctx = r.ns(ctx)
	img, meta, err := r.resolve(ctx, ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return Image{}, fmt.Errorf("image %s: %w", ref, ErrImageNotFound)
		}
		return Image{}, fmt.Errorf("get image %s: %w", ref, err)
	}
	// Unpacked means the snapshot of its top layer exists (what the client's IsUnpacked asks,
	// after reading the manifest and config again).
	if _, err := r.client.SnapshotService(r.snapshotter).Stat(ctx, meta.chainID); err != nil {
		if !errdefs.IsNotFound(err) {
			return Image{}, fmt.Errorf("check image %s: %w", ref, err)
		}
		if err := img.Unpack(ctx, r.snapshotter); err != nil {
			return Image{}, fmt.Errorf("unpack image %s: %w", ref, err)
		}
	}
	return resolvedImage(ref, img, meta), nil
}

// image finds an image by the reference a pod wrote or, failing that, by its normalised form
// ("busybox:1.36" is docker.io/library/busybox:1.36), the name a docker archive's short
// RepoTags get on import and the one other clients pull under, as the CRI looks images up.
func (r *Runtime) image(ctx context.Context, ref string) (client.Image, error) {
	img, err := r.client.GetImage(ctx, ref)
	if !errdefs.IsNotFound(err) {
		return img, err
	}
	named, perr := reference.ParseDockerRef(ref)
	if perr != nil || named.String() == ref {
		return img, err
	}
	if nimg, nerr := r.client.GetImage(ctx, named.String()); nerr == nil {
		return nimg, nil
	}
	return img, err
}

// ContainerConfig is everything needed to create one container. It holds no containerd
// types so that callers stay independent of the client library.
type ContainerConfig struct {
	ID       string
	Image    string // reference of a present image
	Labels   map[string]string
	Args     []string
	Env      []string
	Cwd      string
	User     string // "uid[:gid]" or a name from the image's /etc/passwd; "" keeps root
	Hostname string // only with a new UTS namespace
	// NetNS is the path of the network namespace to join.
	NetNS string
	// JoinPID, when non-zero, makes the container join that process's IPC and UTS namespaces
	// (the pod's pause process) instead of getting new ones.
	JoinPID uint32
	Mounts  []specs.Mount
	// Devices are device nodes the container may use besides the default ones (a hostPath
	// volume that is one): an allow rule each in its device cgroup.
	Devices []specs.LinuxDeviceCgroup
	TTY     bool
	LogPath string
	// CgroupParent is the pod's cgroup; the container's is CgroupParent/ID.
	CgroupParent string
	Resources    Resources
	Security     Security
	Namespaces   Namespaces
	// RootfsPropagation is "rshared" or "rslave" when a mount needs it, else "".
	RootfsPropagation string
	// Resolved, when set, is what GetImage returned for Image: the container is made of that
	// image without looking it up again (an Images/Get per container less).
	Resolved *Image
	// RootfsReady says that PrepareRootfs made the container's snapshot already.
	RootfsReady bool
	// Lease, when set, is a lease of NewLease to create the container under, instead of one
	// of its own (two calls to containerd fewer).
	Lease string
	// ShimGroup, when set, makes containerd's runc shim serve every container of the same
	// group from one process (the annotation the runc v2 shim reads; the CRI groups a pod's
	// containers the same way, by sandbox ID): one shim per pod instead of one per container.
	// The shim exits when the last container of its group is deleted.
	ShimGroup string
	// UserNS, when set, puts the container in a user namespace of that range (a pod with
	// hostUsers: false): a new one, or with JoinPID the one of that process (the pod's pause),
	// with the range's mapping either way, as runc wants it. Its root filesystem is then a
	// copy of the image's owned by the range (runc 1.1 has no ID-mapped mounts): see
	// remappedParent. Without NetNS, the container gets a new network namespace, which then
	// belongs to its user namespace: the kernel mounts sysfs only for a namespace's owner.
	UserNS *userns.Range
}

// withoutRlimits drops the default spec's rlimits (open files 1024:1024), as containerd's CRI
// does: containers inherit the runtime's own limits, as they do under a kubelet (nginx and
// redis size themselves by the open-files limit).
func withoutRlimits(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
	if s.Process != nil {
		s.Process.Rlimits = nil
	}
	return nil
}

// annotationShimGroup is the OCI annotation by which containerd's runc v2 shim (1.6, 1.7 and
// 2.x) groups containers into one shim process.
const annotationShimGroup = "io.containerd.runc.v2.group"

// Resources are a container's cgroup limits; zero values mean unlimited or the default.
type Resources struct {
	CPUShares   uint64 // cgroup v1 cpu.shares (runc converts it to cpu.weight on cgroup v2)
	CPUQuota    int64  // microseconds per CPUPeriod
	CPUPeriod   uint64
	MemoryLimit int64 // bytes
}

// CreateContainer creates a container with a fresh snapshot of its image. On failure nothing is
// left behind.
func (r *Runtime) CreateContainer(ctx context.Context, cfg ContainerConfig) error {
	ctx = r.ns(ctx)
	lease := cfg.Lease
	if lease == "" {
		// A lease of minipod's own rather than the client's (24 hours, unlabelled): one that a
		// daemon killed mid-create leaves is then ended by the next start (DeleteLeases).
		var err error
		if lease, err = r.NewLease(ctx); err != nil {
			return err
		}
		defer func() { _ = r.DeleteLease(context.WithoutCancel(ctx), lease) }()
	}
	ctx = leases.WithLease(ctx, lease)
	r.forgetSpec(cfg.ID)
	imageName, meta, err := r.imageFor(ctx, &cfg)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return fmt.Errorf("image %s: %w", cfg.Image, ErrImageNotFound)
		}
		return fmt.Errorf("get image %s: %w", cfg.Image, err)
	}
	opts := []oci.SpecOpts{
		oci.WithDefaultSpec(),
		oci.WithDefaultUnixDevices,
		oci.WithProcessArgs(cfg.Args...),
		oci.WithEnv(cfg.Env),
		// Containers see their own cgroup read-only, as under the CRI.
		oci.WithMounts([]specs.Mount{{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}}}),
		oci.WithMounts(cfg.Mounts),
		withoutRlimits,
	}
	opts = append(opts, namespaceOpts(cfg)...)
	if cfg.UserNS != nil {
		opts = append(opts, withUserNS(*cfg.UserNS, cfg.JoinPID))
	}
	if len(cfg.Devices) > 0 {
		devices := cfg.Devices
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux.Resources == nil {
				s.Linux.Resources = &specs.LinuxResources{}
			}
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, devices...)
			return nil
		})
	}
	if cfg.Cwd != "" {
		opts = append(opts, oci.WithProcessCwd(cfg.Cwd))
	}
	if cfg.JoinPID != 0 {
		joins := []specs.LinuxNamespaceType{specs.UTSNamespace}
		if !cfg.Namespaces.HostIPC {
			joins = append(joins, specs.IPCNamespace)
		}
		for _, t := range joins {
			opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{
				Type: t,
				Path: fmt.Sprintf("/proc/%d/ns/%s", cfg.JoinPID, nsFile(t)),
			}))
		}
	} else if cfg.Namespaces.HostNetwork {
		// A host-network pod has the host's name, as on a kubelet.
		opts = append(opts, oci.WithHostNamespace(specs.UTSNamespace))
	} else if cfg.Hostname != "" {
		opts = append(opts, oci.WithHostname(cfg.Hostname))
	}
	if cfg.User != "" {
		opts = append(opts, oci.WithUser(cfg.User))
	}
	if cfg.TTY {
		opts = append(opts, oci.WithTTY)
	}
	opts = append(opts, securityOpts(cfg.Security, cfg.User)...)
	if cfg.RootfsPropagation != "" {
		prop := cfg.RootfsPropagation
		opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			s.Linux.RootfsPropagation = prop
			return nil
		})
	}
	if cfg.CgroupParent != "" {
		opts = append(opts, oci.WithCgroup(path.Join(cfg.CgroupParent, cfg.ID)))
	}
	if cfg.ShimGroup != "" {
		opts = append(opts, oci.WithAnnotations(map[string]string{annotationShimGroup: cfg.ShimGroup}))
	}
	if r := cfg.Resources; r.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(r.CPUShares))
	}
	if r := cfg.Resources; r.CPUQuota > 0 {
		opts = append(opts, oci.WithCPUCFS(r.CPUQuota, r.CPUPeriod))
	}
	if r := cfg.Resources; r.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(r.MemoryLimit)))
	}
	// The process as the spec ends up: its user goes into a label (a restarted daemon reports
	// it without reading the spec back), and the whole of it primes the exec cache.
	var proc *specs.Process
	opts = append(opts, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		proc = s.Process
		return nil
	})
	_, err = r.client.NewContainer(ctx, cfg.ID,
		r.withRootfs(cfg.ID, imageName, meta, cfg.RootfsReady, cfg.UserNS),
		client.WithContainerLabels(cfg.Labels),
		client.WithNewSpec(opts...),
		func(_ context.Context, _ *client.Client, c *containers.Container) error {
			if proc != nil {
				c.Labels = maps.Clone(c.Labels)
				if c.Labels == nil {
					c.Labels = map[string]string{}
				}
				c.Labels[LabelUser] = processUserOf(proc.User).String()
			}
			return nil
		},
	)
	if err != nil {
		// NewContainer may have made the snapshot before failing on the spec.
		_ = r.removeSnapshot(ctx, r.snapshotter, cfg.ID)
		return fmt.Errorf("create container %s: %w", cfg.ID, err)
	}
	if proc != nil {
		r.procs.Store(cfg.ID, proc)
	}
	return nil
}

// ProcessUser is the user, group and groups the container's process runs with, from its spec.
func (r *Runtime) ProcessUser(ctx context.Context, id string) (ProcessUser, error) {
	proc, err := r.processSpec(r.ns(ctx), id)
	if err != nil {
		return ProcessUser{}, err
	}
	return processUserOf(proc.User), nil
}

func nsFile(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.IPCNamespace:
		return "ipc"
	case specs.UTSNamespace:
		return "uts"
	case specs.PIDNamespace:
		return "pid"
	}
	return string(t)
}

// Exit is how a task ended.
type Exit struct {
	Code    uint32
	At      time.Time
	Err     error // set when the wait itself failed (containerd went away); Code is then meaningless
	Unknown bool  // no task was found: the container never ran or its task is gone
	OOM     bool  // the kernel's OOM killer ended it (set by the caller from WatchOOM)
}

// Stdio is where a task's output goes: minipod reads the task's stdout and stderr through
// FIFOs kept in FIFODir, which outlive the daemon so that a restarted daemon can attach again.
// While nobody reads, a container that writes more than a pipe holds blocks, as under CRI.
type Stdio struct {
	FIFODir        string
	Stdin          io.Reader // nil: no stdin; a reader that never ends keeps it open (stdin: true)
	Stdout, Stderr io.Writer
	// Terminal gives the task a terminal (a container with tty: true, whose spec has one): the
	// shim makes its console and copies it to Stdout; there is no separate stderr.
	Terminal bool
}

// Start creates and starts the container's task, its output going to stdio (nil: discarded).
// It returns the task's PID and the watch of its exit, set up before the start so that no exit
// is missed.
func (r *Runtime) Start(ctx context.Context, id string, stdio *Stdio) (uint32, ExitWatch, error) {
	ctx = r.ns(ctx)
	// The task is made straight through the task service. The client's NewTask reads the
	// container's record four times (each with its OCI spec) to learn what is known here: the
	// root filesystem is the snapshot keyed by the container's ID (withRootfs).
	mounts, err := r.client.SnapshotService(r.snapshotter).Mounts(ctx, id)
	if err != nil {
		return 0, ExitWatch{}, fmt.Errorf("rootfs of %s: %w", id, err)
	}
	creator := cio.NullIO
	if stdio != nil {
		if err := os.MkdirAll(stdio.FIFODir, 0o700); err != nil {
			return 0, ExitWatch{}, fmt.Errorf("create fifo dir: %w", err)
		}
		creator = stdio.creator()
	}
	tio, err := creator(id)
	if err != nil {
		return 0, ExitWatch{}, fmt.Errorf("create task %s: %w", id, err)
	}
	cfg := tio.Config()
	req := &tasks.CreateTaskRequest{ContainerID: id, Terminal: cfg.Terminal, Stdin: cfg.Stdin, Stdout: cfg.Stdout, Stderr: cfg.Stderr}
	for _, m := range mounts {
		req.Rootfs = append(req.Rootfs, &types.Mount{Type: m.Type, Source: m.Source, Target: m.Target, Options: m.Options})
	}
	resp, err := r.client.TaskService().Create(ctx, req)
	if err != nil {
		tio.Cancel()
		tio.Close()
		return 0, ExitWatch{}, fmt.Errorf("create task %s: %w", id, errgrpc.ToNative(err))
	}
	releaseIO(tio)
	// The exit is registered before the start, so that no exit is missed.
	w := r.exits.wait(id, resp.Pid, tio)
	if _, err := r.client.TaskService().Start(ctx, &tasks.StartRequest{ContainerID: id}); err != nil {
		r.exits.forget(id, w)
		// Not cut short by the caller's context, as in Remove.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
		_ = r.deleteTask(dctx, id)
		cancel()
		tio.Cancel()
		tio.Close()
		return 0, ExitWatch{}, fmt.Errorf("start task %s: %w", id, errgrpc.ToNative(err))
	}
	return resp.Pid, w.watch(), nil
}

// ioDrain bounds how long an exit waits for the task's output to be copied.
const ioDrain = 2 * time.Second

// TaskState is a container's task as containerd sees it.
type TaskState struct {
	Exists  bool
	Running bool
	Pid     uint32
	Exit    Exit // when !Running
	Wait    ExitWatch
}

// Task looks at a container's task. For a running task, Wait delivers its exit. With stdio,
// the task's output is attached to it again (after a daemon restart).
func (r *Runtime) Task(ctx context.Context, id string, stdio *Stdio) (TaskState, error) {
	ctx = r.ns(ctx)
	if stdio == nil {
		return r.taskState(ctx, id)
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return TaskState{}, fmt.Errorf("load container %s: %w", id, err)
	}
	var attach cio.Attach
	if stdio != nil {
		attach = stdio.attach()
	}
	task, err := c.Task(ctx, attach)
	if err != nil && attach != nil && !errdefs.IsNotFound(err) {
		// A task that exited before a daemon restart has no output left to copy, and its FIFOs
		// went when its copy ended: look at it without attaching.
		if t, lerr := c.Task(ctx, nil); lerr == nil {
			if st, serr := t.Status(ctx); serr == nil && st.Status == client.Stopped {
				task, err = t, nil
			}
		}
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			return TaskState{}, nil
		}
		return TaskState{}, fmt.Errorf("load task %s: %w", id, err)
	}
	// Registered before the status is read, so that an exit right after it is not missed.
	w := r.exits.wait(task.ID(), task.Pid(), task.IO())
	var st client.Status
	err = whileUnknown(ctx, id, func() (bool, error) {
		var err error
		st, err = task.Status(ctx)
		return err == nil && st.Status == client.Unknown, err
	})
	if err != nil {
		r.exits.forget(id, w)
		return TaskState{}, fmt.Errorf("task status %s: %w", id, err)
	}
	ts := TaskState{Exists: true, Pid: task.Pid()}
	switch st.Status {
	case client.Running, client.Paused, client.Pausing:
		ts.Running = true
		ts.Wait = w.watch()
		return ts, nil
	}
	r.exits.forget(id, w)
	switch st.Status {
	case client.Stopped:
		ts.Exit = Exit{Code: st.ExitStatus, At: st.ExitTime}
	default:
		// Created but never started: treat as an exit with an unknown status.
		ts.Exit = Exit{Unknown: true, At: time.Now()}
	}
	return ts, nil
}

// taskState is Task without output to attach, through the task service alone: one call for an
// ended task and two for a running one, where the client's container and task objects make
// three. Every pod stop asks this of each of its containers.
func (r *Runtime) taskState(ctx context.Context, id string) (TaskState, error) {
	get := func() (p *tasktypes.Process, err error) {
		err = whileUnknown(ctx, id, func() (bool, error) {
			resp, err := r.client.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
			if err != nil {
				return false, errgrpc.ToNative(err)
			}
			p = resp.GetProcess()
			return p.GetStatus() == tasktypes.Status_UNKNOWN, nil
		})
		return p, err
	}
	p, err := get()
	if err == nil && taskRunning(p) {
		// Asked again once the waiter is registered: an exit in between is then either in the
		// second answer or delivered to the waiter, never lost.
		w := r.exits.wait(id, p.GetPid(), nil)
		if p, err = get(); err == nil && taskRunning(p) {
			return TaskState{Exists: true, Running: true, Pid: p.GetPid(), Wait: w.watch()}, nil
		}
		r.exits.forget(id, w)
	}
	if err != nil {
		if errdefs.IsNotFound(err) {
			return TaskState{}, nil
		}
		return TaskState{}, fmt.Errorf("load task %s: %w", id, err)
	}
	ts := TaskState{Exists: true, Pid: p.GetPid()}
	if p.GetStatus() == tasktypes.Status_STOPPED {
		ts.Exit = Exit{Code: p.GetExitStatus(), At: p.GetExitedAt().AsTime()}
	} else {
		// Created but never started: treat as an exit with an unknown status.
		ts.Exit = Exit{Unknown: true, At: time.Now()}
	}
	return ts, nil
}

// unknownWait bounds how long a task's state is asked again while containerd reports it
// UNKNOWN. containerd answers UNKNOWN, with pid 0 and no error, when the task's shim did not
// answer its state query within containerd's own short timeout: on a loaded machine, or while
// the shim is busy with an exec. That says nothing of the task; taken as "never started", it
// would have a running container restarted.
var unknownWait = 10 * time.Second

// whileUnknown calls ask until it reports a known state (or fails), backing off from 50 ms,
// for at most unknownWait.
func whileUnknown(ctx context.Context, id string, ask func() (unknown bool, err error)) error {
	deadline := time.Now().Add(unknownWait)
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		unknown, err := ask()
		if err != nil || !unknown {
			return err
		}
		if time.Now().Add(delay).After(deadline) {
			return fmt.Errorf("task %s: containerd reports its state as unknown (its shim does not answer)", id)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// taskRunning is what Task counts as running: the client's Running, Paused and Pausing.
func taskRunning(p *tasktypes.Process) bool {
	switch p.GetStatus() {
	case tasktypes.Status_RUNNING, tasktypes.Status_PAUSED, tasktypes.Status_PAUSING:
		return true
	}
	return false
}

// Signal sends sig to the container's main process. A missing task is not an error. It is
// one call to the task service: stopping a pod should not wait for the container and task
// records to be loaded first.
func (r *Runtime) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := r.client.TaskService().Kill(r.ns(ctx), &tasks.KillRequest{ContainerID: id, Signal: uint32(sig)})
	if err != nil {
		if err = errgrpc.ToNative(err); !errdefs.IsNotFound(err) {
			return fmt.Errorf("signal %s: %w", id, err)
		}
	}
	return nil
}

// Remove kills the container's task if it still runs, deletes it, and deletes the container
// with its snapshot. Removing what does not exist is not an error. It goes straight through
// containerd's services: the client's task and container objects read the container's record
// again at each step, ten calls where five do.
func (r *Runtime) Remove(ctx context.Context, id string) error {
	ctx = r.ns(ctx)
	r.forgetSpec(id)
	info, err := r.client.ContainerService().Get(ctx, id)
	if err != nil {
		if errdefs.IsNotFound(err) {
			// A crash between creating the snapshot and the container record leaves the
			// snapshot alone: its key is the container's ID.
			if err := r.removeSnapshot(ctx, r.snapshotter, id); err != nil {
				return fmt.Errorf("remove snapshot %s: %w", id, err)
			}
			return nil
		}
		return fmt.Errorf("load container %s: %w", id, err)
	}
	// The deletes are not cut short when the caller's context ends (the daemon stopping): a
	// task delete that containerd 1.6 sees cancelled half way drops the task's record but
	// leaves its shim running, with nothing left that would ever end it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), removeTimeout)
	defer cancel()
	if err := r.deleteTask(ctx, id); err != nil {
		return fmt.Errorf("delete task %s: %w", id, err)
	}
	if err := r.client.ContainerService().Delete(ctx, id); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete container %s: %w", id, err)
	}
	if info.SnapshotKey != "" {
		if err := r.removeSnapshot(ctx, info.Snapshotter, info.SnapshotKey); err != nil {
			return fmt.Errorf("remove snapshot %s: %w", info.SnapshotKey, err)
		}
	}
	return nil
}

// removeSnapshot removes one snapshot; one that is gone already is not an error.
func (r *Runtime) removeSnapshot(ctx context.Context, snapshotter, key string) error {
	err := r.client.SnapshotService(snapshotter).Remove(ctx, key)
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	r.prepared.remove(key)
	return nil
}

// RemoveSnapshots removes the snapshots whose keys start with prefix. A container's snapshot
// is keyed by its ID, and a crash between making the snapshot and the container record leaves
// one no container names; a pod's teardown, once its containers are gone, sweeps its prefix.
//
// Without earlier, only the snapshots this Runtime made itself and has not removed are
// looked at: for a pod made by this run of the daemon nothing else can have its prefix. With
// earlier (a pod an earlier run made), every snapshot is listed, which costs containerd a
// look at each one, image layers included; done for every pod, a teardown would grow with
// the number of pods on the node.
func (r *Runtime) RemoveSnapshots(ctx context.Context, prefix string, earlier bool) error {
	ctx = r.ns(ctx)
	var keys []string
	if !earlier {
		keys = r.prepared.withPrefix(prefix)
	} else if err := r.client.SnapshotService(r.snapshotter).Walk(ctx, func(_ context.Context, info snapshots.Info) error {
		if strings.HasPrefix(info.Name, prefix) {
			keys = append(keys, info.Name)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	var errs []error
	for _, k := range keys {
		if err := r.removeSnapshot(ctx, r.snapshotter, k); err != nil {
			errs = append(errs, fmt.Errorf("remove snapshot %s: %w", k, err))
		}
	}
	return errors.Join(errs...)
}

// preparedKeys are the keys of the snapshots a Runtime made, until it removes them.
type preparedKeys struct {
	mu   sync.Mutex
	keys map[string]struct{}
}

func (p *preparedKeys) add(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[string]struct{}{}
	}
	p.keys[key] = struct{}{}
}

func (p *preparedKeys) remove(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.keys, key)
}

func (p *preparedKeys) withPrefix(prefix string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for k := range p.keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// removeTimeout bounds Remove's deletes (and a failed Start's), which outlive the caller's
// context: deleteTask's retries (10 s) and the container's removal.
const removeTimeout = 20 * time.Second

// deleteTask deletes the container's task, after killing every process in it if it still
// runs. A delete can still find the task running after the kill's wait has returned (seen
// under load, when a daemon killed mid-operation left the task half handled): the task is
// then killed again and the delete retried until it has stopped, for up to ten seconds. A
// missing task is not an error.
func (r *Runtime) deleteTask(ctx context.Context, id string) error {
	ts := r.client.TaskService()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := ts.Get(ctx, &tasks.GetRequest{ContainerID: id})
		if err != nil {
			if err = errgrpc.ToNative(err); errdefs.IsNotFound(err) {
				// containerd 1.6 answers NotFound also for a task it still lists whose shim
				// does not know it (a create cut short by a daemon killed mid-call); such a
				// task makes every later create of this ID fail with "already exists".
				// Deleting it clears the entry; for a container with no task it is one
				// NotFound more.
				_, derr := ts.Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
				if derr = errgrpc.ToNative(derr); derr != nil && !errdefs.IsNotFound(derr) {
					return derr
				}
				return nil
			}
			return err
		}
		switch resp.GetProcess().GetStatus() {
		case tasktypes.Status_STOPPED, tasktypes.Status_CREATED, tasktypes.Status_UNKNOWN:
		default:
			if err := r.killAndWait(ctx, id); err != nil {
				return err
			}
		}
		_, err = ts.Delete(ctx, &tasks.DeleteTaskRequest{ContainerID: id})
		if err = errgrpc.ToNative(err); err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !errdefs.IsFailedPrecondition(err) {
			// The shim can exit under a delete that finished: what matters is whether the
			// task is still there.
			if _, gerr := ts.Get(ctx, &tasks.GetRequest{ContainerID: id}); errdefs.IsNotFound(errgrpc.ToNative(gerr)) {
				return nil
			}
			return err
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// killAndWait sends SIGKILL to every process of the container's task and waits for the task
// to exit. A wait for a task that has exited already returns at once.
func (r *Runtime) killAndWait(ctx context.Context, id string) error {
	ts := r.client.TaskService()
	_, err := ts.Kill(ctx, &tasks.KillRequest{ContainerID: id, Signal: uint32(syscall.SIGKILL), All: true})
	if err = errgrpc.ToNative(err); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("kill: %w", err)
	}
	_, err = ts.Wait(ctx, &tasks.WaitRequest{ContainerID: id})
	if err = errgrpc.ToNative(err); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("wait: %w", err)
	}
	return nil
}

// Container is a container record as listed.
type Container struct {
	ID        string
	Image     string
	Labels    map[string]string
	CreatedAt time.Time
}

// List returns the containers whose labels match all of the given ones.
func (r *Runtime) List(ctx context.Context, labels map[string]string) ([]Container, error) {
	ctx = r.ns(ctx)
	var filters []string
	for k, v := range labels {
		filters = append(filters, fmt.Sprintf("labels.%q==%q", k, v))
	}
	filter := ""
	for i, f := range filters {
		if i > 0 {
			filter += ","
		}
		filter += f
	}
	var list []containers.Container
	var err error
	if filter == "" {
		list, err = r.client.ContainerService().List(ctx)
	} else {
		list, err = r.client.ContainerService().List(ctx, filter)
	}
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(list))
	for _, c := range list {
		out = append(out, Container{ID: c.ID, Image: c.Image, Labels: c.Labels, CreatedAt: c.CreatedAt})
	}
	return out, nil
}

// SetLabel adds or changes one label on a container.
func (r *Runtime) SetLabel(ctx context.Context, id, key, value string) error {
	ctx = r.ns(ctx)
	// One update of that label alone: loading the container first would read its record,
	// OCI spec included, only to learn that it exists, which the update reports too.
	c := containers.Container{ID: id, Labels: map[string]string{key: value}}
	if _, err := r.client.ContainerService().Update(ctx, c, "labels."+key); err != nil {
		return fmt.Errorf("set label on %s: %w", id, err)
	}
	return nil
}

// Exec runs cmd inside a running container with the container's environment, user and working
// directory, and returns its exit code. Streams may be nil.
func (r *Runtime) Exec(ctx context.Context, id string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	ctx = r.ns(ctx)
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return -1, fmt.Errorf("load container %s: %w", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return -1, fmt.Errorf("read spec of %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return -1, fmt.Errorf("container %s is not running: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = cmd
	pspec.Terminal = tty
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	var eof *closeOnEOF
	if stdin != nil {
		eof = &closeOnEOF{r: stdin}
		stdin = eof
	}
	opts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if tty {
		opts = append(opts, cio.WithTerminal)
	}
	execID := "exec-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	p, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(opts...))
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer p.Delete(context.WithoutCancel(ctx), client.WithProcessKill)
	ch, err := p.Wait(ctx)
	if err != nil {
		return -1, fmt.Errorf("wait exec in %s: %w", id, err)
	}
	if err := p.Start(ctx); err != nil {
		return -1, fmt.Errorf("start exec in %s: %w", id, err)
	}
	if eof != nil {
		// The shim passes EOF on to the process only when asked to close its stdin.
		eof.close = func() { _ = p.CloseIO(context.WithoutCancel(ctx), client.WithStdinCloser) }
		eof.ready()
	}
	select {
	case st := <-ch:
		code, _, err := st.Result()
		// Let the copiers drain the fifos before returning.
		if io := p.IO(); io != nil {
			io.Wait()
		}
		if err != nil {
			return -1, fmt.Errorf("exec in %s: %w", id, err)
		}
		return int(code), nil
	case <-ctx.Done():
		_ = p.Kill(context.WithoutCancel(ctx), syscall.SIGKILL)
		return -1, ctx.Err()
	}
}

// closeOnEOF calls close once the reader it wraps reaches its end, after ready was called.
type closeOnEOF struct {
	r     io.Reader
	mu    sync.Mutex
	close func()
	ok    bool // ready was called
	eof   bool // the reader ended
}

func (c *closeOnEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.mu.Lock()
		c.eof = true
		fire := c.ok
		c.mu.Unlock()
		if fire {
			c.close()
		}
	}
	return n, err
}

func (c *closeOnEOF) ready() {
	c.mu.Lock()
	c.ok = true
	fire := c.eof
	c.mu.Unlock()
	if fire {
		c.close()
	}
}

// ImageRefs lists the names of all images present.
func (r *Runtime) ImageRefs(ctx context.Context) ([]string, error) {
	imgs, err := r.client.ImageService().List(r.ns(ctx))
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]string, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, i.Name)
	}
	return out, nil
}

// WatchOOM calls fn with the ID of every container whose task the kernel's OOM killer hit,
// until ctx ends. It resubscribes when the event stream breaks (containerd restarted).
func (r *Runtime) WatchOOM(ctx context.Context, fn func(id string)) {
	ctx = r.ns(ctx)
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		evs, errs := r.client.Subscribe(ctx, `topic=="/tasks/oom"`)
	loop:
		for {
			select {
			case <-ctx.Done():
				return
			case env := <-evs:
				delay = 100 * time.Millisecond
				if env == nil || env.Namespace != r.namespace {
					continue
				}
				v, err := typeurl.UnmarshalAny(env.Event)
				if err != nil {
					continue
				}
				if oom, ok := v.(*apievents.TaskOOM); ok {
					fn(oom.ContainerID)
				}
			case <-errs:
				break loop
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// IsNotFound reports whether err says that a containerd object does not exist.
func IsNotFound(err error) bool { return errdefs.IsNotFound(err) }
