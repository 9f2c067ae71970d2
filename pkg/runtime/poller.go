package runtime

import (
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Containers' output FIFOs are watched by one poller for the whole process rather than by a
// goroutine per stream: a goroutine parked on a quiet stream still holds its stack, and a node
// of mostly quiet containers has two such streams per container. The poller is an epoll
// instance of our own holding every output FIFO. It is waited on by a single goroutine
// without an OS thread of its own: an epoll fd is itself pollable, so Go's netpoller wakes the
// goroutine when any FIFO in the set becomes readable, and the goroutine then asks the set
// which, without blocking.
//
// The FIFOs are registered level-triggered and the poller reads one buffer per ready stream
// per round, so a loud container cannot starve the others: a stream with more to read is
// simply reported again in the next round. Writes to a stream's destination happen on the
// poller's goroutine, one at a time, so one stream's output stays in order. They are writes
// to log files, which wait for nothing but the disk; a destination that could block for long
// would hold up every stream.
//
// Closing a stream races with the poller, and an fd number is reused by the next open as soon
// as it is closed: an event or a read meant for a closed stream would then hit some other
// file. So events carry a stream id, never the fd, and ids of ended streams are forgotten; an
// fd leaves the epoll set before it is closed; and a stream the poller is reading (busy) is
// not closed under it but left for the poller to end when its read and write are done.

// probeReads bounds the reads a stream gets before it is registered. A FIFO that had no
// writer when we opened it reports no hang-up until a writer has come and gone, so a stream
// whose writer is already gone must be drained to its end-of-file here; what it can hold is
// bounded by the pipe size (at most 1 MiB by default), 32 reads. With a writer there,
// hang-ups are reported and stopping early is harmless.
const probeReads = 64

// outPoller copies the output streams registered with it to their destinations.
type outPoller struct {
	ep *os.File // the epoll instance, waited on through the netpoller
	rc syscall.RawConn

	afterWait func() // a test's hook between a wait and the handling of its events

	mu      sync.Mutex
	streams map[uint64]*outStream // registered streams, by the id their events carry
	lastID  uint64
	failed  bool // the poller stopped; its streams were handed to pumps
}

// outStream is one output FIFO being copied, by a poller or by a pump of its own.
type outStream struct {
	p    *outPoller // nil: a pump copies it
	id   uint64
	name string
	dst  io.Writer
	done func() // called once, after the last write to dst

	// The rest is guarded by p.mu (when p is nil only file is set, before the pump starts).
	fd    int      // ours to read while registered; -1 once closed
	busy  bool     // the poller is reading or writing it outside the lock: fd must stay open
	stop  bool     // closed while busy: the poller ends it when done
	ended bool     // out of the set, fd closed, done called or about to be
	file  *os.File // a pump copies it now; closing file ends the pump
}

var shared struct {
	sync.Mutex
	p *outPoller
}

// sharedPoller returns the process's poller, making it on first use, or nil when it cannot be
// made; a poller that failed is replaced.
func sharedPoller() *outPoller {
	shared.Lock()
	defer shared.Unlock()
	if shared.p != nil && !shared.p.isFailed() {
		return shared.p
	}
	p, err := newOutPoller(nil)
	if err != nil {
		return nil
	}
	shared.p = p
	return p
}

// newOutPoller makes a poller and starts its goroutine; afterWait is nil but in tests.
func newOutPoller(afterWait func()) (*outPoller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that os.NewFile hands the fd to the netpoller.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "output-epoll")
	// A file the netpoller did not take has no deadlines, and waiting on it would fail.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	p := &outPoller{ep: f, rc: rc, afterWait: afterWait, streams: make(map[uint64]*outStream)}
	go p.run()
	return p, nil
}

func (p *outPoller) isFailed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.failed
}

// startOutput copies the FIFO open for reading at fd to dst and calls done after its end. It
// uses p (nil: none could be made), or a pump of its own when p cannot take the stream, so that
// output is never lost. The stream owns fd from here on.
func startOutput(p *outPoller, fd int, name string, dst io.Writer, done func()) *outStream {
	if p != nil {
		if s, ok := p.add(fd, name, dst, done); ok {
			return s
		}
	}
	return startPump(fd, name, dst, done)
}

func startPump(fd int, name string, dst io.Writer, done func()) *outStream {
	f := os.NewFile(uintptr(fd), name)
	s := &outStream{name: name, dst: dst, done: done, fd: -1, file: f}
	go func() {
		pump(dst, f)
		done()
	}()
	return s
}

// add registers a stream; false when the poller cannot take it (fd is then still open).
func (p *outPoller) add(fd int, name string, dst io.Writer, done func()) (*outStream, bool) {
	s := &outStream{p: p, name: name, dst: dst, done: done, fd: fd}
probe:
	for range probeReads {
		switch readOnce(fd, dst) {
		case readIdle:
			break probe
		case readEnd:
			unix.Close(fd)
			s.fd, s.ended = -1, true
			done()
			return s, true
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failed {
		return nil, false
	}
	p.lastID++
	s.id = p.lastID
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLHUP | unix.EPOLLERR}
	ev.Fd, ev.Pad = int32(uint32(s.id)), int32(uint32(s.id>>32))
	if err := p.ctl(unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return nil, false
	}
	p.streams[s.id] = s
	return s, true
}

// ctl changes the epoll set. Going through the file's RawConn keeps the epoll fd from being
// closed (and its number reused) during the call.
func (p *outPoller) ctl(op, fd int, ev *unix.EpollEvent) error {
	var err error
	if cerr := p.rc.Control(func(epfd uintptr) { err = unix.EpollCtl(int(epfd), op, fd, ev) }); cerr != nil {
		return cerr
	}
	return err
}

func (p *outPoller) run() {
	events := make([]unix.EpollEvent, 128)
	var (
		ready []*outStream
		over  []bool // over[i]: ready[i] reached its end
		ends  []func()
	)
	for {
		var (
			n    int
			werr error
		)
		// The wait itself never blocks: with nothing ready, the callback returns false and the
		// goroutine parks in the netpoller until the set becomes readable.
		err := p.rc.Read(func(epfd uintptr) bool {
			for {
				n, werr = unix.EpollWait(int(epfd), events, 0)
				if werr != unix.EINTR {
					break
				}
			}
			return werr != nil || n > 0
		})
		if err == nil {
			err = werr
		}
		if err != nil {
			p.fail()
			return
		}
		if p.afterWait != nil {
			p.afterWait()
		}

		p.mu.Lock()
		ready = ready[:0]
		for _, ev := range events[:n] {
			// An id not in the map is a stream that ended since the wait: its fd may already
			// be another file's.
			s := p.streams[uint64(uint32(ev.Fd))|uint64(uint32(ev.Pad))<<32]
			if s == nil || s.busy {
				continue
			}
			s.busy = true
			ready = append(ready, s)
		}
		p.mu.Unlock()

		// One buffer per stream per round: a stream with more is reported again.
		over = over[:0]
		for _, s := range ready {
			over = append(over, readOnce(s.fd, s.dst) == readEnd)
		}

		p.mu.Lock()
		ends = ends[:0]
		for i, s := range ready {
			s.busy = false
			if over[i] || s.stop {
				p.endLocked(s)
				ends = append(ends, s.done)
			}
		}
		p.mu.Unlock()
		for _, done := range ends {
			done()
		}
		// Not kept alive by the slices' backing arrays.
		clear(ready)
		clear(ends)
	}
}

// endLocked takes s out of the set and closes its fd; the caller calls s.done after unlocking.
func (p *outPoller) endLocked(s *outStream) {
	delete(p.streams, s.id)
	// Out of the set before the close: once closed, the fd number can name another file.
	_ = p.ctl(unix.EPOLL_CTL_DEL, s.fd, nil)
	unix.Close(s.fd)
	s.fd, s.ended = -1, true
}

// fail hands every stream to a pump of its own when the poller cannot wait any more, which
// only a broken epoll fd would cause: its output must still be copied.
func (p *outPoller) fail() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = true
	for id, s := range p.streams {
		delete(p.streams, id)
		// No stream is busy between rounds. Closing the epoll fd below drops the fds from
		// the set, so they need no EPOLL_CTL_DEL.
		f := os.NewFile(uintptr(s.fd), s.name)
		s.file, s.fd = f, -1
		go func() {
			pump(s.dst, f)
			s.done()
		}()
	}
	p.ep.Close()
}

// close ends the stream; a poller busy with it ends it after its current write, a pump after
// its current read fails.
func (s *outStream) close() {
	if s.p == nil {
		s.file.Close()
		return
	}
	p := s.p
	p.mu.Lock()
	switch {
	case s.file != nil:
		f := s.file
		p.mu.Unlock()
		f.Close()
		return
	case s.ended:
	case s.busy:
		s.stop = true
	default:
		p.endLocked(s)
		p.mu.Unlock()
		s.done()
		return
	}
	p.mu.Unlock()
}

type readResult int

const (
	readIdle readResult = iota // nothing to read now
	readData                   // read something and wrote it to dst
	readEnd                    // end-of-file or an error: the stream is over
)

// readOnce reads what fd has, up to one buffer, and writes it to dst. The buffer is borrowed
// for the read only, so that an idle stream holds none.
func readOnce(fd int, dst io.Writer) readResult {
	buf := readBufs.Get().(*[]byte)
	defer readBufs.Put(buf)
	var (
		n   int
		err error
	)
	for {
		n, err = unix.Read(fd, *buf)
		if err != unix.EINTR {
			break
		}
	}
	switch {
	case err == unix.EAGAIN:
		return readIdle
	case err != nil || n <= 0:
		return readEnd
	}
	_, _ = dst.Write((*buf)[:n])
	return readData
}
