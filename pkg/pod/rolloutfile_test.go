package pod

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// The writer keeps only the latest content of a file, reads it back before it is on disk, and
// writes or removes everything pending when stopped.
func TestRecordWriter(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "r", "a.json"), filepath.Join(dir, "r", "b.json")
	rw := newRecordWriter(slog.New(slog.DiscardHandler))
	rw.put(a, []byte("1"))
	rw.put(a, []byte("2"))
	rw.put(b, []byte("x"))
	if got, ok := rw.get(a); !ok || string(got) != "2" {
		t.Errorf("pending a = %q, %v", got, ok)
	}
	stop := rw.start()
	rw.put(b, nil) // removed after it was written, or never written
	stop()
	if got, err := os.ReadFile(a); err != nil || string(got) != "2" {
		t.Errorf("a = %q, %v", got, err)
	}
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Errorf("b not removed: %v", err)
	}
	if _, ok := rw.get(a); ok {
		t.Errorf("a still pending after the stop")
	}
	if fi, err := os.Stat(a); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("a's mode: %v %v", fi.Mode(), err)
	}
}
