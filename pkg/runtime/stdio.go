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
)

// Containers' output is copied from their FIFOs by our own pumps rather than by cio's copier:
// cio takes a 32 KiB buffer per stream when the copy starts and holds it while the stream
// is idle, which for a node of mostly quiet containers is 64 KiB of heap per container for
// nothing. A pump waits for the FIFO to become readable without a buffer and borrows one
// from a pool only for the read itself.
//
// The output FIFOs are opened here too, not by containerd's fifo package: that package opens
// a FIFO for reading with a blocking open(2) on a goroutine of its own, which holds an OS
// thread until the shim opens the other end. When many pods start at once that is one thread
// per stream, and the Go runtime keeps every thread it ever made. A non-blocking open needs no
// writer and returns at once, but then a read before the shim's open would see end-of-file;
// so until the shim holds its write end (NewTask has returned), we hold one ourselves.

// readBufs are the buffers pumps read into; 32 KiB keeps a busy stream's syscalls few.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (s *Stdio) creator() cio.Creator {
	return func(id string) (cio.IO, error) {
		fifos, err := cio.NewFIFOSetInDir(s.FIFODir, id, false)
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

// open opens the FIFOs for the streams that have a reader or writer and starts their pumps.
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
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	var dsts []io.Writer // dsts[i] gets what p.readers[i] reads
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
		p.readers = append(p.readers, r)
		dsts = append(dsts, o.dst)
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
	for i, r := range p.readers {
		p.wg.Go(func() { pump(dsts[i], r) })
	}
	return p, nil
}

// openOutput makes the FIFO if it is missing and opens it for reading without waiting for a
// writer; with hold it also opens a write end, so that reads wait for data instead of ending.
func openOutput(path string, hold bool) (r, keeper *os.File, err error) {
	if err := syscall.Mkfifo(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, nil, fmt.Errorf("create fifo %s: %w", path, err)
	}
	if r, err = os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err != nil {
		return nil, nil, fmt.Errorf("open fifo: %w", err)
	}
	if hold {
		// There is a reader (r), so a non-blocking open for writing succeeds.
		if keeper, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("open fifo: %w", err)
		}
	}
	return r, keeper, nil
}

// pumpedIO is a cio.IO over FIFOs that minipod pumps itself. Wait waits for the pumps, like
// cio's own copier.
type pumpedIO struct {
	fifos   *cio.FIFOSet // Close removes their directory
	cancel  context.CancelFunc
	stdin   io.Closer
	readers []*os.File
	wg      sync.WaitGroup

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
	for _, r := range p.readers {
		r.Close() // ends a pump still reading
	}
	return p.fifos.Close()
}

// release closes our write ends: once the shim holds its own, the pumps see end-of-file when
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

// pump copies src to dst until src ends or is closed.
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
