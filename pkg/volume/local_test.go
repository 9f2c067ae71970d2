package volume

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
)

// readWithin runs l.Read(name), failing the test when it does not return within d: a read
// that waits on a FIFO would hang for good.
func readWithin(t *testing.T, l Local, name string, d time.Duration) (map[string][]byte, error) {
	t.Helper()
	type result struct {
		obj map[string][]byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		obj, err := l.Read(name)
		done <- result{obj, err}
	}()
	select {
	case r := <-done:
		return r.obj, r.err
	case <-time.After(d):
		t.Fatalf("Read(%q) did not return within %s", name, d)
		return nil, nil
	}
}

// TestLocalRead covers what a local ConfigMap or Secret may be (issue 20): each case starts
// from Dir/app holding key a = "A" (directories 0755, file 0644; a Secret's file 0600), all
// the test user's, and changes one thing.
func TestLocalRead(t *testing.T) {
	mkfifo := func(p string) error { return syscall.Mkfifo(p, 0o644) }
	symlink := func(target string) func(t *testing.T, cm, outside string) {
		return func(t *testing.T, cm, outside string) {
			t.Helper()
			if err := os.Symlink(strings.ReplaceAll(target, "OUT", outside), filepath.Join(cm, "app", "link")); err != nil {
				t.Fatal(err)
			}
		}
	}
	write := func(name string, size int64) func(t *testing.T, cm, outside string) {
		return func(t *testing.T, cm, outside string) {
			t.Helper()
			p := filepath.Join(cm, "app", name)
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, size); err != nil { // sparse: no disk, nor memory, used
				t.Fatal(err)
			}
		}
	}
	chmod := func(rel string, mode os.FileMode) func(t *testing.T, cm, outside string) {
		return func(t *testing.T, cm, outside string) {
			t.Helper()
			if err := os.Chmod(filepath.Join(cm, rel), mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		secret   bool
		insecure bool
		root     bool // needs root (mknod, chown)
		noOpen2  bool // as on a kernel without openat2
		object   string
		setup    func(t *testing.T, cm, outside string)
		want     map[string]string
		wantErr  error  // errors.Is
		wantMsg  string // in the error
	}{
		{name: "plain", want: map[string]string{"a": "A"}},
		{name: "secret", secret: true, want: map[string]string{"a": "A"}},
		{name: "not keys: dotdot names, directories, invalid names", setup: func(t *testing.T, cm, _ string) {
			for _, d := range []string{"..2024_01_01_00_00_00.1", "sub"} {
				if err := os.Mkdir(filepath.Join(cm, "app", d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// Not keys, so never opened: not even a FIFO.
			if err := mkfifo(filepath.Join(cm, "app", "bad name")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cm, "app", ".hidden"), []byte("H"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: map[string]string{"a": "A", ".hidden": "H"}},
		{name: "mounted layout: links within", setup: func(t *testing.T, cm, _ string) {
			ts := filepath.Join(cm, "app", "..2024_01_01_00_00_00.1")
			if err := os.Mkdir(ts, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(ts, "b"), []byte("B"), 0o644); err != nil {
				t.Fatal(err)
			}
			for link, target := range map[string]string{"..data": "..2024_01_01_00_00_00.1", "b": "..data/b", "c": "a", "dangling": "nowhere"} {
				if err := os.Symlink(target, filepath.Join(cm, "app", link)); err != nil {
					t.Fatal(err)
				}
			}
		}, want: map[string]string{"a": "A", "b": "B", "c": "A"}},
		{name: "link to a root-only file", setup: symlink("OUT/private"), wantErr: ErrUnsafe, wantMsg: "app/link is a symbolic link out of "},
		{name: "relative link out", setup: symlink("../../outside/private"), wantErr: ErrUnsafe, wantMsg: "symbolic link out of"},
		{name: "link to /dev/zero", setup: symlink("/dev/zero"), wantErr: ErrUnsafe, wantMsg: "symbolic link out of"},
		{name: "secret: link to a root-only file", secret: true, setup: symlink("OUT/private"), wantErr: ErrUnsafe, wantMsg: "a secret's links are followed only within its own directory"},
		{name: "insecure: links out still refused", insecure: true, setup: symlink("OUT/private"), wantErr: ErrUnsafe},
		{name: "no openat2: plain", noOpen2: true, want: map[string]string{"a": "A"}},
		{name: "no openat2: no link followed", noOpen2: true, setup: symlink("a"), wantErr: ErrUnsafe, wantMsg: "app/link is a symbolic link, not a regular file"},
		{name: "fifo", setup: func(t *testing.T, cm, _ string) {
			if err := mkfifo(filepath.Join(cm, "app", "pipe")); err != nil {
				t.Fatal(err)
			}
		}, wantErr: ErrUnsafe, wantMsg: "app/pipe is a named pipe, not a regular file"},
		{name: "secret fifo", secret: true, setup: func(t *testing.T, cm, _ string) {
			if err := syscall.Mkfifo(filepath.Join(cm, "app", "pipe"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, wantErr: ErrUnsafe, wantMsg: "named pipe"},
		{name: "socket", setup: func(t *testing.T, cm, _ string) {
			l, err := net.Listen("unix", filepath.Join(cm, "app", "sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, wantErr: ErrUnsafe, wantMsg: "app/sock is a socket"},
		{name: "character device", root: true, setup: func(t *testing.T, cm, _ string) {
			if err := unix.Mknod(filepath.Join(cm, "app", "zero"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 5))); err != nil {
				t.Fatal(err)
			}
		}, wantErr: ErrUnsafe, wantMsg: "app/zero is a character device"},
		{name: "1 MiB in all", setup: write("big", MaxObjectSize-1), want: map[string]string{"a": "A", "big": strings.Repeat("\x00", MaxObjectSize-1)}},
		{name: "one byte too many", setup: write("big", MaxObjectSize), wantErr: ErrUnsafe, wantMsg: "app holds more than 1048576 bytes (1 MiB), the most a configMap may hold"},
		{name: "huge sparse file", setup: write("huge", 1<<40), wantErr: ErrUnsafe, wantMsg: "more than 1048576 bytes"},
		{name: "secret too big", secret: true, setup: func(t *testing.T, cm, o string) {
			write("big", MaxObjectSize)(t, cm, o)
			chmod("app/big", 0o600)(t, cm, o)
		}, wantErr: ErrUnsafe, wantMsg: "the most a secret may hold"},
		{name: "name .", object: ".", wantMsg: `invalid name "."`},
		{name: "name ..", object: "..", wantMsg: `invalid name ".."`},
		{name: "name with a slash", object: "app/a", wantMsg: "invalid name"},
		{name: "name upper case", object: "App", wantMsg: "invalid name"},
		{name: "empty name", object: "", wantMsg: "invalid name"},
		{name: "missing", object: "nope", wantErr: ErrNotFound},
		{name: "object is a file", setup: func(t *testing.T, cm, _ string) {
			if err := os.WriteFile(filepath.Join(cm, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, object: "file", wantErr: ErrUnsafe, wantMsg: "file is not a directory"},
		{name: "object is a fifo", setup: func(t *testing.T, cm, _ string) {
			if err := mkfifo(filepath.Join(cm, "pipe")); err != nil {
				t.Fatal(err)
			}
		}, object: "pipe", wantErr: ErrUnsafe, wantMsg: "is not a directory"},
		{name: "object is a link out", setup: func(t *testing.T, cm, outside string) {
			if err := os.Symlink(outside, filepath.Join(cm, "out")); err != nil {
				t.Fatal(err)
			}
		}, object: "out", wantErr: ErrUnsafe, wantMsg: "cm/out is a symbolic link out of"},
		{name: "object is a link within", setup: func(t *testing.T, cm, _ string) {
			if err := os.Symlink("app", filepath.Join(cm, "app-v2")); err != nil {
				t.Fatal(err)
			}
		}, object: "app-v2", want: map[string]string{"a": "A"}},
		{name: "dir group-writable", setup: chmod(".", 0o775), wantErr: ErrInsecure, wantMsg: "a configMap directory must be root's and not writable by group or others"},
		{name: "object dir others-writable", setup: chmod("app", 0o757), wantErr: ErrInsecure, wantMsg: "chmod go-w "},
		{name: "insecure: dir world-writable", insecure: true, setup: chmod(".", 0o777), want: map[string]string{"a": "A"}},
		{name: "file group-writable", setup: chmod("app/a", 0o664), wantErr: ErrInsecure, wantMsg: "app/a is owned by root with mode 0664: a configMap file must be root's and not writable by group or others"},
		{name: "file readable by all", setup: chmod("app/a", 0o444), want: map[string]string{"a": "A"}},
		{name: "secret file readable by others", secret: true, setup: chmod("app/a", 0o604), wantErr: ErrInsecure, wantMsg: "chmod go-rwx"},
		{name: "insecure secret", secret: true, insecure: true, setup: chmod("app/a", 0o666), want: map[string]string{"a": "A"}},
		{name: "file of another user", root: true, setup: func(t *testing.T, cm, _ string) {
			if err := os.Chown(filepath.Join(cm, "app", "a"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, wantErr: ErrInsecure, wantMsg: "owned by uid 1000"},
		{name: "dir of another user", root: true, setup: func(t *testing.T, cm, _ string) {
			if err := os.Chown(filepath.Join(cm, "app"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
		}, wantErr: ErrInsecure, wantMsg: "owned by uid 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.root && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			if tc.noOpen2 {
				localNoOpenat2.Store(true)
				defer localNoOpenat2.Store(false)
			}
			root := t.TempDir()
			cm, outside := filepath.Join(root, "cm"), filepath.Join(root, "outside")
			keyMode := os.FileMode(0o644)
			if tc.secret {
				keyMode = 0o600
			}
			writeMode(t, cm, nil, 0o755)
			writeMode(t, filepath.Join(cm, "app"), nil, 0o755)
			writeMode(t, filepath.Join(cm, "app", "a"), []byte("A"), keyMode)
			writeMode(t, outside, nil, 0o755)
			writeMode(t, filepath.Join(outside, "private"), []byte("private-content"), 0o600)
			if tc.setup != nil {
				tc.setup(t, cm, outside)
			}
			object := tc.object
			if object == "" && !strings.HasPrefix(tc.name, "empty") {
				object = "app"
			}
			obj, err := readWithin(t, Local{Dir: cm, Secret: tc.secret, Insecure: tc.insecure}, object, 5*time.Second)
			if tc.wantErr != nil || tc.wantMsg != "" {
				if err == nil || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v, want %v with %q", err, tc.wantErr, tc.wantMsg)
				}
				if strings.Contains(err.Error(), "private-content") {
					t.Errorf("the error holds the content of what it refused: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, v := range obj {
				got[k] = string(v)
			}
			if !reflect.DeepEqual(got, tc.want) {
				if len(got["big"]) > 0 || len(tc.want["big"]) > 0 {
					t.Fatalf("got %d keys (big: %d bytes), want %d keys", len(got), len(got["big"]), len(tc.want))
				}
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The zero Local and a missing directory hold no objects.
func TestLocalNotFound(t *testing.T) {
	for _, l := range []Local{{}, {Dir: filepath.Join(t.TempDir(), "missing")}} {
		if _, err := l.Read("app"); !errors.Is(err, ErrNotFound) {
			t.Errorf("%+v: err %v, want ErrNotFound", l, err)
		}
	}
}

// A configMap volume reports an unsafe configMap as FailedMount naming the volume, the
// configMap and the file, optional or not, and never writes what the link leads to.
func TestConfigMapVolumeUnsafe(t *testing.T) {
	e := newEnv(t)
	e.object(t, e.cfg.ConfigMapDir, "app", map[string]string{"a": "A"})
	private := filepath.Join(t.TempDir(), "private")
	writeMode(t, private, []byte("private-content"), 0o600)
	link := filepath.Join(e.cfg.ConfigMapDir, "app", "passwd")
	if err := os.Symlink(private, link); err != nil {
		t.Fatal(err)
	}
	for _, optional := range []bool{false, true} {
		vol := corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Optional: ptr(optional)}}}
		_, err := Prepare(e.cfg, podWith(vol), "")
		if reasonOf(err) != ReasonFailedMount || !errors.Is(err, ErrUnsafe) ||
			!strings.Contains(err.Error(), `volume "cfg": configmap "app": `+link+" is a symbolic link out of") {
			t.Errorf("optional %v: %v (reason %q)", optional, err, reasonOf(err))
		}
	}
	proj := corev1.Volume{Name: "all", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
		{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}},
	}}}}
	if _, err := Prepare(e.cfg, podWith(proj), ""); reasonOf(err) != ReasonFailedMount || !errors.Is(err, ErrUnsafe) {
		t.Errorf("projected configMap: %v", err)
	}
	if err := os.Chmod(e.cfg.ConfigMapDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	vol := corev1.Volume{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}
	if _, err := Prepare(e.cfg, podWith(vol), ""); reasonOf(err) != ReasonFailedMount || !errors.Is(err, ErrInsecure) {
		t.Errorf("configmap dir 0777: %v", err)
	}
	cfg := e.cfg
	cfg.InsecureSecretPerms = true
	p, err := Prepare(cfg, podWith(vol), "")
	if err != nil {
		t.Fatalf("configmap dir 0777 with InsecureSecretPerms: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(p.Paths["cfg"], "a")); err != nil || string(b) != "A" {
		t.Errorf("configMap volume: %q %v", b, err)
	}
}
