// Package logs writes and reads container logs in the CRI format the kubelet uses:
//
//	2026-11-26T21:30:45.123456789Z stdout F a complete line
//	2026-11-26T21:30:45.123456789Z stderr P the first part of a long line
//
// A Writer takes a container's stdout and stderr, tags every line, and rotates the file by size
// keeping a bounded number of old files. A Decoder turns such a file back into the container's
// output, optionally with timestamps, and filters by time.
package logs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// maxLine is where a line without a newline is cut into a partial ("P") entry, as CRI does.
const maxLine = 16 * 1024

// Rotation limits a log: the current file is rotated when it exceeds MaxSize, and at most
// MaxFiles files (the current one included) are kept. The kubelet's defaults are 10 MiB and 5.
type Rotation struct {
	MaxSize  int64
	MaxFiles int
}

// DefaultRotation is the kubelet's containerLogMaxSize and containerLogMaxFiles.
var DefaultRotation = Rotation{MaxSize: 10 << 20, MaxFiles: 5}

// File is one container attempt's log file. Its Stdout and Stderr writers are safe to use from
// two goroutines; Close flushes partial lines.
type File struct {
	path string
	rot  Rotation
	now  func() time.Time

	mu   sync.Mutex
	f    *os.File
	size int64

	Stdout, Stderr io.WriteCloser
}

// Open appends to the log at path, creating it and its directory.
func Open(path string, rot Rotation) (*File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create log dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	l := &File{path: path, rot: rot, now: time.Now, f: f, size: st.Size()}
	l.Stdout = &stream{file: l, name: "stdout"}
	l.Stderr = &stream{file: l, name: "stderr"}
	return l, nil
}

// Close flushes both streams and closes the file.
func (l *File) Close() error {
	l.Stdout.Close()
	l.Stderr.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

func (l *File) writeEntry(stream string, partial bool, line []byte) {
	tag := "F"
	if partial {
		tag = "P"
	}
	var b bytes.Buffer
	b.Grow(len(line) + 48)
	b.WriteString(l.now().UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(stream)
	b.WriteByte(' ')
	b.WriteString(tag)
	b.WriteByte(' ')
	b.Write(line)
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.rot.MaxSize > 0 && l.size+int64(b.Len()) > l.rot.MaxSize && l.size > 0 {
		l.rotate()
	}
	n, _ := l.f.Write(b.Bytes())
	l.size += int64(n)
}

// rotate renames the current file aside with a timestamp suffix, drops the oldest beyond
// MaxFiles, and starts a new file. Called with mu held.
func (l *File) rotate() {
	rotated := fmt.Sprintf("%s.%s", l.path, l.now().UTC().Format("20060102-150405.000000000"))
	if err := os.Rename(l.path, rotated); err != nil {
		return
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	l.f.Close()
	l.f, l.size = f, 0
	old, _ := filepath.Glob(l.path + ".*")
	sort.Strings(old)
	keep := l.rot.MaxFiles - 1
	if keep < 0 {
		keep = 0
	}
	for len(old) > keep {
		os.Remove(old[0])
		old = old[1:]
	}
}

// stream cuts one output stream into lines.
type stream struct {
	file *File
	name string
	mu   sync.Mutex
	buf  []byte
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.buf = append(s.buf, p...)
			for len(s.buf) >= maxLine {
				s.file.writeEntry(s.name, true, s.buf[:maxLine])
				s.buf = append(s.buf[:0], s.buf[maxLine:]...)
			}
			break
		}
		line := p[:i]
		if len(s.buf) > 0 {
			line = append(s.buf, line...)
		}
		for len(line) > maxLine {
			s.file.writeEntry(s.name, true, line[:maxLine])
			line = line[maxLine:]
		}
		s.file.writeEntry(s.name, false, line)
		s.buf = s.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

// Close writes what is left of an unterminated last line as a partial entry, as containerd's
// CRI logger does: the output had no newline there, and a reader must not add one (a
// FallbackToLogsOnError message of "echo -n DONE" is "DONE").
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.buf) > 0 {
		s.file.writeEntry(s.name, true, s.buf)
		s.buf = s.buf[:0]
	}
	return nil
}

// Entry is one parsed log line.
type Entry struct {
	Time    time.Time
	Stream  string
	Partial bool
	Content []byte
}

// Parse reads one CRI log line (without its newline). A line not in the format is returned as
// content of an stdout entry, so that logs written by other means still show.
func Parse(line []byte) Entry {
	parts := bytes.SplitN(line, []byte{' '}, 4)
	if len(parts) == 4 {
		if t, err := time.Parse(time.RFC3339Nano, string(parts[0])); err == nil &&
			(string(parts[1]) == "stdout" || string(parts[1]) == "stderr") && (string(parts[2]) == "F" || string(parts[2]) == "P") {
			return Entry{Time: t, Stream: string(parts[1]), Partial: string(parts[2]) == "P", Content: parts[3]}
		}
	}
	return Entry{Stream: "stdout", Content: line}
}

// DecodeOptions filter and shape decoded output.
type DecodeOptions struct {
	Timestamps bool      // prefix each line with its RFC3339Nano time, like kubectl logs --timestamps
	Since      time.Time // drop lines older than this
}

// Decoder is an io.Writer that takes CRI log bytes (in any chunking) and writes the container's
// output to W.
type Decoder struct {
	W    io.Writer
	Opts DecodeOptions
	buf  []byte
	// midLine is set after a P entry: the next entry continues the same line, so it gets no
	// timestamp of its own.
	midLine bool
}

func (d *Decoder) Write(p []byte) (int, error) {
	n := len(p)
	d.buf = append(d.buf, p...)
	for {
		i := bytes.IndexByte(d.buf, '\n')
		if i < 0 {
			break
		}
		if err := d.line(d.buf[:i]); err != nil {
			return 0, err
		}
		d.buf = d.buf[i+1:]
	}
	if len(d.buf) == 0 {
		d.buf = nil
	}
	return n, nil
}

func (d *Decoder) line(l []byte) error {
	e := Parse(l)
	if !d.Opts.Since.IsZero() && !e.Time.IsZero() && e.Time.Before(d.Opts.Since) {
		return nil
	}
	// A P entry is written at once, without a newline, as the kubelet's log reader does: a
	// last line the container never ended stays unended, and a follower sees it now.
	var out []byte
	if d.Opts.Timestamps && !e.Time.IsZero() && !d.midLine {
		out = append(out, e.Time.UTC().Format(time.RFC3339Nano)...)
		out = append(out, ' ')
	}
	out = append(out, e.Content...)
	if !e.Partial {
		out = append(out, '\n')
	}
	d.midLine = e.Partial
	_, err := d.W.Write(out)
	return err
}

// TailOffset returns the offset in the file from which its last n complete log lines start
// (0 when it has fewer). Partial entries do not count as lines.
func TailOffset(f io.ReaderAt, size int64, n int) int64 {
	if n < 0 {
		return 0
	}
	if n == 0 {
		return size
	}
	const chunk = 32 * 1024
	seen := 0
	next := size // start of the line after the one being looked at
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		buf := make([]byte, end-start)
		if _, err := f.ReadAt(buf, start); err != nil && err != io.EOF {
			return 0
		}
		for i := len(buf) - 1; i >= 0; i-- {
			// A newline that is not the file's last byte starts a line.
			if buf[i] != '\n' || start+int64(i) == size-1 {
				continue
			}
			lineStart := start + int64(i) + 1
			if isFull(f, lineStart) {
				seen++
				if seen > n {
					return next
				}
			}
			next = lineStart
		}
		end = start
	}
	if isFull(f, 0) && seen+1 > n {
		return next
	}
	return 0
}

func isFull(f io.ReaderAt, off int64) bool {
	buf := make([]byte, 48)
	n, _ := f.ReadAt(buf, off)
	parts := strings.SplitN(string(buf[:n]), " ", 4)
	return len(parts) < 3 || parts[2] != "P"
}
