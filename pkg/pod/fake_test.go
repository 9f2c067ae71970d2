package pod

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/minipod/minipod/pkg/events"
	"github.com/minipod/minipod/pkg/runtime"
	"github.com/minipod/minipod/pkg/sandbox"
)

// fakeRuntime is an in-memory containerd for the worker's tests: containers, tasks whose exits
// the test or a signal delivers, images, and pulls that a test can hold.
type fakeRuntime struct {
	mu         sync.Mutex
	images     map[string]runtime.Image
	containers map[string]*fakeContainer
	gates      map[string]chan struct{} // a pull of this ref waits for the channel to close
	pulling    map[string]int           // pulls in flight by ref
	cancelled  map[string]int           // pulls abandoned by ref
	leases     map[string]bool
	leaseSeq   int
	execHook   func(ctx context.Context, id string, cmd []string) (int, []byte, error)
	createErr  error            // CreateContainer of an app container fails with it while set
	failedAt   []time.Time      // when each CreateContainer failed so
	startErr   error            // Start of an app container fails with it while set
	pullErrs   map[string]error // Pull of this ref fails with the error
	imageErrs  map[string]error // Start of a container of this image fails with the error
}

type fakeContainer struct {
	cfg     runtime.ContainerConfig
	running bool
	exited  bool
	exit    runtime.Exit
	waiters []func(runtime.Exit) // each watch handed out gets the exit, as containerd's do
}

// noPID is a process ID no process has: the worker's start time then falls back to now.
const noPID = 1 << 30

// watchLocked hands out a new watch of c's task's exit.
func (c *fakeContainer) watchLocked() runtime.ExitWatch {
	w, deliver := runtime.NewExitWatch()
	c.waiters = append(c.waiters, deliver)
	return w
}

func newFakeRuntime() *fakeRuntime {
	f := &fakeRuntime{images: map[string]runtime.Image{}, containers: map[string]*fakeContainer{},
		gates: map[string]chan struct{}{}, pulling: map[string]int{}, cancelled: map[string]int{}, leases: map[string]bool{},
		pullErrs: map[string]error{}, imageErrs: map[string]error{}}
	f.images["pause"] = runtime.Image{Ref: "pause", ID: "sha256:pause"}
	f.images["busybox"] = runtime.Image{Ref: "busybox", ID: "sha256:busybox"}
	return f
}

func (f *fakeRuntime) GetImage(ctx context.Context, ref string) (runtime.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img, ok := f.images[ref]; ok {
		return img, nil
	}
	return runtime.Image{}, fmt.Errorf("image %q: %w", ref, runtime.ErrImageNotFound)
}

// hold makes pulls of ref wait until the returned function is called.
func (f *fakeRuntime) hold(ref string) (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.gates[ref] = ch
	f.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (f *fakeRuntime) Pull(ctx context.Context, ref string, _ runtime.Credentials, _ *runtime.PullProgress) (runtime.Image, error) {
	f.mu.Lock()
	gate := f.gates[ref]
	pullErr := f.pullErrs[ref]
	f.pulling[ref]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.pulling[ref]--
		f.mu.Unlock()
	}()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			f.mu.Lock()
			f.cancelled[ref]++
			f.mu.Unlock()
			return runtime.Image{}, ctx.Err()
		}
	}
	if pullErr != nil {
		return runtime.Image{}, pullErr
	}
	img := runtime.Image{Ref: ref, ID: "sha256:" + ref}
	f.mu.Lock()
	f.images[ref] = img
	f.mu.Unlock()
	return img, nil
}

func (f *fakeRuntime) pulls(ref string) (inFlight, cancelled int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pulling[ref], f.cancelled[ref]
}

func (f *fakeRuntime) PrepareRootfs(ctx context.Context, lease, id, ref string) (runtime.Image, error) {
	return f.GetImage(ctx, ref)
}

func (f *fakeRuntime) NewLease(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaseSeq++
	id := fmt.Sprintf("lease-%d", f.leaseSeq)
	f.leases[id] = true
	return id, nil
}

func (f *fakeRuntime) DeleteLease(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases, id)
	return nil
}

func (f *fakeRuntime) DeleteLeases(ctx context.Context) error { return nil }

func (f *fakeRuntime) ProcessUser(_ context.Context, id string) (runtime.ProcessUser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ProcessUser{}, fmt.Errorf("container %s: not found", id)
	}
	u := runtime.ProcessUser{}
	if sec := c.cfg.Security; sec.UID != nil {
		u.UID = *sec.UID
	}
	if sec := c.cfg.Security; sec.GID != nil {
		u.GID = *sec.GID
	}
	u.Groups = append([]int64{u.GID}, c.cfg.Security.SupplementalGroups...)
	return u, nil
}

func (f *fakeRuntime) CreateContainer(ctx context.Context, cfg runtime.ContainerConfig) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.createErr != nil && cfg.Labels[runtime.LabelRole] == runtime.RoleApp {
		f.failedAt = append(f.failedAt, time.Now())
		return f.createErr
	}
	if _, ok := f.containers[cfg.ID]; ok {
		return fmt.Errorf("container %s exists", cfg.ID)
	}
	f.containers[cfg.ID] = &fakeContainer{cfg: cfg}
	return nil
}

func (f *fakeRuntime) Start(ctx context.Context, id string, _ *runtime.Stdio) (uint32, runtime.ExitWatch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	if c == nil {
		return 0, runtime.ExitWatch{}, fmt.Errorf("no container %s", id)
	}
	if f.startErr != nil && c.cfg.Labels[runtime.LabelRole] == runtime.RoleApp {
		return 0, runtime.ExitWatch{}, f.startErr
	}
	if err := f.imageErrs[c.cfg.Image]; err != nil {
		return 0, runtime.ExitWatch{}, err
	}
	c.running, c.exited = true, false
	return noPID, c.watchLocked(), nil
}

func (f *fakeRuntime) Task(ctx context.Context, id string, _ *runtime.Stdio) (runtime.TaskState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.containers[id]
	if c == nil {
		return runtime.TaskState{}, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	st := runtime.TaskState{Exists: c.running || c.exited, Running: c.running, Pid: noPID, Exit: c.exit}
	if c.running {
		st.Wait = c.watchLocked()
	}
	return st, nil
}

// exit ends a container's task with code, as if its process exited.
func (f *fakeRuntime) exit(id string, code uint32) {
	f.mu.Lock()
	c := f.containers[id]
	if c == nil || !c.running {
		f.mu.Unlock()
		return
	}
	c.running, c.exited = false, true
	c.exit = runtime.Exit{Code: code, At: time.Now()}
	waiters, e := c.waiters, c.exit
	c.waiters = nil
	f.mu.Unlock()
	for _, deliver := range waiters {
		deliver(e)
	}
}

// Signal ends the task at once: the fake's processes die on any stop signal.
func (f *fakeRuntime) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	f.exit(id, 128+uint32(sig))
	return nil
}

func (f *fakeRuntime) Remove(ctx context.Context, id string) error {
	f.exit(id, 137)
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
	return nil
}

func (f *fakeRuntime) List(ctx context.Context, labels map[string]string) ([]runtime.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []runtime.Container
	for id, c := range f.containers {
		match := true
		for k, v := range labels {
			if c.cfg.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, runtime.Container{ID: id, Labels: c.cfg.Labels})
		}
	}
	return out, nil
}

func (f *fakeRuntime) SetLabel(ctx context.Context, id, key, value string) error { return nil }
func (f *fakeRuntime) RemoveSnapshots(ctx context.Context, prefix string, earlier bool) error {
	return nil
}
func (f *fakeRuntime) WatchOOM(ctx context.Context, fn func(id string)) { <-ctx.Done() }

func (f *fakeRuntime) Exec(ctx context.Context, id string, cmd []string, tty bool, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	code, _, err := f.ExecOutput(ctx, id, cmd, "", 0)
	return code, err
}

func (f *fakeRuntime) ExecOutput(ctx context.Context, id string, cmd []string, dir string, limit int) (int, []byte, error) {
	f.mu.Lock()
	hook := f.execHook
	f.mu.Unlock()
	if hook != nil {
		return hook(ctx, id, cmd)
	}
	return 0, nil, nil
}

// config returns the configuration a container was created with.
func (f *fakeRuntime) config(id string) (runtime.ContainerConfig, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	if !ok {
		return runtime.ContainerConfig{}, false
	}
	return c.cfg, true
}

// running lists the running containers' IDs that contain sub.
func (f *fakeRuntime) running(sub string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, c := range f.containers {
		if c.running && strings.Contains(id, sub) {
			out = append(out, id)
		}
	}
	return out
}

func (f *fakeRuntime) count() (containers, leases int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.containers), len(f.leases)
}

// fakeNetwork is CNI for host-network pods: nothing to attach.
type fakeNetwork struct{}

func (fakeNetwork) Setup(ctx context.Context, a sandbox.Attachment) ([]string, error) {
	return []string{"10.0.0.2"}, nil
}
func (fakeNetwork) Teardown(ctx context.Context, a sandbox.Attachment) error { return nil }
func (fakeNetwork) CachedIPs(a sandbox.Attachment) []string                  { return nil }

// testManager runs a Manager on the fake runtime until the test ends.
func testManager(t *testing.T, rt *fakeRuntime) *Manager {
	t.Helper()
	return managerOn(t, rt)
}

// managerOn runs a Manager on rt until the test ends.
func managerOn(t *testing.T, rt Runtime) *Manager {
	t.Helper()
	dir := t.TempDir()
	m := NewManager(Config{
		Runtime: rt, Network: fakeNetwork{}, StateDir: dir + "/state", LogDir: dir + "/logs", NetNSDir: dir + "/netns",
		PauseImage: "pause", HostIP: "192.0.2.1", NodeName: "node1", Events: events.NewRecorder(1000),
		Backoff: Backoff{Initial: time.Second, Max: 4 * time.Second},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	})
	return m
}

// hostPod is a host-network pod (no netns to make in a unit test) of the given containers.
func hostPod(name, uid string, ctrs ...corev1.Container) *corev1.Pod {
	grace := int64(1)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid)}}
	p.Spec.HostNetwork = true
	p.Spec.RestartPolicy = corev1.RestartPolicyAlways
	p.Spec.TerminationGracePeriodSeconds = &grace
	p.Spec.Containers = ctrs
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		if c.ImagePullPolicy == "" {
			c.ImagePullPolicy = corev1.PullIfNotPresent
		}
		if len(c.Command) == 0 {
			c.Command = []string{"sleep", "1000"}
		}
	}
	return p
}

// waitFor polls the manager's published pods until cond holds, or fails the test.
func waitFor(t *testing.T, m *Manager, what string, cond func(p *corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range m.List() {
			if cond(e.Pod) {
				return e.Pod
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; pods: %s", what, describePods(m))
	return nil
}

func describePods(m *Manager) string {
	var b strings.Builder
	for _, e := range m.List() {
		fmt.Fprintf(&b, "%s %s:", e.Pod.Name, e.Pod.Status.Phase)
		for _, cs := range e.Pod.Status.ContainerStatuses {
			fmt.Fprintf(&b, " %s=%+v", cs.Name, cs.State)
		}
		b.WriteString("; ")
	}
	return b.String()
}

func waitGone(t *testing.T, m *Manager, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m.store.get(Key("default", name)) == nil {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pod %s not gone: %s", name, describePods(m))
}

func running(p *corev1.Pod, name string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name {
			return cs.State.Running != nil
		}
	}
	return false
}

func waitingMessage(p *corev1.Pod, name string) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == name && cs.State.Waiting != nil {
			return cs.State.Waiting.Reason + ": " + cs.State.Waiting.Message
		}
	}
	return ""
}
