package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// asOtherOwner makes the checks expect another owner than the files' (the test's user), as if
// the files belonged to someone else, for the duration of the test.
func asOtherOwner(t *testing.T) {
	t.Helper()
	old := owner
	owner++
	t.Cleanup(func() { owner = old })
}

func TestLoadChecksConfigFilePerms(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		other   bool // owned by another user
		args    []string
		refused bool
	}{
		{name: "root's, 0644", mode: 0o644},
		{name: "root's, 0600", mode: 0o600},
		{name: "group-writable", mode: 0o664, refused: true},
		{name: "world-writable", mode: 0o666, refused: true},
		{name: "another user's", mode: 0o644, other: true, refused: true},
		{name: "world-writable, flag given", mode: 0o666, args: []string{"--insecure-manifest-perms"}},
		{name: "another user's, flag given", mode: 0o644, other: true, args: []string{"--insecure-manifest-perms=true"}},
		// A file others can write cannot switch its own check off.
		{name: "world-writable, the file lifts the check", content: "insecure-manifest-perms: true\n", mode: 0o666, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, "log-level: debug\n"+tc.content)
			if err := os.Chmod(p, tc.mode); err != nil {
				t.Fatal(err)
			}
			if tc.other {
				asOtherOwner(t)
			}
			cfg, err := load(t, append([]string{"--config", p}, tc.args...)...)
			if !tc.refused {
				if err != nil || cfg.LogLevel != "debug" {
					t.Fatalf("Load = %+v, %v; want the file read", cfg.LogLevel, err)
				}
				return
			}
			if !errors.Is(err, ErrInsecurePerms) {
				t.Fatalf("Load = %v, want an insecure permissions error", err)
			}
			for _, want := range []string{"config file " + p + " is owned by", "must be root's and not writable by group or others", "--insecure-manifest-perms on the command line"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			// minipodctl validate --config reads the file whatever its permissions.
			if cfg, err := LoadFile(p); err != nil || cfg.LogLevel != "debug" {
				t.Errorf("LoadFile = %v, want the file read", err)
			}
		})
	}
}

// A FIFO in the config file's place is refused at once, never waited on.
func TestLoadConfigFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := load(t, "--config", p); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Load of a FIFO = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load waits on a FIFO")
	}
}

func TestReadTrustedPrivate(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mode    os.FileMode
		other   bool
		refused bool
	}{
		{mode: 0o600},
		{mode: 0o400},
		{mode: 0o640, refused: true},
		{mode: 0o604, refused: true},
		{mode: 0o644, refused: true},
		{mode: 0o600, other: true, refused: true},
	} {
		p := filepath.Join(dir, "auth.json")
		if err := os.WriteFile(p, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, tc.mode); err != nil {
			t.Fatal(err)
		}
		old := owner
		if tc.other {
			owner++
		}
		_, err := ReadTrusted("registry auth file", p, true, false, 1<<20)
		_, errInsecure := ReadTrusted("registry auth file", p, true, true, 1<<20)
		owner = old
		if errInsecure != nil {
			t.Errorf("mode %#o other %v, insecure: %v", tc.mode, tc.other, errInsecure)
		}
		if !tc.refused {
			if err != nil {
				t.Errorf("mode %#o other %v: %v", tc.mode, tc.other, err)
			}
			continue
		}
		if !errors.Is(err, ErrInsecurePerms) || !strings.Contains(err.Error(), "not readable or writable by group or others (chown root "+p+"; chmod go-rwx "+p) {
			t.Errorf("mode %#o other %v: %v, want a refusal", tc.mode, tc.other, err)
		}
	}
}

func TestCheckImageDir(t *testing.T) {
	mk := func(t *testing.T, dirMode os.FileMode, files map[string]os.FileMode) string {
		t.Helper()
		dir := filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, mode := range files {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, dirMode); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	for _, tc := range []struct {
		name    string
		dirMode os.FileMode
		files   map[string]os.FileMode
		other   bool
		want    []string // in the error; none: accepted
	}{
		{name: "safe", dirMode: 0o755, files: map[string]os.FileMode{"app.tar": 0o644, "db.tar.gz": 0o600}},
		{name: "dotfiles are not read", dirMode: 0o755, files: map[string]os.FileMode{".app.tar.part": 0o666}},
		{name: "world-writable directory", dirMode: 0o777,
			want: []string{"image import directory", "with mode 0777", "not writable by group or others"}},
		{name: "group-writable archive", dirMode: 0o755, files: map[string]os.FileMode{"ok.tar": 0o644, "app.tar": 0o664},
			want: []string{"image archive", "app.tar is owned by", "with mode 0664"}},
		{name: "another user's", dirMode: 0o755, files: map[string]os.FileMode{"app.tar": 0o644}, other: true,
			want: []string{"image import directory", "image archive", "app.tar"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := mk(t, tc.dirMode, tc.files)
			if tc.other {
				asOtherOwner(t)
			}
			err := CheckImageDir(dir)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("CheckImageDir = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInsecurePerms) {
				t.Fatalf("CheckImageDir = %v, want an insecure permissions error", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "ok.tar") {
				t.Errorf("error names a safe archive: %v", err)
			}
		})
	}
	if err := CheckImageDir(filepath.Join(t.TempDir(), "missing")); err != nil {
		t.Errorf("missing directory: %v", err)
	}
}
