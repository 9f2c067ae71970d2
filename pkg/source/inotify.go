package source

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// The inotify events Source asks for on the manifest directory. IN_CLOSE_WRITE and IN_MOVED_TO
// say that a file is complete, which fsnotify cannot tell apart from a fresh create.
// IN_EXCL_UNLINK: a writer still holding a removed file open must not make events under the
// name that a new file may already have.
const watchMask = unix.IN_CREATE | unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CLOSE_WRITE |
	unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF |
	unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK

// event is one inotify record.
type event struct {
	wd   int32
	mask uint32
	name string // "" for events of the watched directory itself, and for IN_Q_OVERFLOW
}

// inotify reads one inotify instance. A goroutine waits in the Go poller for events (no thread
// blocks) and reads what is there, so the owner can wait on ready; take, called by the owner,
// also reads whatever the kernel holds at that moment. Both read under mu and append to one
// queue, so take returns, in the kernel's order, every event queued before it was called. That
// lets a directory listing be checked against the events queued while it was made.
type inotify struct {
	fd   int
	file *os.File

	mu    sync.Mutex
	buf   []byte
	queue []event

	ready  chan struct{} // the queue may hold events
	failed chan error    // the reader stopped on an error
	done   chan struct{} // closed by close
	exited chan struct{} // closed when the reader returns
}

func newInotify() (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	in := &inotify{
		fd: fd,
		// A non-blocking descriptor is registered with the Go poller.
		file: os.NewFile(uintptr(fd), "inotify"),
		// Room for at least a few hundred events with the longest names; a read returns only
		// whole events.
		buf:    make([]byte, 64<<10),
		ready:  make(chan struct{}),
		failed: make(chan error, 1),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	go in.readLoop()
	return in, nil
}

// readLoop waits for events and reads one buffer of them at a time. It then waits until the
// owner has been told (ready) before reading again, so that while the owner is busy the events
// stay in the kernel's bounded queue, which overflows (IN_Q_OVERFLOW) instead of growing ours.
func (in *inotify) readLoop() {
	defer close(in.exited)
	rc, err := in.file.SyscallConn()
	if err != nil {
		in.failed <- err
		return
	}
	for {
		var readErr error
		err := rc.Read(func(uintptr) bool {
			in.mu.Lock()
			defer in.mu.Unlock()
			readErr = in.readLocked()
			// EAGAIN: nothing (take got it first); wait in the poller for more.
			return readErr != unix.EAGAIN
		})
		if err == nil {
			err = readErr
		}
		if err != nil {
			select {
			case <-in.done: // closed by close: not a failure
			default:
				in.failed <- err
			}
			return
		}
		select {
		case in.ready <- struct{}{}:
		case <-in.done:
			return
		}
	}
}

// readLocked does one read into the queue. in.mu must be held.
func (in *inotify) readLocked() error {
	for {
		n, err := unix.Read(in.fd, in.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New("inotify: empty read")
		}
		in.queue = append(in.queue, parseEvents(in.buf[:n])...)
		return nil
	}
}

// take returns every event queued up to now, oldest first.
func (in *inotify) take() []event {
	in.mu.Lock()
	defer in.mu.Unlock()
	// Until EAGAIN; another error stops the reader too, which reports it.
	for in.readLocked() == nil {
	}
	q := in.queue
	in.queue = nil
	return q
}

// close stops the reader and closes the instance, which drops its watches.
func (in *inotify) close() {
	close(in.done)
	in.file.Close() // wakes the reader in the poller
	<-in.exited
}

// parseEvents decodes the records of one read (struct inotify_event, each followed by its
// NUL-padded name), in the machine's byte order.
func parseEvents(b []byte) []event {
	var evs []event
	for len(b) >= unix.SizeofInotifyEvent {
		raw := unix.InotifyEvent{
			Wd:     int32(binary.NativeEndian.Uint32(b[0:4])),
			Mask:   binary.NativeEndian.Uint32(b[4:8]),
			Cookie: binary.NativeEndian.Uint32(b[8:12]),
			Len:    binary.NativeEndian.Uint32(b[12:16]),
		}
		end := unix.SizeofInotifyEvent + int(raw.Len)
		if end > len(b) {
			break // cannot happen: the kernel returns whole records
		}
		name := b[unix.SizeofInotifyEvent:end]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		evs = append(evs, event{wd: raw.Wd, mask: raw.Mask, name: string(name)})
		b = b[end:]
	}
	return evs
}
