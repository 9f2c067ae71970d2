package runtime

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// recorder is a destination safe to read while the poller writes to it.
type recorder struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

func (r *recorder) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.b.Bytes())
}

func (r *recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Len()
}

func testPoller(t *testing.T, afterWait func()) *outPoller {
	t.Helper()
	p, err := newOutPoller(afterWait)
	if err != nil {
		t.Fatal(err)
	}
	// Closing the epoll fd ends the poller's goroutine (its streams go to pumps).
	t.Cleanup(func() { p.ep.Close() })
	return p
}

// testFIFO makes a FIFO and opens its read end as the poller gets it, and a write end.
func testFIFO(t *testing.T, name string) (path string, rfd int, w *os.File) {
	t.Helper()
	path = filepath.Join(t.TempDir(), name)
	rfd, _, err := openOutput(path, false)
	if err != nil {
		t.Fatal(err)
	}
	if w, err = os.OpenFile(path, os.O_WRONLY, 0); err != nil {
		unix.Close(rfd)
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return path, rfd, w
}

// doneChan returns a done func for a stream and a channel closed by it; a second call fails t.
func doneChan(t *testing.T) (func(), chan struct{}) {
	ch := make(chan struct{})
	var once atomic.Bool
	return func() {
		if !once.CompareAndSwap(false, true) {
			t.Error("done called twice")
			return
		}
		close(ch)
	}, ch
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// waitUntil polls cond every millisecond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func notYet(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s too early", what)
	case <-time.After(50 * time.Millisecond):
	}
}

func waitIO(p interface{ Wait() }) <-chan struct{} {
	ch := make(chan struct{})
	go func() { p.Wait(); close(ch) }()
	return ch
}

// pattern is size bytes that show a reordering or a loss: numbered lines.
func pattern(stream, size int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "stream %d line %d\n", stream, i)
	}
	return b.Bytes()[:size]
}

// writeChunks writes data in chunks of random sizes, then closes w.
func writeChunks(w *os.File, data []byte) error {
	defer w.Close()
	for len(data) > 0 {
		n := min(len(data), 1+rand.IntN(20000))
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func TestPollerManyStreamsInOrder(t *testing.T) {
	p := testPoller(t, nil)
	const streams, size = 40, 128 << 10
	recs := make([]*recorder, streams)
	dones := make([]chan struct{}, streams)
	ws := make([]*os.File, streams)
	for i := range streams {
		_, rfd, w := testFIFO(t, fmt.Sprint("s", i))
		recs[i], ws[i] = &recorder{}, w
		var done func()
		done, dones[i] = doneChan(t)
		startOutput(p, rfd, "s", recs[i], done)
	}
	errs := make(chan error, streams)
	for i := range streams {
		go func() { errs <- writeChunks(ws[i], pattern(i, size)) }()
	}
	for range streams {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for i := range streams {
		waitFor(t, dones[i], fmt.Sprint("stream ", i))
		if got := recs[i].Bytes(); !bytes.Equal(got, pattern(i, size)) {
			t.Fatalf("stream %d: got %d bytes, not what was written", i, len(got))
		}
	}
}

// openStdio opens a task's IO as Start does, the shim's write ends played by ws.
func openStdio(t *testing.T, dir, id string, out, errw io.Writer) (tio *pumpedIO, wout, werr *os.File) {
	t.Helper()
	s := &Stdio{FIFODir: dir, Stdout: out, Stderr: errw}
	c, err := s.creator()(id)
	if err != nil {
		t.Fatal(err)
	}
	tio = c.(*pumpedIO)
	t.Cleanup(func() { tio.Close() })
	if wout, err = os.OpenFile(tio.Config().Stdout, os.O_WRONLY, 0); err != nil {
		t.Fatal(err)
	}
	if werr, err = os.OpenFile(tio.Config().Stderr, os.O_WRONLY, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wout.Close(); werr.Close() })
	return tio, wout, werr
}

func TestStdioWaitAfterWritersClose(t *testing.T) {
	var out, errw recorder
	tio, wout, werr := openStdio(t, t.TempDir(), "c", &out, &errw)
	wout.Close()
	werr.Close()
	waited := waitIO(tio)
	// Until release, our own write ends keep the streams open.
	notYet(t, waited, "Wait before release")

	tio, wout, werr = openStdio(t, t.TempDir(), "c", &out, &errw)
	releaseIO(tio)
	waited = waitIO(tio)
	wout.WriteString("to stdout\n")
	werr.WriteString("to stderr\n")
	notYet(t, waited, "Wait with both writers open")
	wout.Close()
	notYet(t, waited, "Wait with the stderr writer open")
	werr.Close()
	waitFor(t, waited, "Wait")
	if got := string(out.Bytes()); got != "to stdout\n" {
		t.Errorf("stdout: %q", got)
	}
	if got := string(errw.Bytes()); got != "to stderr\n" {
		t.Errorf("stderr: %q", got)
	}
}

func TestStdioCloseEndsOpenStreams(t *testing.T) {
	for _, release := range []bool{true, false} {
		t.Run(fmt.Sprint("release=", release), func(t *testing.T) {
			var out recorder
			tio, wout, _ := openStdio(t, t.TempDir(), "c", &out, io.Discard)
			if release {
				releaseIO(tio)
			}
			wout.WriteString("before close\n")
			waited := waitIO(tio)
			notYet(t, waited, "Wait with the writers open")
			tio.Close()
			waitFor(t, waited, "Wait after Close")
			// The writers are still open; what they write now goes nowhere.
			if _, err := wout.WriteString("after close\n"); err == nil {
				t.Error("write after Close: the read end is still open")
			}
		})
	}
}

func TestStdioMiB(t *testing.T) {
	var out recorder
	tio, wout, werr := openStdio(t, t.TempDir(), "c", &out, io.Discard)
	releaseIO(tio)
	werr.Close()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	go writeChunks(wout, data)
	waitFor(t, waitIO(tio), "Wait")
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("got %d bytes, not the MiB written", out.Len())
	}
}

func TestPollerCloseWhileOtherBusy(t *testing.T) {
	p := testPoller(t, nil)
	const size = 4 << 20
	var busy, quiet recorder
	_, rfdBusy, wBusy := testFIFO(t, "busy")
	_, rfdQuiet, wQuiet := testFIFO(t, "quiet")
	doneBusy, busyEnded := doneChan(t)
	doneQuiet, quietEnded := doneChan(t)
	startOutput(p, rfdBusy, "busy", &busy, doneBusy)
	q := startOutput(p, rfdQuiet, "quiet", &quiet, doneQuiet)
	wQuiet.WriteString("quiet\n")
	errs := make(chan error, 1)
	go func() { errs <- writeChunks(wBusy, pattern(0, size)) }()
	waitUntil(t, func() bool { return busy.Len() >= size/4 }, "a quarter of the busy stream")
	q.close() // its writer still open
	waitFor(t, quietEnded, "the closed stream's end")
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	waitFor(t, busyEnded, "the busy stream's end")
	if !bytes.Equal(busy.Bytes(), pattern(0, size)) {
		t.Fatalf("busy stream: got %d bytes, not what was written", busy.Len())
	}
	if got := string(quiet.Bytes()); got != "quiet\n" {
		t.Fatalf("quiet stream: %q", got)
	}
}

// gate is a destination whose Write waits until released.
type gate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gate) Write(p []byte) (int, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.release
	return len(p), nil
}

func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(fd, &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// A stream closed while the poller writes its data must keep its fd until the poller is done.
func TestPollerCloseWhileBusy(t *testing.T) {
	p := testPoller(t, nil)
	g := &gate{entered: make(chan struct{}), release: make(chan struct{})}
	path, rfd, w := testFIFO(t, "f")
	done, ended := doneChan(t)
	s := startOutput(p, rfd, "f", g, done)
	w.WriteString("x")
	waitFor(t, g.entered, "the write")
	closed := make(chan struct{})
	go func() { s.close(); close(closed) }()
	waitFor(t, closed, "close")
	notYet(t, ended, "end of a busy stream")
	if !sameFile(rfd, path) {
		t.Fatal("the fd of a busy stream was closed under the poller")
	}
	close(g.release)
	waitFor(t, ended, "end after the write")
	if sameFile(rfd, path) {
		t.Fatal("the fd is still open after the end")
	}
}

// An event the poller got for a stream that was closed since must not make it read the fd,
// whose number now names another file.
func TestPollerFDReuse(t *testing.T) {
	var armed atomic.Bool
	hooked, resume := make(chan struct{}), make(chan struct{})
	p := testPoller(t, func() {
		if armed.CompareAndSwap(true, false) {
			hooked <- struct{}{}
			<-resume
		}
	})
	var a, b recorder
	_, rfdA, wA := testFIFO(t, "a")
	_, rfdB, wB := testFIFO(t, "b")
	doneA, endedA := doneChan(t)
	sa := startOutput(p, rfdA, "a", &a, doneA)
	startOutput(p, rfdB, "b", &b, func() {})

	armed.Store(true)
	wA.WriteString("for a\n")
	waitFor(t, hooked, "the wait")
	// The poller has the event for a and has not looked at it yet.
	sa.close()
	waitFor(t, endedA, "the end of a")
	// Fill lower free fd numbers, so that the next open gets a's.
	other := filepath.Join(t.TempDir(), "other")
	for {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fd == rfdA {
			unix.Close(fd)
			break
		}
		defer unix.Close(fd)
		if fd > rfdA {
			t.Fatalf("fd %d is open again", rfdA)
		}
	}
	rfdO, _, err := openOutput(other, false)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rfdO)
	if rfdO != rfdA {
		t.Fatalf("fd %d was not reused (got %d)", rfdA, rfdO)
	}
	wO, err := os.OpenFile(other, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wO.Close()
	wO.WriteString("not for the poller\n")
	resume <- struct{}{}

	// The poller's next round comes after it handled the stale event.
	armed.Store(true)
	wB.WriteString("for b\n")
	waitFor(t, hooked, "the next wait")
	resume <- struct{}{}
	waitUntil(t, func() bool { return b.Len() > 0 }, "b's output")

	buf := make([]byte, 100)
	n, err := unix.Read(rfdO, buf)
	if got := string(buf[:max(n, 0)]); err != nil || got != "not for the poller\n" {
		t.Fatalf("the reused fd was read by the poller: we read %q, %v; stream a got %q", got, err, a.Bytes())
	}
}

// A task attached again may have left output in its FIFO and no writer: that reports no
// hang-up, so it must be read to its end before the FIFO is registered.
func TestPollerLeftoverWithoutWriter(t *testing.T) {
	p := testPoller(t, nil)
	path := filepath.Join(t.TempDir(), "f")
	if err := syscall.Mkfifo(path, 0o700); err != nil {
		t.Fatal(err)
	}
	// A reader of the old daemon keeps the FIFO's contents while the writer is gone.
	old, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	left := pattern(0, 60<<10)
	if _, err := w.Write(left); err != nil {
		t.Fatal(err)
	}
	w.Close()

	rfd, _, err := openOutput(path, false)
	if err != nil {
		t.Fatal(err)
	}
	var out recorder
	done, ended := doneChan(t)
	startOutput(p, rfd, "f", &out, done)
	waitFor(t, ended, "the end")
	if !bytes.Equal(out.Bytes(), left) {
		t.Fatalf("got %d bytes, not the %d left", out.Len(), len(left))
	}
}

// When the poller cannot go on, its streams and new ones are copied by pumps.
func TestPollerFailover(t *testing.T) {
	p := testPoller(t, nil)
	var a, b recorder
	_, rfdA, wA := testFIFO(t, "a")
	_, rfdB, wB := testFIFO(t, "b")
	doneA, endedA := doneChan(t)
	doneB, endedB := doneChan(t)
	startOutput(p, rfdA, "a", &a, doneA)
	wA.WriteString("before\n")
	waitUntil(t, func() bool { return a.Len() > 0 }, "a's output")
	p.ep.Close()
	waitUntil(t, p.isFailed, "the poller to fail")
	sb := startOutput(p, rfdB, "b", &b, doneB)
	if sb.file == nil {
		t.Fatal("a failed poller took a stream")
	}
	wA.WriteString("after\n")
	wB.WriteString("b\n")
	wA.Close()
	waitFor(t, endedA, "the end of a")
	waitUntil(t, func() bool { return b.Len() > 0 }, "b's output")
	sb.close()
	waitFor(t, endedB, "the end of b")
	if got := string(a.Bytes()); got != "before\nafter\n" {
		t.Errorf("a: %q", got)
	}
	if got := string(b.Bytes()); got != "b\n" {
		t.Errorf("b: %q", got)
	}
}

func TestStdioGoroutines(t *testing.T) {
	if sharedPoller() == nil {
		t.Fatal("no poller")
	}
	dir := t.TempDir()
	before := goruntime.NumGoroutine()
	var ios []*pumpedIO
	for i := range 50 {
		s := &Stdio{FIFODir: dir, Stdout: io.Discard, Stderr: io.Discard}
		c, err := s.creator()(fmt.Sprint("c", i))
		if err != nil {
			t.Fatal(err)
		}
		ios = append(ios, c.(*pumpedIO))
	}
	after := goruntime.NumGoroutine()
	for _, tio := range ios {
		tio.Close()
	}
	for _, tio := range ios {
		waitFor(t, waitIO(tio), "Wait")
	}
	if after-before > 2 {
		t.Fatalf("100 streams took %d goroutines", after-before)
	}
}
