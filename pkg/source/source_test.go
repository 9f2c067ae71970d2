package source

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/manifest"
)

func podYAML(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: c\n    image: %s\n", name, image)
}

func podJSON(namespace, name string) string {
	return fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`, name, namespace)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pods summarizes a snapshot's pods as "namespace/name<-file image".
func pods(s Snapshot) []string {
	var out []string
	for _, p := range s.Pods {
		out = append(out, fmt.Sprintf("%s/%s<-%s %s", p.Namespace, p.Name,
			filepath.Base(p.Annotations[manifest.AnnotationManifest]), p.Spec.Containers[0].Image))
	}
	return out
}

// problems summarizes a snapshot's problems as "file: namespace/name reason running".
func problems(s Snapshot) []string {
	var out []string
	for _, p := range s.Problems {
		out = append(out, fmt.Sprintf("%s: %s/%s %s running=%v", filepath.Base(p.Path), p.Namespace, p.Name, p.Reason, p.Running))
	}
	return out
}

func checkSnap(t *testing.T, step string, s Snapshot, wantPods, wantProblems []string) {
	t.Helper()
	if got := pods(s); !slices.Equal(got, wantPods) {
		t.Errorf("%s: pods\n got %q\nwant %q", step, got, wantPods)
	}
	if got := problems(s); !slices.Equal(got, wantProblems) {
		t.Errorf("%s: problems\n got %q\nwant %q", step, got, wantProblems)
	}
}

// newSource returns a Source on a new directory that passes the permission check.
func newSource(t *testing.T) (*Source, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return New(Config{Dir: dir, InsecurePerms: !isRoot}), dir
}

// isRoot: the permission check wants root's files, which only root can make.
var isRoot = os.Geteuid() == 0

func TestIgnored(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"web.yaml", false},
		{"web.yml", false},
		{"web.json", false},
		{"a.b.yaml", false},
		{".web.yaml", true},
		{".hidden", true},
		{".web.yaml.swp", true},
		{"web.yaml.swp", true},
		{"web.yaml~", true},
		{"web.yaml.bak", true},
		{"web.yaml.orig", true},
		{"web.yaml.dpkg-old", true},
		{"web.yaml.dpkg-new", true},
		{"web.yaml.dpkg-dist", true},
		{"web.yaml.rpmnew", true},
		{"web.yaml.rpmsave", true},
		{"#web.yaml#", true},
		{"#x.yaml", true},
		{"web", true},
		{"web.txt", true},
		{"yaml", true},
		{"README", true},
	}
	for _, tt := range tests {
		if got := ignored(tt.name); got != tt.want {
			t.Errorf("ignored(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLoadGoodFiles(t *testing.T) {
	s, dir := newSource(t)
	writeFile(t, dir, "c.yml", podYAML("db", "postgres"))
	writeFile(t, dir, "a.yaml", podYAML("web", "nginx"))
	writeFile(t, dir, "b.json", podJSON("prod", "api"))
	// Never read: leftovers, and a file that would conflict if it were.
	writeFile(t, dir, "a.yaml~", podYAML("web", "old"))
	writeFile(t, dir, ".a.yaml.swp", "\x00garbage")
	writeFile(t, dir, "#a.yaml#", "garbage")
	writeFile(t, dir, "notes.txt", "garbage")

	snap := s.Load()
	checkSnap(t, "load", snap,
		[]string{"default/web<-a.yaml nginx", "prod/api<-b.json busybox", "default/db<-c.yml postgres"}, nil)
	for _, p := range snap.Pods {
		if p.UID == "" || p.Annotations[manifest.AnnotationConfigHash] != string(p.UID) {
			t.Errorf("pod %s: uid %q hash annotation %q, want equal and set", p.Name, p.UID, p.Annotations[manifest.AnnotationConfigHash])
		}
	}

	// A second Load of the same directory gives the same pods (same objects: nothing re-parsed).
	again := s.Load()
	if len(again.Pods) != len(snap.Pods) {
		t.Fatalf("second load: got %d pods, want %d", len(again.Pods), len(snap.Pods))
	}
	for i := range snap.Pods {
		if again.Pods[i] != snap.Pods[i] {
			t.Errorf("second load: pod %s was parsed again", snap.Pods[i].Name)
		}
	}
}

func TestLoadMissingDir(t *testing.T) {
	s := New(Config{Dir: filepath.Join(t.TempDir(), "none")})
	checkSnap(t, "missing dir", s.Load(), nil, nil)
}

func TestLoadBroken(t *testing.T) {
	tests := []struct {
		name, file, content string
		wantNS, wantName    string
		wantMessage         string
	}{
		{"invalid pod, name readable", "a.yaml",
			"apiVersion: v1\nkind: Pod\nmetadata:\n  name: nocontainers\n  namespace: prod\nspec:\n  containers: []\n",
			"prod", "nocontainers", "spec.containers: Required value"},
		{"yaml syntax error, name from lines", "a.yaml",
			"apiVersion: v1\nkind: Pod\nmetadata:\n  name: broken\nspec:\n  containers: [\n",
			"", "broken", ""},
		{"no name at all", "junk.yaml", "just: [some\n", "", "junk.yaml", ""},
		{"not a pod", "deploy.yaml", "apiVersion: apps/v1\nkind: Deployment\n", "", "deploy.yaml", "Deployment"},
		{"binary", "bin.json", "\x00\x01\x02\xff", "", "bin.json", ""},
		{"too large", "big.yaml", podYAML("big", "x") + "#" + strings.Repeat("x", manifest.MaxFileSize),
			"", "big.yaml", "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newSource(t)
			path := writeFile(t, dir, tt.file, tt.content)
			writeFile(t, dir, "z.yaml", podYAML("other", "busybox"))
			snap := s.Load()
			checkSnap(t, "load", snap, []string{"default/other<-z.yaml busybox"},
				[]string{fmt.Sprintf("%s: %s/%s %s running=false", tt.file, tt.wantNS, tt.wantName, manifest.ReasonInvalid)})
			if len(snap.Problems) != 1 {
				return
			}
			pr := snap.Problems[0]
			if pr.Path != path {
				t.Errorf("problem path: got %q, want %q", pr.Path, path)
			}
			if pr.Message == "" || !strings.Contains(pr.Message, tt.wantMessage) {
				t.Errorf("problem message: got %q, want one containing %q", pr.Message, tt.wantMessage)
			}
		})
	}
}

func TestLoadNameConflict(t *testing.T) {
	s, dir := newSource(t)
	writeFile(t, dir, "b.yaml", podYAML("web", "second"))
	writeFile(t, dir, "a.yaml", podYAML("web", "first"))
	writeFile(t, dir, "c.yaml", podJSON("other", "web")) // another namespace: no conflict
	snap := s.Load()
	checkSnap(t, "two files", snap,
		[]string{"default/web<-a.yaml first", "other/web<-c.yaml busybox"},
		[]string{"b.yaml: default/web NameConflict running=false"})
	if len(snap.Problems) == 1 && !strings.Contains(snap.Problems[0].Message, filepath.Join(dir, "a.yaml")) {
		t.Errorf("conflict message %q does not name the owner a.yaml", snap.Problems[0].Message)
	}

	// A new file sorting earlier does not take the pod over from its owner.
	writeFile(t, dir, "0.yaml", podYAML("web", "zeroth"))
	checkSnap(t, "earlier file added", s.Load(),
		[]string{"default/web<-a.yaml first", "other/web<-c.yaml busybox"},
		[]string{"0.yaml: default/web NameConflict running=false", "b.yaml: default/web NameConflict running=false"})

	// The owner turning bad keeps the pod: the others still conflict.
	writeFile(t, dir, "a.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers: []\n")
	checkSnap(t, "owner turned bad", s.Load(),
		[]string{"default/web<-a.yaml first", "other/web<-c.yaml busybox"},
		[]string{
			"0.yaml: default/web NameConflict running=false",
			"a.yaml: default/web InvalidManifest running=true",
			"b.yaml: default/web NameConflict running=false",
		})

	// The owner gone, the first remaining file in lexical order takes over.
	if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	checkSnap(t, "owner removed", s.Load(),
		[]string{"default/web<-0.yaml zeroth", "other/web<-c.yaml busybox"},
		[]string{"b.yaml: default/web NameConflict running=false"})
}

func TestLoadGoodTurnedBadThenFixed(t *testing.T) {
	s, dir := newSource(t)
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	writeFile(t, dir, "z.yaml", podYAML("other", "busybox"))
	first := s.Load()
	checkSnap(t, "good", first, []string{"default/web<-web.yaml nginx:1", "default/other<-z.yaml busybox"}, nil)

	writeFile(t, dir, "web.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n")
	bad := s.Load()
	checkSnap(t, "turned bad", bad,
		[]string{"default/web<-web.yaml nginx:1", "default/other<-z.yaml busybox"},
		[]string{"web.yaml: default/web InvalidManifest running=true"})
	if len(bad.Pods) > 0 && len(first.Pods) > 0 && bad.Pods[0].UID != first.Pods[0].UID {
		t.Errorf("last good pod: uid %s, want the old %s", bad.Pods[0].UID, first.Pods[0].UID)
	}
	if len(bad.Problems) == 1 {
		msg := bad.Problems[0].Message
		if !strings.Contains(msg, "spec.containers[0].image: Required value") || !strings.Contains(msg, "last good version") {
			t.Errorf("problem message %q, want the field error and a note that the last good version runs", msg)
		}
	}

	// Broken in another way: still the last good version.
	writeFile(t, dir, "web.yaml", "{not yaml")
	checkSnap(t, "still bad", s.Load(),
		[]string{"default/web<-web.yaml nginx:1", "default/other<-z.yaml busybox"},
		[]string{"web.yaml: default/web InvalidManifest running=true"})

	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:2"))
	fixed := s.Load()
	checkSnap(t, "fixed", fixed, []string{"default/web<-web.yaml nginx:2", "default/other<-z.yaml busybox"}, nil)
	if len(fixed.Pods) > 0 && fixed.Pods[0].UID == first.Pods[0].UID {
		t.Errorf("fixed pod kept the uid %s of the old content", first.Pods[0].UID)
	}
}

func TestLoadFileKinds(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []string // problems
	}{
		{"symlink loop", func(t *testing.T, dir string) {
			mustSymlink(t, "b.yaml", filepath.Join(dir, "a.yaml"))
			mustSymlink(t, "a.yaml", filepath.Join(dir, "b.yaml"))
		}, []string{
			"a.yaml: /a.yaml UnreadableManifest running=false",
			"b.yaml: /b.yaml UnreadableManifest running=false",
		}},
		{"dangling symlink", func(t *testing.T, dir string) {
			mustSymlink(t, filepath.Join(dir, "nowhere.yaml"), filepath.Join(dir, "dangling.yaml"))
		}, []string{"dangling.yaml: /dangling.yaml UnreadableManifest running=false"}},
		{"directory", func(t *testing.T, dir string) {
			if err := os.Mkdir(filepath.Join(dir, "d.yaml"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(dir, "d.yaml"), "inner.yaml", podYAML("inner", "x"))
		}, nil},
		{"symlink to a good file", func(t *testing.T, dir string) {
			other := t.TempDir()
			mustSymlink(t, writeFile(t, other, "real.yaml", podYAML("linked", "x")), filepath.Join(dir, "l.yaml"))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, dir := newSource(t)
			writeFile(t, dir, "m.yaml", podYAML("good", "busybox"))
			tt.setup(t, dir)
			snap := s.Load()
			var gotPods []string
			for _, p := range snap.Pods {
				gotPods = append(gotPods, p.Name)
			}
			if !slices.Contains(gotPods, "good") {
				t.Errorf("pods %q: the good file's pod is missing", gotPods)
			}
			// Problems of files without a readable pod name carry namespace "" and the file name,
			// so "a.yaml: /a.yaml" below.
			got := problems(snap)
			want := tt.want
			if !slices.Equal(got, want) {
				t.Errorf("problems\n got %q\nwant %q", got, want)
			}
		})
	}
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRemovedFile(t *testing.T) {
	s, dir := newSource(t)
	a := writeFile(t, dir, "a.yaml", podYAML("a", "x"))
	b := writeFile(t, dir, "b.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: b\n")
	writeFile(t, dir, "c.yaml", podYAML("c", "x"))
	checkSnap(t, "all", s.Load(),
		[]string{"default/a<-a.yaml x", "default/c<-c.yaml x"},
		[]string{"b.yaml: /b InvalidManifest running=false"})
	for _, p := range []string{a, b} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	checkSnap(t, "removed", s.Load(), []string{"default/c<-c.yaml x"}, nil)
}

// TestLoadUnchangedNotReparsed rewrites a file in place with other content of the same size and
// puts its mtime back: Load must not read it again. Touching the mtime makes it read again.
func TestLoadUnchangedNotReparsed(t *testing.T) {
	s, dir := newSource(t)
	good := podYAML("web", "nginx:1")
	p := writeFile(t, dir, "web.yaml", good)
	checkSnap(t, "first", s.Load(), []string{"default/web<-web.yaml nginx:1"}, nil)
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}

	same := podYAML("web", "nginx:9") // same length, other content
	if len(same) != len(good) {
		t.Fatalf("test bug: %d != %d bytes", len(same), len(good))
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(same); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Chtimes(p, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	checkSnap(t, "same size and mtime", s.Load(), []string{"default/web<-web.yaml nginx:1"}, nil)

	later := st.ModTime().Add(time.Second)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	checkSnap(t, "mtime changed", s.Load(), []string{"default/web<-web.yaml nginx:9"}, nil)
}

func TestLoadPermissions(t *testing.T) {
	if !isRoot {
		t.Skip("needs root to chown")
	}
	s, dir := newSource(t)
	p := writeFile(t, dir, "web.yaml", podYAML("web", "x"))
	writeFile(t, dir, "z.yaml", podYAML("z", "x"))
	checkSnap(t, "secure", s.Load(), []string{"default/web<-web.yaml x", "default/z<-z.yaml x"}, nil)

	steps := []struct {
		name         string
		change       func() error
		wantPods     []string
		wantProblems []string
	}{
		{"group-writable file", func() error { return os.Chmod(p, 0o664) },
			[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"},
			[]string{"web.yaml: default/web InsecureManifestPermissions running=true"}},
		{"mode fixed", func() error { return os.Chmod(p, 0o644) },
			[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"}, nil},
		{"file owned by a user", func() error { return os.Chown(p, 1000, 1000) },
			[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"},
			[]string{"web.yaml: default/web InsecureManifestPermissions running=true"}},
		{"owner fixed", func() error { return os.Chown(p, 0, 0) },
			[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"}, nil},
		{"world-writable directory", func() error { return os.Chmod(dir, 0o777) },
			[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"},
			[]string{
				"web.yaml: default/web InsecureManifestPermissions running=true",
				"z.yaml: default/z InsecureManifestPermissions running=true",
			}},
		{"directory fixed", func() error { return os.Chmod(dir, 0o755) },
			[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"}, nil},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatal(err)
		}
		checkSnap(t, st.name, s.Load(), st.wantPods, st.wantProblems)
	}

	// A new file that is insecure from the start contributes no pod.
	n := writeFile(t, dir, "new.yaml", podYAML("new", "x"))
	if err := os.Chmod(n, 0o666); err != nil {
		t.Fatal(err)
	}
	checkSnap(t, "new insecure file", s.Load(),
		[]string{"default/web<-web.yaml x", "default/z<-z.yaml x"},
		[]string{"new.yaml: /new.yaml InsecureManifestPermissions running=false"})

	// --insecure-manifest-perms accepts it.
	s2 := New(Config{Dir: dir, InsecurePerms: true})
	checkSnap(t, "insecure allowed", s2.Load(),
		[]string{"default/new<-new.yaml x", "default/web<-web.yaml x", "default/z<-z.yaml x"}, nil)
}

// recorder collects the snapshots Run sends.
type recorder struct {
	mu    sync.Mutex
	snaps []Snapshot
	// When set, the next add records its snapshot, closes held and waits for hold to close:
	// Run is then stuck in its out callback, reading no events.
	hold, held chan struct{}
}

func (r *recorder) add(s Snapshot) {
	r.mu.Lock()
	r.snaps = append(r.snaps, s)
	hold, held := r.hold, r.held
	r.hold, r.held = nil, nil
	r.mu.Unlock()
	if hold != nil {
		close(held)
		<-hold
	}
}

// holdNext makes the next add block until release is called; held is closed once it blocks.
func (r *recorder) holdNext() (held <-chan struct{}, release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.hold, r.held = make(chan struct{}), make(chan struct{})
	hold := r.hold
	var once sync.Once
	return r.held, func() { once.Do(func() { close(hold) }) }
}

// all returns the snapshots received so far.
func (r *recorder) all() []Snapshot {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.snaps)
}

// waitCount waits until at least n snapshots were received.
func (r *recorder) waitCount(t *testing.T, n int) {
	t.Helper()
	r.waitFor(t, fmt.Sprintf("%d snapshots in all", n), func(Snapshot) bool { return len(r.snaps) >= n })
}

// waitFor polls the received snapshots until one satisfies ok, or fails after a deadline.
func (r *recorder) waitFor(t *testing.T, what string, ok func(Snapshot) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		n := len(r.snaps)
		found := false
		for _, s := range r.snaps {
			if ok(s) {
				found = true
				break
			}
		}
		var last Snapshot
		if n > 0 {
			last = r.snaps[n-1]
		}
		r.mu.Unlock()
		if found {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no snapshot with %s after 10s (%d snapshots, last pods %q problems %q)", what, n, pods(last), problems(last))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasPods(names ...string) func(Snapshot) bool {
	return func(s Snapshot) bool {
		var got []string
		for _, p := range s.Pods {
			got = append(got, p.Name)
		}
		return slices.Equal(got, names)
	}
}

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name   string
		suffix string // added to the directory's path in Config.Dir
	}{
		{"clean path", ""},
		{"trailing slash", "/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := newSource(t)
			// Resync never fires: only inotify events can make new snapshots.
			s := New(Config{Dir: dir + tt.suffix, Resync: time.Hour, InsecurePerms: !isRoot})
			writeFile(t, dir, "a.yaml", podYAML("a", "x"))

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var r recorder
			done := make(chan error, 1)
			go func() { done <- s.Run(ctx, r.add) }()

			r.waitFor(t, "the initial pod a", hasPods("a"))

			// Written elsewhere and moved in, as the README asks.
			tmp := writeFile(t, dir, ".b.yaml.tmp", podYAML("b", "x"))
			if err := os.Rename(tmp, filepath.Join(dir, "b.yaml")); err != nil {
				t.Fatal(err)
			}
			r.waitFor(t, "the new pod b", hasPods("a", "b"))

			// Written in place.
			writeFile(t, dir, "c.yaml", podYAML("c", "x"))
			r.waitFor(t, "the new pod c", hasPods("a", "b", "c"))

			if err := os.Remove(filepath.Join(dir, "a.yaml")); err != nil {
				t.Fatal(err)
			}
			r.waitFor(t, "pod a removed", hasPods("b", "c"))

			// The directory moved away: nothing is desired any more.
			if err := os.Rename(dir, dir+".old"); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir + ".old") })
			r.waitFor(t, "no pods after the directory moved away", hasPods())

			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run after cancel: got %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return after ctx was cancelled")
			}
		})
	}
}

// TestRunCancelled: Run sends its first snapshot and returns for a context already cancelled.
func TestRunCancelled(t *testing.T) {
	s, dir := newSource(t)
	writeFile(t, dir, "a.yaml", podYAML("a", "x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var r recorder
	if err := s.Run(ctx, r.add); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if len(r.snaps) != 1 || !hasPods("a")(r.snaps[0]) {
		t.Fatalf("Run with a cancelled context sent %d snapshots, want 1 with pod a", len(r.snaps))
	}
}

// Admit refuses pods the way an invalid manifest is refused: a new file gives a problem under
// the pod's own name and the refusal's reason, a changed file keeps its last good version.
func TestLoadAdmit(t *testing.T) {
	s, dir := newSource(t)
	s.cfg.Admit = func(p *corev1.Pod) error {
		if strings.HasPrefix(p.Spec.Containers[0].Image, "evil") {
			return &manifest.Error{Reason: "PolicyViolation", Message: "spec.containers[0].image: Forbidden: no evil"}
		}
		return nil
	}
	writeFile(t, dir, "web.yaml", podYAML("web", "nginx:1"))
	writeFile(t, dir, "x.yaml", podYAML("x", "evil:1"))
	checkSnap(t, "new refused", s.Load(), []string{"default/web<-web.yaml nginx:1"},
		[]string{"x.yaml: default/x PolicyViolation running=false"})

	writeFile(t, dir, "web.yaml", podYAML("web", "evil:2"))
	snap := s.Load()
	checkSnap(t, "changed refused", snap, []string{"default/web<-web.yaml nginx:1"},
		[]string{"web.yaml: default/web PolicyViolation running=true", "x.yaml: default/x PolicyViolation running=false"})
	if len(snap.Problems) > 0 && !strings.Contains(snap.Problems[0].Message, "no evil") {
		t.Errorf("message %q lacks the refusal", snap.Problems[0].Message)
	}
}

// twoContainers is a pod whose prefix up to its second container is a valid pod too: a reader
// that reads it half written sees one container.
func twoContainers(name, image string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata:\n  name: %s\nspec:\n  containers:\n  - name: c\n    image: %s\n  - name: d\n    image: %s\n", name, image, image)
}

// firstPart is the prefix of twoContainers that is itself a valid one-container pod.
func firstPart(t *testing.T, content string) (string, string) {
	t.Helper()
	i := strings.Index(content, "  - name: d\n")
	if _, err := manifest.Load("x.yaml", []byte(content[:i])); i < 0 || err != nil {
		t.Fatalf("test bug: the first part must be a valid pod (%v)", err)
	}
	return content[:i], content[i:]
}

// images summarizes a snapshot's pods as "name<-file image,image...".
func images(s Snapshot) []string {
	var out []string
	for _, p := range s.Pods {
		var imgs []string
		for _, c := range p.Spec.Containers {
			imgs = append(imgs, c.Image)
		}
		out = append(out, fmt.Sprintf("%s<-%s %s", p.Name, filepath.Base(p.Annotations[manifest.AnnotationManifest]), strings.Join(imgs, ",")))
	}
	return out
}

func hasImages(want ...string) func(Snapshot) bool {
	return func(s Snapshot) bool { return slices.Equal(images(s), want) }
}

// newDir returns a new manifest directory that passes the permission check.
func newDir(t *testing.T) string {
	t.Helper()
	_, dir := newSource(t)
	return dir
}

// run starts Run on cfg (its Dir already set) and stops it when the test ends.
func run(t *testing.T, cfg Config) *recorder {
	t.Helper()
	r, _ := runHooked(t, cfg)
	return r
}

// hooks run a change once, at the next load's hook.
type hooks struct{ beforeList, beforeRead atomic.Pointer[func()] }

func once(p *atomic.Pointer[func()]) func() {
	return func() {
		if f := p.Swap(nil); f != nil {
			(*f)()
		}
	}
}

// runHooked is run with hooks into the Source's loads.
func runHooked(t *testing.T, cfg Config) (*recorder, *hooks) {
	t.Helper()
	cfg.InsecurePerms = !isRoot
	s := New(cfg)
	h := &hooks{}
	s.beforeList, s.beforeRead = once(&h.beforeList), once(&h.beforeRead)
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, r.add) }()
	t.Cleanup(func() {
		cancel()
		r.mu.Lock()
		if r.hold != nil {
			close(r.hold)
			r.hold, r.held = nil, nil
		}
		r.mu.Unlock()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after ctx was cancelled")
		}
	})
	return r, h
}

// renameIn writes a file beside the directory's manifests under an ignored name and renames
// it into place, as the README asks.
func renameIn(t *testing.T, dir, name, content string) {
	t.Helper()
	tmp := writeFile(t, dir, "."+name+".tmp", content)
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// openWriter opens a file the way `cat > file` does (created or truncated), and writes part.
func openWriter(t *testing.T, path, part string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.WriteString(part); err != nil {
		t.Fatal(err)
	}
	return f
}

func finish(t *testing.T, f *os.File, rest string) {
	t.Helper()
	if _, err := f.WriteString(rest); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// A complete file is read at once: the quiet time is an hour and nothing re-lists, so only the
// file's own event can make these snapshots.
func TestRunCompleteFileAtOnce(t *testing.T) {
	dir := newDir(t)
	writeFile(t, dir, "a.yaml", podYAML("a", "x"))
	r := run(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
	r.waitFor(t, "the initial pod a", hasPods("a"))

	renameIn(t, dir, "b.yaml", podYAML("b", "x"))
	r.waitFor(t, "pod b renamed in", hasPods("a", "b"))

	writeFile(t, dir, "c.yaml", podYAML("c", "x")) // created, written, closed
	r.waitFor(t, "pod c written in place", hasPods("a", "b", "c"))

	mustSymlink(t, writeFile(t, t.TempDir(), "real.yaml", podYAML("d", "x")), filepath.Join(dir, "d.yaml"))
	r.waitFor(t, "pod d symlinked", hasPods("a", "b", "c", "d"))

	writeFile(t, dir, "a.yaml", podYAML("a", "x2")) // truncated, written, closed
	r.waitFor(t, "pod a rewritten", hasImages("a<-a.yaml x2", "b<-b.yaml x", "c<-c.yaml x", "d<-d.yaml x"))
}

// A file written in several chunks is never read before its writer closes it: not when another
// file is renamed in meanwhile, and not by the periodic re-lists.
func TestRunNeverHalfWritten(t *testing.T) {
	dir := newDir(t)
	writeFile(t, dir, "a.yaml", twoContainers("a", "v1"))
	// No fallback read within the test; a re-list every 10 ms gives many chances to go wrong.
	r := run(t, Config{Dir: dir, Debounce: time.Hour, Resync: 10 * time.Millisecond})
	r.waitFor(t, "a v1", hasImages("a<-a.yaml v1,v1"))

	aFirst, aRest := firstPart(t, twoContainers("a", "v2"))
	cFirst, cRest := firstPart(t, twoContainers("c", "v2"))
	fa := openWriter(t, filepath.Join(dir, "a.yaml"), aFirst) // rewritten in place
	fc := openWriter(t, filepath.Join(dir, "c.yaml"), cFirst) // new
	renameIn(t, dir, "b.yaml", podYAML("b", "x"))
	r.waitFor(t, "b beside the old a", hasImages("a<-a.yaml v1,v1", "b<-b.yaml x"))
	r.waitCount(t, len(r.all())+5) // five more re-lists while a and c are half written

	finish(t, fa, aRest)
	finish(t, fc, cRest)
	r.waitFor(t, "a and c complete", hasImages("a<-a.yaml v2,v2", "b<-b.yaml x", "c<-c.yaml v2,v2"))

	for i, s := range r.all() {
		for _, p := range images(s) {
			if !slices.Contains([]string{"a<-a.yaml v1,v1", "a<-a.yaml v2,v2", "b<-b.yaml x", "c<-c.yaml v2,v2"}, p) {
				t.Errorf("snapshot %d: pod %s read from a half-written file", i, p)
			}
		}
		if len(s.Problems) > 0 {
			t.Errorf("snapshot %d: problems %q", i, problems(s))
		}
	}
}

// Editors saving an unchanged file never remove its pod, not even when another file is
// renamed in while the file is away or half written: the pod keeps its UID in every snapshot.
func TestRunEditorSaveKeepsPod(t *testing.T) {
	for _, tt := range []struct {
		name string
		// save saves a.yaml, calling other once while a.yaml is away or half written and
		// again while it is being written.
		save func(t *testing.T, dir, content string, other func(string))
	}{
		{"rename away and write anew (vim)", func(t *testing.T, dir, content string, other func(string)) {
			a := filepath.Join(dir, "a.yaml")
			writeFile(t, dir, ".a.yaml.swp", "swap")
			writeFile(t, dir, "4913", "") // vim's probe whether a new file gets the same owner
			mustRemove(t, filepath.Join(dir, "4913"))
			mustRename(t, a, a+"~")
			other("b.yaml")
			first, rest := content[:len(content)/2], content[len(content)/2:]
			f := openWriter(t, a, first)
			other("c.yaml")
			finish(t, f, rest)
			if err := os.Chmod(a, 0o644); err != nil { // vim sets the old mode on the new file
				t.Fatal(err)
			}
			mustRemove(t, a+"~")
			mustRemove(t, filepath.Join(dir, ".a.yaml.swp"))
		}},
		{"backup copy and write in place", func(t *testing.T, dir, content string, other func(string)) {
			a := filepath.Join(dir, "a.yaml")
			writeFile(t, dir, ".a.yaml.swp", "swap")
			writeFile(t, dir, "a.yaml~", content)
			other("b.yaml")
			first, rest := content[:len(content)/2], content[len(content)/2:]
			f := openWriter(t, a, first)
			other("c.yaml")
			finish(t, f, rest)
			mustRemove(t, a+"~")
			mustRemove(t, filepath.Join(dir, ".a.yaml.swp"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := newDir(t)
			content := twoContainers("a", "v1")
			writeFile(t, dir, "a.yaml", content)
			r := run(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
			r.waitFor(t, "the initial pod a", hasPods("a"))
			uid := r.all()[0].Pods[0].UID

			var others []string
			tt.save(t, dir, content, func(name string) {
				renameIn(t, dir, name, podYAML(strings.TrimSuffix(name, ".yaml"), "x"))
				others = append(others, strings.TrimSuffix(name, ".yaml"))
				r.waitFor(t, "pod "+name+" renamed in", hasPods(append([]string{"a"}, others...)...))
			})
			// Renamed in after the save: its snapshot comes after every event of the save.
			renameIn(t, dir, "d.yaml", podYAML("d", "x"))
			r.waitFor(t, "pods after the save", hasImages("a<-a.yaml v1,v1", "b<-b.yaml x", "c<-c.yaml x", "d<-d.yaml x"))

			for i, s := range r.all() {
				if len(s.Pods) == 0 || s.Pods[0].Name != "a" || s.Pods[0].UID != uid {
					t.Errorf("snapshot %d: pods %q, want a (uid %s) first", i, images(s), uid)
				}
				if len(s.Problems) > 0 {
					t.Errorf("snapshot %d: problems %q", i, problems(s))
				}
			}
		})
	}
}

// A file renamed away loses its pod after the quiet time; an unlinked file (rm) at once; a file
// whose writer keeps it open is read after the quiet time.
func TestRunQuietTime(t *testing.T) {
	t.Run("rename away held while another file is read", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		writeFile(t, dir, "b.yaml", podYAML("b", "x"))
		r := run(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
		r.waitFor(t, "a and b", hasPods("a", "b"))
		mustRename(t, filepath.Join(dir, "a.yaml"), filepath.Join(dir, "a.yaml~"))
		mustRename(t, filepath.Join(dir, "b.yaml"), filepath.Join(dir, "b.yaml.bak"))
		renameIn(t, dir, "c.yaml", podYAML("c", "x"))
		r.waitFor(t, "c", func(s Snapshot) bool {
			return slices.ContainsFunc(s.Pods, func(p *corev1.Pod) bool { return p.Name == "c" })
		})
		for i, s := range r.all() {
			if !hasPods("a", "b")(s) && !hasPods("a", "b", "c")(s) {
				t.Errorf("snapshot %d: pods %q: a removal took effect before the quiet time", i, pods(s))
			}
		}
	})
	t.Run("rm at once", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		writeFile(t, dir, "b.yaml", podYAML("b", "x"))
		r := run(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
		r.waitFor(t, "a and b", hasPods("a", "b"))
		mustRemove(t, filepath.Join(dir, "a.yaml"))
		r.waitFor(t, "only b, without waiting the quiet time", hasPods("b"))
	})
	t.Run("removal after the quiet time", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		writeFile(t, dir, "b.yaml", podYAML("b", "x"))
		r := run(t, Config{Dir: dir, Resync: time.Hour})
		r.waitFor(t, "a and b", hasPods("a", "b"))
		mustRemove(t, filepath.Join(dir, "a.yaml"))
		mustRename(t, filepath.Join(dir, "b.yaml"), filepath.Join(dir, "b.yaml.bak"))
		renameIn(t, dir, "c.yaml", podYAML("c", "x"))
		r.waitFor(t, "only c", hasPods("c"))
	})
	t.Run("writer keeps the file open", func(t *testing.T) {
		dir := newDir(t)
		r := run(t, Config{Dir: dir, Debounce: 50 * time.Millisecond, Resync: time.Hour})
		r.waitFor(t, "no pods", hasPods())
		openWriter(t, filepath.Join(dir, "a.yaml"), podYAML("a", "x")) // closed when the test ends
		r.waitFor(t, "a, still open", hasPods("a"))
	})
}

// Events lost in an overflow of the kernel's queue are made up for by reading everything again.
func TestRunOverflow(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events")
	if err != nil {
		t.Skip(err)
	}
	var max int
	if _, err := fmt.Sscan(string(b), &max); err != nil || max > 1<<20 {
		t.Skipf("max_queued_events %q: too many events to overflow in a test", b)
	}
	dir := newDir(t)
	writeFile(t, dir, "a.yaml", podYAML("a", "x"))
	var logs syncBuffer
	r := run(t, Config{Dir: dir, Resync: time.Hour, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	r.waitFor(t, "a", hasPods("a"))

	// Run stuck in its callback reads no more than one buffer of events.
	held, release := r.holdNext()
	renameIn(t, dir, "b.yaml", podYAML("b", "x"))
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot after b was renamed in")
	}
	// Events that inotify does not merge (it merges an event only with the same one just
	// before it), more than the kernel's queue and the reader's buffer hold.
	j0, err := os.Create(filepath.Join(dir, ".junk0"))
	if err != nil {
		t.Fatal(err)
	}
	defer j0.Close()
	j1, err := os.Create(filepath.Join(dir, ".junk1"))
	if err != nil {
		t.Fatal(err)
	}
	defer j1.Close()
	for i := 0; i < max+(64<<10)/unix.SizeofInotifyEvent; i++ {
		if _, err := []*os.File{j0, j1}[i%2].Write([]byte{'x'}); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "c.yaml", podYAML("c", "x")) // its events are lost
	release()
	r.waitFor(t, "c, from reading everything again", hasPods("a", "b", "c"))
	if !strings.Contains(logs.String(), "overflowed") {
		t.Errorf("no overflow logged:\n%s", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// The directory removed: its pods go. Put back: a re-list watches it again, so a file written
// in it is not read half written.
func TestRunDirectoryRemovedAndRecreated(t *testing.T) {
	t.Run("removed", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		r := run(t, Config{Dir: dir, Resync: time.Hour})
		r.waitFor(t, "a", hasPods("a"))
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		r.waitFor(t, "no pods after the directory was removed", hasPods())
	})
	t.Run("moved away and put back", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		// Only the re-lists notice a directory put back.
		r := run(t, Config{Dir: dir, Debounce: time.Hour, Resync: 20 * time.Millisecond})
		r.waitFor(t, "a", hasPods("a"))
		mustRename(t, dir, dir+".old")
		t.Cleanup(func() { os.RemoveAll(dir + ".old") })
		r.waitFor(t, "no pods after the directory moved away", hasPods())

		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "b.yaml", podYAML("b", "x"))
		r.waitFor(t, "b in the directory put back", hasPods("b"))

		first, rest := firstPart(t, twoContainers("c", "v2"))
		f := openWriter(t, filepath.Join(dir, "c.yaml"), first)
		r.waitCount(t, len(r.all())+5) // re-lists while c is half written
		finish(t, f, rest)
		r.waitFor(t, "c complete", hasImages("b<-b.yaml x", "c<-c.yaml v2,v2"))
		for i, s := range r.all() {
			for _, p := range images(s) {
				if strings.HasPrefix(p, "c<-") && p != "c<-c.yaml v2,v2" {
					t.Errorf("snapshot %d: %s read half written: the directory put back is not watched", i, p)
				}
			}
		}
	})
}

func TestParseEvents(t *testing.T) {
	var b []byte
	rec := func(wd int32, mask uint32, name string, pad int) {
		h := make([]byte, unix.SizeofInotifyEvent)
		binary.NativeEndian.PutUint32(h[0:], uint32(wd))
		binary.NativeEndian.PutUint32(h[4:], mask)
		n := 0
		if name != "" {
			n = len(name) + pad
		}
		binary.NativeEndian.PutUint32(h[12:], uint32(n))
		b = append(b, h...)
		if name != "" {
			b = append(b, name...)
			b = append(b, make([]byte, pad)...)
		}
	}
	rec(1, unix.IN_MOVED_TO, "a.yaml", 10)
	rec(-1, unix.IN_Q_OVERFLOW, "", 0)
	rec(1, unix.IN_DELETE_SELF, "", 0)
	rec(2, unix.IN_CLOSE_WRITE, "0123456789abcde", 1)
	got := parseEvents(b)
	want := []event{
		{1, unix.IN_MOVED_TO, "a.yaml"},
		{-1, unix.IN_Q_OVERFLOW, ""},
		{1, unix.IN_DELETE_SELF, ""},
		{2, unix.IN_CLOSE_WRITE, "0123456789abcde"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("parseEvents:\n got %+v\nwant %+v", got, want)
	}
}

// Changes made while a load is under way, at its most unlucky moments, are seen by it: the
// events queued before the listing and while the files were read are looked at before the
// result is used.
func TestRunChangesDuringLoad(t *testing.T) {
	t.Run("written while read", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", twoContainers("a", "v1"))
		r, h := runHooked(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
		r.waitFor(t, "a v1", hasImages("a<-a.yaml v1,v1"))

		first, rest := firstPart(t, twoContainers("a", "v2"))
		var f *os.File
		write := func() { // listed and not in flux: about to be read, half written
			var err error
			if f, err = os.OpenFile(filepath.Join(dir, "a.yaml"), os.O_WRONLY|os.O_TRUNC, 0); err != nil {
				t.Error(err)
				return
			}
			if _, err := f.WriteString(first); err != nil {
				t.Error(err)
			}
		}
		h.beforeRead.Store(&write)
		renameIn(t, dir, "b.yaml", podYAML("b", "x"))
		r.waitFor(t, "b beside the old a", hasImages("a<-a.yaml v1,v1", "b<-b.yaml x"))
		if f == nil {
			t.Fatal("the hook did not run")
		}
		finish(t, f, rest)
		r.waitFor(t, "a complete", hasImages("a<-a.yaml v2,v2", "b<-b.yaml x"))
		for i, s := range r.all() {
			if !hasImages("a<-a.yaml v1,v1")(s) && !hasImages("a<-a.yaml v1,v1", "b<-b.yaml x")(s) &&
				!hasImages("a<-a.yaml v2,v2", "b<-b.yaml x")(s) {
				t.Errorf("snapshot %d: pods %q problems %q", i, images(s), problems(s))
			}
		}
	})
	t.Run("renamed away before the listing and back before the read", func(t *testing.T) {
		dir := newDir(t)
		a := writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		r, h := runHooked(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
		r.waitFor(t, "a", hasPods("a"))
		away := func() { // not listed, in flux by the first look at the events
			if err := os.Rename(a, a+"~"); err != nil {
				t.Error(err)
			}
		}
		back := func() { // complete again by the second look
			if err := os.Rename(a+"~", a); err != nil {
				t.Error(err)
			}
		}
		h.beforeList.Store(&away)
		h.beforeRead.Store(&back)
		renameIn(t, dir, "b.yaml", podYAML("b", "x"))
		r.waitFor(t, "a and b", hasPods("a", "b"))
		if h.beforeList.Load() != nil || h.beforeRead.Load() != nil {
			t.Fatal("the hooks did not run")
		}
		for i, s := range r.all() {
			if len(s.Pods) == 0 || s.Pods[0].Name != "a" {
				t.Errorf("snapshot %d: pods %q, want a first", i, pods(s))
			}
		}
	})
	t.Run("written before the listing and closed before the read", func(t *testing.T) {
		dir := newDir(t)
		writeFile(t, dir, "a.yaml", podYAML("a", "x"))
		r, h := runHooked(t, Config{Dir: dir, Debounce: time.Hour, Resync: time.Hour})
		r.waitFor(t, "a", hasPods("a"))
		var f *os.File
		write := func() { // listed, in flux by the first look at the events: not read
			var err error
			if f, err = os.Create(filepath.Join(dir, "c.yaml")); err != nil {
				t.Error(err)
				return
			}
			if _, err := f.WriteString(podYAML("c", "x")); err != nil {
				t.Error(err)
			}
		}
		closeIt := func() { // complete by the second look: to be read by another load
			if f != nil {
				f.Close()
			}
		}
		h.beforeList.Store(&write)
		h.beforeRead.Store(&closeIt)
		renameIn(t, dir, "b.yaml", podYAML("b", "x"))
		r.waitFor(t, "a, b and c", hasPods("a", "b", "c"))
	})
}
