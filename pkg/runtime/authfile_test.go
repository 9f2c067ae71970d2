package runtime

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeAuth(t *testing.T, path, user, pass string, mode os.FileMode) {
	t.Helper()
	body := `{"auths":{"registry.local:5000":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + `"}}}`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

var errRefused = errors.New("refused")

// refuseOpen is a check that refuses what group or others can access.
func refuseOpen(_ string, info os.FileInfo) error {
	if info.Mode().Perm()&0o077 != 0 {
		return errRefused
	}
	return nil
}

func TestAuthFileCheck(t *testing.T) {
	dir := t.TempDir()
	first, second := filepath.Join(dir, "auth.json"), filepath.Join(dir, "config.json")
	writeAuth(t, second, "fallback", "pw2", 0o600)

	// Accepted: the first file's credentials.
	writeAuth(t, first, "alice", "pw", 0o600)
	var checked []string
	creds, err := AuthFile(func(p string, info os.FileInfo) error {
		checked = append(checked, p)
		return refuseOpen(p, info)
	}, first, second)
	if err != nil || creds == nil {
		t.Fatalf("AuthFile: %v", err)
	}
	if u, p, ok := creds("registry.local:5000"); !ok || u != "alice" || p != "pw" {
		t.Errorf("creds = %q %q %v", u, p, ok)
	}
	if len(checked) != 1 || checked[0] != first {
		t.Errorf("checked %v, want only %s", checked, first)
	}

	// Refused: the check's error, and no fallback to the next file.
	writeAuth(t, first, "alice", "pw", 0o644)
	creds, err = AuthFile(refuseOpen, first, second)
	if !errors.Is(err, errRefused) || creds != nil {
		t.Errorf("AuthFile of a refused file = %v, %v; want the check's error and no credentials", creds != nil, err)
	}

	// No check: read whatever its mode.
	if creds, err := AuthFile(nil, first, second); err != nil || creds == nil {
		t.Errorf("AuthFile without a check: %v", err)
	}

	// A missing file is skipped.
	if creds, err := AuthFile(refuseOpen, filepath.Join(dir, "missing.json"), second); err != nil || creds == nil {
		t.Errorf("AuthFile after a missing file: %v", err)
	} else if u, _, _ := creds("registry.local:5000"); u != "fallback" {
		t.Errorf("user %q, want fallback", u)
	}
}

// A FIFO in the auth file's place is refused at once, never waited on (every pull reads it).
func TestAuthFileFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "auth.json")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := AuthFile(nil, p); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("AuthFile of a FIFO = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AuthFile waits on a FIFO")
	}
}
