package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"syscall"

	"github.com/containerd/containerd/v2/pkg/cio"
)

// Containers' output is copied from their FIFOs by our own pumps rather than by cio's copier:
// cio takes a 32 KiB buffer per stream when the copy starts and holds it while the stream
// is idle, which for a node of mostly quiet containers is 64 KiB of heap per container for
// nothing. A pump waits for the FIFO to become readable without a buffer and borrows one
// from a pool only for the read itself.

// readBufs are the buffers pumps read into; 32 KiB keeps a busy stream's syscalls few.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (s *Stdio) creator() cio.Creator {
	return func(id string) (cio.IO, error) {
		fifos, err := cio.NewFIFOSetInDir(s.FIFODir, id, false)
		if err != nil {
			return nil, err
		}
		return s.open(fifos)
	}
}

func (s *Stdio) attach() cio.Attach {
	return func(fifos *cio.FIFOSet) (cio.IO, error) {
		if fifos == nil {
			return nil, errors.New("cannot attach: the task has no FIFOs")
		}
		return s.open(fifos)
	}
}

// open opens the FIFOs for the streams that have a reader or writer and starts their pumps.
func (s *Stdio) open(fifos *cio.FIFOSet) (cio.IO, error) {
	if s.Stdin == nil {
		fifos.Stdin = ""
	}
	if s.Stdout == nil {
		fifos.Stdout = ""
	}
	if s.Stderr == nil {
		fifos.Stderr = ""
	}
	dio, err := cio.NewDirectIO(context.Background(), fifos)
	if err != nil {
		return nil, fmt.Errorf("open fifos: %w", err)
	}
	p := &pumpedIO{DirectIO: dio}
	if dio.Stdin != nil {
		go func() {
			_, _ = io.Copy(dio.Stdin, s.Stdin)
			dio.Stdin.Close()
		}()
	}
	if dio.Stdout != nil {
		p.wg.Go(func() { pump(s.Stdout, dio.Stdout) })
	}
	if dio.Stderr != nil {
		p.wg.Go(func() { pump(s.Stderr, dio.Stderr) })
	}
	return p, nil
}

// pumpedIO is a DirectIO whose Wait waits for the pumps, like cio's own copier.
type pumpedIO struct {
	*cio.DirectIO
	wg sync.WaitGroup
}

func (p *pumpedIO) Wait() { p.wg.Wait() }

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
