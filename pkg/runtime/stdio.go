package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/fifo"
	"golang.org/x/sys/unix"
)

// Containers' output is copied from their FIFOs by our own poller (poller.go) rather than by
// cio's copier: cio takes a 32 KiB buffer per stream when the copy starts and holds it while
// the stream is idle, which for a node of mostly quiet containers is 64 KiB of heap per
// container for nothing, and a goroutine per stream besides. The poller waits for the FIFOs to
// become readable without a buffer and borrows one from a pool only for the read itself.
//
// The output FIFOs are opened here too, not by containerd's fifo package: that package opens
// a FIFO for reading with a blocking open(2) on a goroutine of its own, which holds an OS
// thread until the shim opens the other end. When many pods start at once that is one thread
// per stream, and the Go runtime keeps every thread it ever made. A non-blocking open needs no
// writer and returns at once, but then a read before the shim's open would see end-of-file;
// so until the shim holds its write end (NewTask has returned), we hold one ourselves.

// readBufs are the buffers the poller and pumps read into; 32 KiB keeps a busy stream's syscalls few.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (s *Stdio) creator() cio.Creator {
	return func(id string) (cio.IO, error) {
		fifos, err := cio.NewFIFOSetInDir(s.FIFODir, id, s.Terminal)
		if err != nil {
			return nil, err
		}
		return s.open(fifos, true)
	}
}

func (s *Stdio) attach() cio.Attach {
	return func(fifos *cio.FIFOSet) (cio.IO, error) {
		if fifos == nil {
			return nil, errors.New("cannot attach: the task has no FIFOs")
		}
		// The shim of a task that exists already holds its write ends while there is output
		// to copy; when it does not, there is none, and end-of-file at once is right.
		return s.open(fifos, false)
	}
}

// open opens the FIFOs for the streams that have a reader or writer and starts their copies.
// With hold, it keeps a write end of each output FIFO open until release.
func (s *Stdio) open(fifos *cio.FIFOSet, hold bool) (_ cio.IO, err error) {
	if s.Stdin == nil {
		fifos.Stdin = ""
	}
	if s.Stdout == nil {
		fifos.Stdout = ""
	}
	if s.Stderr == nil {
		fifos.Stderr = ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pumpedIO{fifos: fifos, cancel: cancel}
	type output struct {
		fd   int
		path string
		dst  io.Writer
	}
	var outs []output // opened; copied only once everything is set up
	defer func() {
		if err != nil {
			for _, o := range outs {
				unix.Close(o.fd)
			}
			p.Close()
		}
	}()
	for _, o := range []struct {
		path string
		dst  io.Writer
	}{{fifos.Stdout, s.Stdout}, {fifos.Stderr, s.Stderr}} {
		if o.path == "" {
			continue
		}
		r, keeper, err := openOutput(o.path, hold)
		if err != nil {
			return nil, err
		}
		outs = append(outs, output{r, o.path, o.dst})
		if keeper != nil {
			p.keepers = append(p.keepers, keeper)
		}
	}
	if fifos.Stdin != "" {
		// Stdin (rare: `stdin: true`) keeps the fifo package, which waits for the shim's
		// reader in the background.
		w, err := fifo.OpenFifo(ctx, fifos.Stdin, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_NONBLOCK, 0o700)
		if err != nil {
			return nil, fmt.Errorf("open stdin fifo: %w", err)
		}
		p.stdin = w
		go func() {
			_, _ = io.Copy(w, s.Stdin)
			w.Close()
		}()
	}
	if len(outs) > 0 {
		poller := sharedPoller()
		for _, o := range outs {
			p.wg.Add(1)
			p.outs = append(p.outs, startOutput(poller, o.fd, o.path, o.dst, p.wg.Done))
		}
	}
	return p, nil
}

// openOutput makes the FIFO if it is missing and opens it for reading without waiting for a
// writer; with hold it also opens a write end, so that reads wait for data instead of ending.
// The read end is a bare fd, not an *os.File: the poller watches it, not the netpoller.
func openOutput(path string, hold bool) (r int, keeper *os.File, err error) {
	if err := syscall.Mkfifo(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return -1, nil, fmt.Errorf("create fifo %s: %w", path, err)
	}
	if r, err = unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
		return -1, nil, fmt.Errorf("open fifo: %w", &os.PathError{Op: "open", Path: path, Err: err})
	}
	if hold {
		// There is a reader (r), so a non-blocking open for writing succeeds.
		if keeper, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err != nil {
			unix.Close(r)
			return -1, nil, fmt.Errorf("open fifo: %w", err)
		}
	}
	return r, keeper, nil
}

// pumpedIO is a cio.IO over FIFOs that minipod copies itself. Wait waits for the output
// streams to end, like cio's own copier.
type pumpedIO struct {
	fifos  *cio.FIFOSet // Close removes their directory
	cancel context.CancelFunc
	stdin  io.Closer
	outs   []*outStream
	wg     sync.WaitGroup // one per output stream, done after its last write

	mu      sync.Mutex
	keepers []*os.File
	closed  bool
}

func (p *pumpedIO) Config() cio.Config { return p.fifos.Config }

// Cancel gives up what is still being set up: the stdin open and our write ends.
func (p *pumpedIO) Cancel() {
	p.cancel()
	p.release()
}

func (p *pumpedIO) Wait() { p.wg.Wait() }

func (p *pumpedIO) Close() error {
	p.cancel()
	p.release()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.stdin != nil {
		p.stdin.Close()
	}
	for _, o := range p.outs {
		o.close() // ends a stream still open
	}
	return p.fifos.Close()
}

// release closes our write ends: once the shim holds its own, the streams end when
// the shim's copy ends, as they would with cio.
func (p *pumpedIO) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range p.keepers {
		k.Close()
	}
	p.keepers = nil
}

// releaseIO is called once the task exists: its shim has opened the FIFOs' write ends.
func releaseIO(tio cio.IO) {
	if p, ok := tio.(*pumpedIO); ok {
		p.release()
	}
}

// pump copies src to dst until src ends or is closed, on a goroutine of its own: the fallback
// for a stream the poller cannot take.
func pump(dst io.Writer, src io.ReadCloser) {
	defer src.Close()
	sc, ok := src.(syscall.Conn)
	if !ok {
		_, _ = io.Copy(dst, src)
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for {
		var (
			buf  *[]byte
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			buf = readBufs.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *buf)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				// Not readable after all: give the buffer back while waiting.
				readBufs.Put(buf)
				buf = nil
				return false
			}
			return true
		})
		if n > 0 {
			_, _ = dst.Write((*buf)[:n])
		}
		if buf != nil {
			readBufs.Put(buf)
		}
		if err != nil || rerr != nil || n <= 0 {
			return // closed, failed, or every writer is gone (EOF)
		}
	}
}
