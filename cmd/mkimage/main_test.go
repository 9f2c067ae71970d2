package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "pause")
	if err := os.WriteFile(prog, []byte("pause"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pause.tar")
	var stderr bytes.Buffer
	if err := run([]string{"pause", "-pause", prog, "-name", "example.local/p:1", "-o", out}, os.Stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(out); err != nil || st.Size() == 0 {
		t.Fatalf("output: %v", err)
	}
	if !strings.Contains(stderr.String(), "example.local/p:1 sha256:") {
		t.Errorf("stderr %q", stderr.String())
	}

	// -o - writes the same bytes to standard output.
	stdoutPath := filepath.Join(dir, "stdout.tar")
	f, err := os.Create(stdoutPath)
	if err != nil {
		t.Fatal(err)
	}
	err = run([]string{"pause", "-pause", prog, "-name", "example.local/p:1", "-o", "-"}, f, &stderr)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(out)
	b, _ := os.ReadFile(stdoutPath)
	if !bytes.Equal(a, b) {
		t.Error("-o - differs from -o FILE")
	}

	for _, args := range [][]string{
		nil,
		{"nginx", "-o", out},
		{"pause", "-o", out},
		{"pause", "-pause", prog},
		{"pause", "-pause", filepath.Join(dir, "missing"), "-o", out},
		{"pause", "-pause", prog, "-o", out, "extra"},
		{"busybox", "-busybox", filepath.Join(dir, "missing"), "-o", out},
		{"pause", "-pause", prog, "-o", filepath.Join(dir, "nodir", "x.tar")},
		{"busybox", "-bogus"},
	} {
		err := run(args, os.Stdout, &stderr)
		if err == nil {
			t.Errorf("%q: no error", args)
		}
		if errors.Is(err, errUsage) && len(args) > 1 && args[0] != "nginx" {
			t.Errorf("%q: usage error for a bad value", args)
		}
	}
}
