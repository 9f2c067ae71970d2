package logs

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 26, 21, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func TestWriterFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	l, err := Open(path, DefaultRotation)
	if err != nil {
		t.Fatal(err)
	}
	l.now = fixedClock()
	l.Stdout.Write([]byte("one\ntw"))
	l.Stderr.Write([]byte("err line\n"))
	l.Stdout.Write([]byte("o\nunterminated"))
	l.Stdout.Write([]byte(strings.Repeat("x", maxLine+10) + "\n"))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSuffix(string(got), "\n"), "\n")
	want := []struct{ stream, tag, content string }{
		{"stdout", "F", "one"},
		{"stderr", "F", "err line"},
		{"stdout", "F", "two"},
		{"stdout", "P", "unterminated" + strings.Repeat("x", maxLine-len("unterminated"))},
		{"stdout", "F", strings.Repeat("x", 22)},
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), got)
	}
	for i, w := range want {
		parts := strings.SplitN(lines[i], " ", 4)
		if _, err := time.Parse(time.RFC3339Nano, parts[0]); err != nil {
			t.Errorf("line %d: bad time %q", i, parts[0])
		}
		if parts[1] != w.stream || parts[2] != w.tag || parts[3] != w.content {
			t.Errorf("line %d = %q %q %.20q, want %q %q %.20q", i, parts[1], parts[2], parts[3], w.stream, w.tag, w.content)
		}
	}
}

func TestDecoder(t *testing.T) {
	in := "2026-11-26T21:00:01Z stdout F one\n" +
		"2026-11-26T21:00:02Z stderr P par\n" +
		"2026-11-26T21:00:03Z stderr F tial\n" +
		"not a cri line\n" +
		"2026-11-26T21:00:04Z stdout F last\n"
	for _, tc := range []struct {
		name string
		opts DecodeOptions
		want string
	}{
		{"plain", DecodeOptions{}, "one\npartial\nnot a cri line\nlast\n"},
		// A line cut into P entries carries one timestamp: its first entry's, as on a kubelet.
		{"timestamps", DecodeOptions{Timestamps: true}, "2026-11-26T21:00:01Z one\n2026-11-26T21:00:02Z partial\nnot a cri line\n2026-11-26T21:00:04Z last\n"},
		{"since", DecodeOptions{Since: time.Date(2026, 11, 26, 21, 0, 3, 0, time.UTC)}, "tial\nnot a cri line\nlast\n"},
	} {
		var out bytes.Buffer
		d := &Decoder{W: &out, Opts: tc.opts}
		// Feed it in awkward chunks.
		for i := 0; i < len(in); i += 7 {
			d.Write([]byte(in[i:min(i+7, len(in))]))
		}
		if out.String() != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, out.String(), tc.want)
		}
	}
}

func TestTailOffset(t *testing.T) {
	data := "2026-11-26T21:00:01Z stdout F a\n" +
		"2026-11-26T21:00:02Z stdout P b1\n" +
		"2026-11-26T21:00:03Z stdout F b2\n" +
		"2026-11-26T21:00:04Z stdout F c\n"
	r := strings.NewReader(data)
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, ""},
		{1, "c\n"},
		{2, "b1b2\nc\n"},
		{3, "a\nb1b2\nc\n"},
		{10, "a\nb1b2\nc\n"},
		{-1, "a\nb1b2\nc\n"},
	} {
		off := TailOffset(r, int64(len(data)), tc.n)
		var out bytes.Buffer
		d := &Decoder{W: &out}
		d.Write([]byte(data[off:]))
		if out.String() != tc.want {
			t.Errorf("tail %d: got %q, want %q", tc.n, out.String(), tc.want)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	l, err := Open(path, Rotation{MaxSize: 200, MaxFiles: 3})
	if err != nil {
		t.Fatal(err)
	}
	l.now = fixedClock()
	for i := 0; i < 50; i++ {
		l.Stdout.Write([]byte("a log line of some length\n"))
	}
	l.Close()
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 {
		t.Fatalf("files = %v, want the current one and 2 rotated", files)
	}
	for _, f := range files {
		st, _ := os.Stat(f)
		if st.Size() > 200 {
			t.Errorf("%s is %d bytes, over the 200 limit", f, st.Size())
		}
	}
}

// Output that ends without a newline is logged as a partial entry and read back without one,
// as containerd's CRI logger and the kubelet's reader do (issue 23, deviation 5).
func TestUnterminatedLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "0.log")
	l, err := Open(path, DefaultRotation)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(l.Stdout, "first\nDONE")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[1], " stdout P DONE") {
		t.Fatalf("log %q: want the last line as a P entry", raw)
	}
	var out bytes.Buffer
	if _, err := io.Copy(&Decoder{W: &out}, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if out.String() != "first\nDONE" {
		t.Errorf("decoded %q, want %q", out.String(), "first\nDONE")
	}
}
