package logs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestOverCap(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	files := []LogFile{
		{Path: "a/app/0.log", Size: 100, ModTime: at(1)},                // previous attempt
		{Path: "a/app/1.log", Size: 300, ModTime: at(9), Current: true}, // being written
		{Path: "a/app/1.log.2", Size: 200, ModTime: at(5)},              // rotated
		{Path: "b/web/0.log", Size: 400, ModTime: at(0), Current: true}, // old, but current
		{Path: "b/web/0.log.1", Size: 200, ModTime: at(2)},              // rotated
		{Path: "b/web/0.log.0", Size: 200, ModTime: at(2)},              // same time: by path
	}
	paths := func(fs []LogFile) []string {
		var out []string
		for _, f := range fs {
			out = append(out, f.Path)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		max       int64
		want      []string
		wantTotal int64
	}{
		{"under the cap", 2000, nil, 1400},
		{"no cap", 0, nil, 1400},
		{"oldest first, until under", 1200, []string{"a/app/0.log", "b/web/0.log.0"}, 1100},
		{"exactly at the cap", 1400, nil, 1400},
		{"every file not current", 700, []string{"a/app/0.log", "b/web/0.log.0", "b/web/0.log.1", "a/app/1.log.2"}, 700},
		{"current files alone exceed it", 100, []string{"a/app/0.log", "b/web/0.log.0", "b/web/0.log.1", "a/app/1.log.2"}, 700},
	} {
		got, total := OverCap(files, tc.max)
		if !slices.Equal(paths(got), tc.want) || total != tc.wantTotal {
			t.Errorf("%s: remove %v, total %d; want %v, %d", tc.name, paths(got), total, tc.want, tc.wantTotal)
		}
	}
}

// ScanDir reads the pod manager's layout: the newest attempt's log is current, rotated files
// and earlier attempts are not, and anything else is left alone.
func TestScanDirAndEnforce(t *testing.T) {
	dir := t.TempDir()
	write := func(rel string, size int, age time.Duration) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o640); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(-age)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	write("default_web_u1/app/0.log", 100, 5*time.Hour)
	write("default_web_u1/app/0.log.20261206-100000.000000000", 100, 6*time.Hour)
	write("default_web_u1/app/1.log", 100, 4*time.Hour) // current, though old
	write("default_web_u1/app/1.log.20261206-110000.000000000", 100, 3*time.Hour)
	write("default_web_u1/side/0.log", 100, 7*time.Hour) // current
	write("default_web_u1/app/notes.txt", 100, 9*time.Hour)
	write("default_web_u1/app/2.termination-log", 100, 9*time.Hour)
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "default_web_u1/app/3.log")); err != nil {
		t.Fatal(err)
	}
	files, err := ScanDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var current, other []string
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f.Path)
		if f.Current {
			current = append(current, rel)
		} else {
			other = append(other, rel)
		}
	}
	slices.Sort(current)
	slices.Sort(other)
	if want := []string{"default_web_u1/app/1.log", "default_web_u1/side/0.log"}; !slices.Equal(current, want) {
		t.Errorf("current %v, want %v", current, want)
	}
	if want := []string{"default_web_u1/app/0.log", "default_web_u1/app/0.log.20261206-100000.000000000", "default_web_u1/app/1.log.20261206-110000.000000000"}; !slices.Equal(other, want) {
		t.Errorf("others %v, want %v", other, want)
	}

	c := &Cap{Dir: dir, Max: 300}
	if total := c.Enforce(); total != 300 {
		t.Errorf("total after enforcing = %d, want 300", total)
	}
	left, _ := ScanDir(dir)
	var names []string
	for _, f := range left {
		rel, _ := filepath.Rel(dir, f.Path)
		names = append(names, rel)
	}
	slices.Sort(names)
	if want := []string{"default_web_u1/app/1.log", "default_web_u1/app/1.log.20261206-110000.000000000", "default_web_u1/side/0.log"}; !slices.Equal(names, want) {
		t.Errorf("left %v, want %v (the two oldest files not current removed)", names, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "default_web_u1/app/notes.txt")); err != nil {
		t.Errorf("a file that is no log was touched: %v", err)
	}
}

// A directory swapped for a link after the scan is not followed.
func TestRemoveBeneath(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "0.log.1"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "pod"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "pod", "c")); err != nil {
		t.Fatal(err)
	}
	if err := removeBeneath(dir, filepath.Join(dir, "pod", "c", "0.log.1")); err == nil {
		t.Fatal("removed a file through a link")
	}
	if _, err := os.Stat(filepath.Join(outside, "0.log.1")); err != nil {
		t.Fatalf("the file outside is gone: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pod", "0.log.1"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := removeBeneath(dir, filepath.Join(dir, "pod", "0.log.1")); err != nil {
		t.Fatalf("remove below: %v", err)
	}
}
