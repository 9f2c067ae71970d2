package volume

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// hostTree is an allowed directory with links of every kind in it, and a directory outside it
// that holds a file and must stay as it is.
type hostTree struct {
	allowed, outside string
}

func newHostTree(t *testing.T) hostTree {
	t.Helper()
	root := t.TempDir()
	h := hostTree{allowed: filepath.Join(root, "allowed"), outside: filepath.Join(root, "outside")}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := func(p string) string { return filepath.Join(h.allowed, p) }
	must(os.MkdirAll(a("dir/sub"), 0o755))
	must(os.WriteFile(a("dir/f"), []byte("inside"), 0o644))
	must(os.MkdirAll(h.outside, 0o755))
	must(os.WriteFile(filepath.Join(h.outside, "secret"), []byte("host"), 0o600))
	links := map[string]string{
		"in-rel":        "dir",
		"in-abs":        a("dir"),
		"in-dotdot":     "dir/sub/../../dir",
		"in-chain":      "in-rel",
		"dir/sub/up":    "../f",
		"dangling-in":   "dir/made-through-link",
		"out-abs":       "/",
		"out-rel":       "../outside",
		"out-up":        strings.Repeat("../", 20),
		"out-chain":     "in-rel/../out-rel",
		"out-abs-sib":   h.outside,
		"dangling-out":  filepath.Join(h.outside, "made"),
		"lookalike-out": h.allowed + "-not",
		"loop":          "loop",
	}
	for l, target := range links {
		must(os.Symlink(target, a(l)))
	}
	return h
}

// entries lists what is in dir, for a check that nothing was made there.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestOpenHostPath(t *testing.T) {
	h := newHostTree(t)
	a := func(p string) string { return filepath.Join(h.allowed, p) }
	cases := []struct {
		name    string
		path    string // below h.allowed
		mkdir   bool
		want    string // below h.allowed: what is opened; "" when it fails
		created []string
		escape  bool       // an *escapeError
		errno   unix.Errno // else the error
		content string     // of the file opened, when it is one
	}{
		{name: "allowed dir itself", path: "", want: ""},
		{name: "plain dir", path: "dir", want: "dir"},
		{name: "plain file", path: "dir/f", want: "dir/f", content: "inside"},
		{name: "relative link inside", path: "in-rel/f", want: "dir/f", content: "inside"},
		{name: "absolute link inside", path: "in-abs/f", want: "dir/f", content: "inside"},
		{name: "link with .. that stays", path: "in-dotdot", want: "dir"},
		{name: "link to a link", path: "in-chain/sub", want: "dir/sub"},
		{name: "link up one level", path: "dir/sub/up", want: "dir/f", content: "inside"},
		{name: "absolute link out", path: "out-abs", escape: true},
		{name: "absolute link out, below it", path: "out-abs/etc", escape: true},
		{name: "relative link out", path: "out-rel/secret", escape: true},
		{name: "dot-dots out", path: "out-up", escape: true},
		{name: "chain out through an inside link", path: "out-chain", escape: true},
		{name: "absolute link to a sibling", path: "out-abs-sib", escape: true},
		{name: "link to a lookalike prefix", path: "lookalike-out", escape: true},
		{name: "symlink loop", path: "loop", errno: unix.ELOOP},
		{name: "missing", path: "nope", errno: unix.ENOENT},
		{name: "below a file", path: "dir/f/x", errno: unix.ENOTDIR},
		{name: "missing dirs created", path: "new/deep", mkdir: true, want: "new/deep", created: []string{"new", "new/deep"}},
		{name: "existing dir with mkdir", path: "dir/sub", mkdir: true, want: "dir/sub"},
		{name: "dangling link inside, created where it points", path: "dangling-in/x", mkdir: true,
			want: "dir/made-through-link/x", created: []string{"dir/made-through-link", "dir/made-through-link/x"}},
		{name: "dangling link out, not created", path: "dangling-out", mkdir: true, escape: true},
		{name: "mkdir through a link out", path: "out-rel/newdir", mkdir: true, escape: true},
		{name: "mkdir through an absolute link out", path: "out-abs-sib/newdir/deeper", mkdir: true, escape: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o, err := openHostPath([]string{h.allowed}, a(c.path), c.mkdir, 0o755)
			if c.escape || c.errno != 0 {
				if err == nil {
					got, _ := fdPath(o.fd)
					o.close()
					t.Fatalf("opened %s, want an error", got)
				}
				var esc *escapeError
				if c.escape && !errors.As(err, &esc) {
					t.Fatalf("err = %v, want an escape", err)
				}
				if c.escape && (!forbidden(err) || !strings.Contains(err.Error(), "leaves "+h.allowed)) {
					t.Errorf("escape error %q does not say what it leaves", err)
				}
				if c.errno != 0 && !errors.Is(err, c.errno) {
					t.Fatalf("err = %v, want %v", err, c.errno)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer o.close()
			got, err := fdPath(o.fd)
			if err != nil {
				t.Fatal(err)
			}
			if want := a(c.want); got != want {
				t.Errorf("opened %s, want %s", got, want)
			}
			if !slices.Equal(o.created, c.created) {
				t.Errorf("created %q, want %q", o.created, c.created)
			}
			for _, d := range c.created {
				if m := perm(t, a(d)); m != 0o755 {
					t.Errorf("%s: mode %v, want 0755", d, m)
				}
			}
			if c.content != "" {
				b, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(o.fd))
				if err != nil || string(b) != c.content {
					t.Errorf("content %q, %v; want %q", b, err, c.content)
				}
			}
		})
	}
	if got := entries(t, h.outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside holds %q, want only its secret", got)
	}
	if _, err := os.Lstat(h.allowed + "-not"); !os.IsNotExist(err) {
		t.Errorf("lookalike directory made: %v", err)
	}
}

// TestOpenHostPathPolicy covers the choice of the allowed directory: the outermost that admits
// a path, so that an inner one a pod replaced by a link leads nowhere; a path no directory
// admits; the lexical check on whole components.
func TestOpenHostPathPolicy(t *testing.T) {
	h := newHostTree(t)
	inner := filepath.Join(h.allowed, "inner")
	if err := os.Symlink(h.outside, inner); err != nil { // a pod that may mount allowed put it there
		t.Fatal(err)
	}
	allowed := []string{inner, h.allowed}
	if p, ok := allowedPrefix(allowed, filepath.Join(inner, "x")); !ok || p != h.allowed {
		t.Errorf("allowedPrefix = %q, %v; want the outer %s", p, ok, h.allowed)
	}
	if _, err := openHostPath(allowed, filepath.Join(inner, "secret"), false, 0); !forbidden(err) {
		t.Errorf("through an inner allowed directory replaced by a link: err = %v, want an escape", err)
	}
	for _, p := range []string{h.outside, h.allowed + "-not", filepath.Dir(h.allowed), "/"} {
		_, err := openHostPath(allowed, p, true, 0o755)
		var na *notAllowedError
		if !errors.As(err, &na) || !strings.Contains(err.Error(), "is not under a directory this node's policy allows") {
			t.Errorf("%s: err = %v, want not allowed", p, err)
		}
	}
	if _, err := openHostPath([]string{}, h.allowed, false, 0); !strings.Contains(fmtErr(err), "(none)") {
		t.Errorf("empty allowedHostPaths: err = %v", err)
	}
	if got := entries(t, h.outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside holds %q", got)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// `..` in what is opened (a caller that did not clean the path) never goes above the allowed
// directory either.
func TestHostRootDotDot(t *testing.T) {
	h := newHostTree(t)
	r, err := openRoot(h.allowed)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for rel, want := range map[string]string{"dir/../dir/f": "dir/f", "dir/sub/../..": "", "..": "-", "dir/../../outside": "-"} {
		fd, _, err := r.open(rel, rel, false, 0)
		if want == "-" {
			var esc *escapeError
			if !errors.As(err, &esc) || !strings.Contains(err.Error(), "leaves "+h.allowed) {
				t.Errorf("%s: err = %v, want an escape", rel, err)
			}
			if err == nil {
				unix.Close(fd)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		got, _ := fdPath(fd)
		unix.Close(fd)
		if got != filepath.Join(h.allowed, want) {
			t.Errorf("%s: opened %s, want %s", rel, got, filepath.Join(h.allowed, want))
		}
	}
}

// A missing allowed directory is made with its parents (the way there is the host's own), and
// taken away again by undo with what was made below it.
func TestOpenHostPathUndo(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "srv", "data")
	o, err := openHostPath([]string{allowed}, filepath.Join(allowed, "a", "b"), true, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	o.close()
	if !slices.Equal(o.created, []string{"a", "a/b"}) || o.rootTop != filepath.Join(root, "srv") {
		t.Errorf("created %q, rootTop %q", o.created, o.rootTop)
	}
	o.undo()
	if got := entries(t, root); len(got) != 0 {
		t.Errorf("left after undo: %q", got)
	}
}

// Links on /proc are not followed, whatever they point to (RESOLVE_NO_MAGICLINKS).
func TestOpenHostPathProcLinks(t *testing.T) {
	for _, p := range []string{"/proc/self/root", "/proc/self/cwd", "/proc/self/root/etc"} {
		_, err := openHostPath([]string{"/proc/self"}, p, false, 0)
		if !forbidden(err) || !strings.Contains(fmtErr(err), "a /proc link") {
			t.Errorf("%s: err = %v, want a refused /proc link", p, err)
		}
	}
}
