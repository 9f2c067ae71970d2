package runtime

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execSeq makes exec IDs unique within this process; the time part keeps them unique across
// daemon restarts.
var execSeq atomic.Uint64

func newExecID() string {
	return "exec-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "-" + strconv.FormatUint(execSeq.Add(1), 36)
}

// ExecOutput runs cmd in a running container, with the container's environment, user and
// working directory, and returns its exit code and the first limit bytes of its combined
// output. When ctx ends first, the process is killed and ctx's error returned.
//
// It is the lean path for probes and hooks, which run every few seconds for every container:
// the shim writes the output straight into a file in dir (the "file" I/O scheme of the runc
// shim), so the daemon creates no FIFOs and runs no copy goroutines, and the process spec
// comes from a cache instead of two more round trips. Four calls to containerd remain: exec,
// start, wait, delete.
func (r *Runtime) ExecOutput(ctx context.Context, id string, cmd []string, dir string, limit int) (int, []byte, error) {
	ctx = r.ns(ctx)
	proc, err := r.processSpec(ctx, id)
	if err != nil {
		return -1, nil, err
	}
	p := *proc
	p.Args = cmd
	p.Terminal = false
	spec, err := typeurl.MarshalAnyToProto(&p)
	if err != nil {
		return -1, nil, err
	}
	execID := newExecID()
	out := filepath.Join(dir, execID+".out")
	defer os.Remove(out)
	uri := (&url.URL{Scheme: "file", Path: out}).String()
	ts := r.client.TaskService()
	if _, err := ts.Exec(ctx, &tasks.ExecProcessRequest{
		ContainerID: id, ExecID: execID, Stdout: uri, Stderr: uri, Spec: spec,
	}); err != nil {
		if errdefs.IsNotFound(errgrpc.ToNative(err)) {
			r.forgetSpec(id)
		}
		return -1, nil, fmt.Errorf("exec in %s: %w", id, errgrpc.ToNative(err))
	}
	// The exec process stays in containerd until deleted, so a wait that comes after its exit
	// still gets the status: no need to set the wait up before the start.
	deleted := false
	del := func() {
		deleted = true
		_, _ = ts.DeleteProcess(context.WithoutCancel(ctx), &tasks.DeleteProcessRequest{ContainerID: id, ExecID: execID})
	}
	defer func() {
		if !deleted {
			del()
		}
	}()
	// The exit comes from the event stream when it is live (one call fewer per probe), else
	// from a Wait call.
	exited, unregister := r.exits.waitExec(id, execID)
	defer unregister()
	if _, err := ts.Start(ctx, &tasks.StartRequest{ContainerID: id, ExecID: execID}); err != nil {
		return -1, nil, fmt.Errorf("start exec in %s: %w", id, errgrpc.ToNative(err))
	}
	var code uint32
	// A command that writes without end (a probe running `yes` until its timeout) would fill
	// the state dir's disk: past the head the caller reads, the file's blocks are freed as it
	// grows.
	trim := time.NewTicker(execTrimEvery)
	defer trim.Stop()
wait:
	for {
		select {
		case c, ok := <-exited:
			if ok {
				code = c
				break wait
			}
			resp, err := ts.Wait(ctx, &tasks.WaitRequest{ContainerID: id, ExecID: execID})
			if err != nil {
				if ctx.Err() != nil {
					return -1, nil, r.killExec(ctx, id, execID)
				}
				return -1, nil, fmt.Errorf("wait exec in %s: %w", id, errgrpc.ToNative(err))
			}
			code = resp.ExitStatus
			break wait
		case <-trim.C:
			trimTail(out, int64(limit), execSpill)
		case <-ctx.Done():
			return -1, nil, r.killExec(ctx, id, execID)
		}
	}
	// The shim finishes copying the output into the file before a delete returns (not
	// before the exit is reported): read it after.
	del()
	return int(code), readHead(out, limit), nil
}

// How often a running exec's output file is looked at, and how much it may hold past the head
// its caller reads before the rest is freed.
const (
	execTrimEvery = 250 * time.Millisecond
	execSpill     = 1 << 20
)

// trimTail frees the blocks of the file at path past its first keep bytes (rounded up to a
// block) once it holds more than spill bytes beyond them. The file keeps its size, as a sparse
// file, so that a writer appending to it carries on; what it reads back past keep is zeros.
func trimTail(path string, keep, spill int64) {
	f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return
	}
	from := (keep + 4095) &^ 4095
	if st.Blocks*512 <= from+spill {
		return
	}
	_ = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, from, st.Size-from)
}

// readHead returns up to limit bytes from the start of the file (nil if it cannot be read).
func readHead(path string, limit int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, int64(limit)))
	return b
}

// processSpec returns the container's process spec from the cache, loading it once. A
// container's spec never changes after creation; CreateContainer and Remove drop the entry.
func (r *Runtime) processSpec(ctx context.Context, id string) (*specs.Process, error) {
	if v, ok := r.procs.Load(id); ok {
		return v.(*specs.Process), nil
	}
	c, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load container %s: %w", id, err)
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("read spec of %s: %w", id, err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("container %s has no process spec", id)
	}
	r.procs.Store(id, spec.Process)
	return spec.Process, nil
}

func (r *Runtime) forgetSpec(id string) { r.procs.Delete(id) }

// killExec ends an exec'd process whose caller gave up, and returns why it gave up.
func (r *Runtime) killExec(ctx context.Context, id, execID string) error {
	_, _ = r.client.TaskService().Kill(context.WithoutCancel(ctx), &tasks.KillRequest{ContainerID: id, ExecID: execID, Signal: uint32(syscall.SIGKILL)})
	return ctx.Err()
}
