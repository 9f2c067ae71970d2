package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The Go step of test/deps.sh (issue 24): on a machine without Go, `make deps` fetches the Go
// toolchain pinned in the script through the Go module proxy, refuses it unless its SHA-256 is
// the pinned one, and unpacks it into /usr/local/go. Every run here happens in a private mount
// namespace with a tmpfs over /usr/local/go and a PATH without any go, so the machine looks as
// a bare one does, and the host's own Go is checked to be untouched afterwards.
//
// The first run uses the script's own cache, /var/cache/minipod/go-toolchain: on a machine where
// it is empty (a fresh CI machine) that run downloads the 68 MiB zip through the real GOPROXY;
// later runs take the zip from the cache, checked against the same pin. MINIPOD_E2E_DEPS_DOWNLOAD=1
// makes that run download even when the cache is full. The other runs fetch through a proxy of
// the test's own on loopback (serving the real zip, a corrupted one, or nothing), so the download,
// the URL, the GOPROXY list and the checksum refusal are exercised on every run.

const (
	depsGoRelease = "go1.26.8"
	depsCache     = "/var/cache/minipod/go-toolchain" // test/deps.sh's default GO_TOOLCHAIN_CACHE
	// depsPath is a PATH with no go on it (checked by depsRun).
	depsPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

func TestDepsGoToolchain(t *testing.T) {
	script, err := os.ReadFile("../../test/deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Fatalf("test/deps.sh pins Go for linux amd64 and arm64 only, not %s", runtime.GOARCH)
	}
	version := "v0.0.1-" + depsGoRelease + ".linux-" + runtime.GOARCH
	zipPath := "/golang.org/toolchain/@v/" + version + ".zip"
	pin := ""
	if m := regexp.MustCompile(`\[` + runtime.GOARCH + `\]=([0-9a-f]{64})`).FindSubmatch(script); m != nil {
		pin = string(m[1])
	} else {
		t.Errorf("no SHA-256 pinned for %s in test/deps.sh", runtime.GOARCH)
	}

	hostBefore := depsTreeDigest(t, "/usr/local/go")
	defer func() {
		if after := depsTreeDigest(t, "/usr/local/go"); after != hostBefore {
			t.Errorf("the host's /usr/local/go changed: digest %s before, %s after", hostBefore, after)
		}
	}()

	// 1. A bare machine: `test/deps.sh go` installs Go in /usr/local/go, and both the Makefile
	// and a shell with /usr/local/go/bin on PATH (as .ci/run has) find it.
	t.Run("bare machine", func(t *testing.T) {
		repo := depsCopy(t, "")
		env := depsEnv()
		cache := depsCache
		if os.Getenv("MINIPOD_E2E_DEPS_DOWNLOAD") == "1" {
			cache = t.TempDir()
			env = append(env, "GO_TOOLCHAIN_CACHE="+cache)
		}
		if v := os.Getenv("GOPROXY"); v != "" {
			env = append(env, "GOPROXY="+v)
		}
		hello := filepath.Join(t.TempDir(), "hello.go")
		depsWriteFile(t, hello, "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello from\", \"go\") }\n")
		start := time.Now()
		out, err := depsRun(t, env, `
			bash test/deps.sh go
			make -s --no-print-directory --eval 'deps-which-go: ; @command -v go; go version' deps-which-go
			export PATH=$PATH:/usr/local/go/bin
			echo "GOROOT=$(go env GOROOT)"
			ls -l /usr/local/go/bin/go /usr/local/go/bin/gofmt
			test -x /usr/local/go/bin/go && test -x /usr/local/go/bin/gofmt && test -x "$(go env GOTOOLDIR)/compile"
			ls -A /usr/local/go
			go run `+hello, repo)
		t.Logf("%s (%.1f s)", out, time.Since(start).Seconds())
		if err != nil {
			t.Fatalf("test/deps.sh go on a machine without Go: %v", err)
		}
		if strings.Contains(out, "fetching https://") || strings.Contains(out, "fetching http://") {
			t.Logf("the toolchain was downloaded through GOPROXY (the cache %s had none)", cache)
		} else {
			t.Logf("the toolchain came from the cache %s, its SHA-256 checked against the pin", cache)
		}
		for _, want := range []string{
			"Go: no Go >= 1.26.6 found: installing " + depsGoRelease + " in /usr/local/go",
			"go version " + depsGoRelease + " linux/" + runtime.GOARCH,
			"/usr/local/go/bin/go\ngo version " + depsGoRelease, // what the Makefile's recipes run
			"GOROOT=/usr/local/go\n",
			"hello from go",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if strings.Contains(out, ".minipod-go-") {
			t.Errorf("the unpacking directory was left in /usr/local/go")
		}
		if sum := depsFileSHA256(t, filepath.Join(cache, version+".zip")); sum != pin {
			t.Errorf("the cached zip's SHA-256 is %s, not the pinned %s", sum, pin)
		}
	})

	if t.Failed() {
		t.FailNow()
	}
	good, err := os.ReadFile(filepath.Join(depsCache, version+".zip"))
	if os.Getenv("MINIPOD_E2E_DEPS_DOWNLOAD") == "1" || err != nil || depsSHA256(good) != pin {
		// The first run used a cache of its own, or failed: fetch the zip for the proxy once.
		good = nil
		resp, err := http.Get(strings.TrimSuffix(depsFirstProxy(), "/") + zipPath)
		if err == nil {
			good, err = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		if err != nil || depsSHA256(good) != pin {
			t.Fatalf("no zip with the pinned SHA-256 to serve (%v)", err)
		}
	}
	proxy := newDepsProxy(t, zipPath)

	// 2. Through GOPROXY: a corrupted zip in the cache is dropped, a proxy of the list that lacks
	// the module is passed over, and the zip from the next one is checked and installed in the
	// directory GO_INSTALL_DIR names, replacing the older Go there.
	installed := filepath.Join(t.TempDir(), "go")
	t.Run("download through GOPROXY", func(t *testing.T) {
		cache := t.TempDir()
		for _, d := range []string{"bin", "src/old"} {
			if err := os.MkdirAll(filepath.Join(installed, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		depsWriteFile(t, filepath.Join(installed, "VERSION"), "go1.22.0\ntime 2024-02-06T17:19:16Z\n")
		depsWriteFile(t, filepath.Join(installed, "bin/go"), "#!/bin/sh\necho 'go version go1.22.0 linux/"+runtime.GOARCH+"'\n")
		if err := os.Chmod(filepath.Join(installed, "bin/go"), 0o755); err != nil {
			t.Fatal(err)
		}
		bad := depsCorrupt(good)
		depsWriteFile(t, filepath.Join(cache, version+".zip"), string(bad))
		proxy.serve(good)
		out, err := depsRun(t, depsEnv("GO_INSTALL_DIR="+installed, "GO_TOOLCHAIN_CACHE="+cache,
			"GOPROXY="+proxy.URL+"/missing,"+proxy.URL+"|direct"), "bash test/deps.sh go", depsCopy(t, ""))
		t.Log(out)
		if err != nil {
			t.Fatalf("test/deps.sh go: %v", err)
		}
		if got, want := proxy.requests(), []string{"/missing" + zipPath, zipPath}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("proxy requests %q, want %q", got, want)
		}
		for _, want := range []string{"will replace go1.22.0 in " + installed, "does not have the pinned SHA-256: removing it",
			"fetching " + proxy.URL + zipPath, "installed in " + installed, "go version " + depsGoRelease} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q", want)
			}
		}
		if sum := depsFileSHA256(t, filepath.Join(cache, version+".zip")); sum != pin {
			t.Errorf("the cached zip's SHA-256 is %s, not the pinned %s", sum, pin)
		}
		if entries := depsDirNames(t, cache); len(entries) != 1 {
			t.Errorf("cache holds %q, want only the zip", entries)
		}
		for _, f := range []string{"bin/go", "bin/gofmt", "pkg/tool/linux_" + runtime.GOARCH + "/compile"} {
			if st, err := os.Stat(filepath.Join(installed, f)); err != nil || st.Mode()&0o111 == 0 {
				t.Errorf("%s is not an executable file (%v)", f, err)
			}
		}
		if v := string(depsReadFile(t, filepath.Join(installed, "VERSION"))); !strings.HasPrefix(v, depsGoRelease+"\n") {
			t.Errorf("VERSION is %q", v)
		}
		if names := depsDirNames(t, installed); strings.Contains(strings.Join(names, " "), ".minipod-go-") {
			t.Errorf("the unpacking directory was left in %s: %q", installed, names)
		}
		if _, err := os.Stat(filepath.Join(installed, "src/old")); !os.IsNotExist(err) {
			t.Errorf("the older Go's src/old is still there (%v)", err)
		}
	})

	// 3. A zip whose SHA-256 is not the pinned one is refused: nothing installed, nothing cached.
	t.Run("corrupted zip refused", func(t *testing.T) {
		cache, dir := t.TempDir(), filepath.Join(t.TempDir(), "go")
		proxy.serve(depsCorrupt(good))
		out, err := depsRun(t, depsEnv("GO_INSTALL_DIR="+dir, "GO_TOOLCHAIN_CACHE="+cache, "GOPROXY="+proxy.URL),
			"bash test/deps.sh go", depsCopy(t, ""))
		t.Log(out)
		if err == nil {
			t.Fatal("test/deps.sh installed a corrupted Go toolchain")
		}
		want := "deps: refusing " + proxy.URL + zipPath + ": its SHA-256 is " + depsSHA256(depsCorrupt(good)) +
			", but test/deps.sh pins " + pin + " for Go " + depsGoRelease + " on linux-" + runtime.GOARCH + "; nothing was installed"
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("%s exists after a refused download (%v)", dir, err)
		}
		if entries := depsDirNames(t, cache); len(entries) != 0 {
			t.Errorf("cache holds %q after a refused download", entries)
		}
	})

	// 4. A Go that is new enough is used as it is; one that is too old and comes first on PATH is
	// named, since the Makefile's recipes would run it.
	t.Run("present Go used as is", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(installed, "bin/go")); err != nil {
			t.Skip("needs the Go that the GOPROXY run installed")
		}
		old := t.TempDir()
		depsWriteFile(t, filepath.Join(old, "go"), "#!/bin/sh\necho 'go version go1.19.8 linux/"+runtime.GOARCH+"'\n")
		if err := os.Chmod(filepath.Join(old, "go"), 0o755); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "go")
		proxy.serve(good)
		out, err := depsRun(t, depsEnv("GO_INSTALL_DIR="+dir, "GOPROXY="+proxy.URL, "PATH="+depsPath+":"+installed+"/bin"),
			"bash test/deps.sh go", depsCopy(t, ""))
		t.Log(out)
		if err != nil || !strings.HasPrefix(out, "go version "+depsGoRelease) || strings.Count(out, "\n") != 1 {
			t.Errorf("with Go %s on PATH: %v, output %q; want only its go version", depsGoRelease, err, out)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) {
			t.Errorf("%s exists: a Go was installed though one was there (%v)", dir, err)
		}

		out, err = depsRun(t, depsEnv("GO_INSTALL_DIR="+installed, "GOPROXY="+proxy.URL, "PATH="+old+":"+depsPath),
			"bash test/deps.sh go", depsCopy(t, ""))
		t.Log(out)
		want := "deps: " + old + "/go (1.19.8) comes before " + installed + "/bin on PATH and is older than the 1.26.6 go.mod needs"
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("with go1.19.8 first on PATH: %v, output lacks %q", err, want)
		}
		if r := proxy.requests(); len(r) != 0 {
			t.Errorf("proxy requests %q, want none", r)
		}
	})

	// 5. go.mod needing a newer Go than the pinned one is an error that says what to update.
	t.Run("go.mod newer than the pin", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "go")
		out, err := depsRun(t, depsEnv("GO_INSTALL_DIR="+dir, "GOPROXY="+proxy.URL),
			"bash test/deps.sh go", depsCopy(t, "module example.com/x\n\ngo 1.26.6\n\ntoolchain go1.27.1\n"))
		t.Log(out)
		want := "deps: go.mod needs Go >= 1.27.1, newer than the " + depsGoRelease + " that test/deps.sh pins: update go_release and its hashes there"
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%v, output lacks %q", err, want)
		}
		if _, err := os.Lstat(dir); !os.IsNotExist(err) || len(proxy.requests()) != 0 {
			t.Errorf("something was fetched or installed (%v)", err)
		}
	})

	// 6. A GO_INSTALL_DIR that holds something other than Go is left alone, before any download.
	t.Run("install dir holding no Go", func(t *testing.T) {
		dir := t.TempDir()
		depsWriteFile(t, filepath.Join(dir, "notes.txt"), "mine\n")
		out, err := depsRun(t, depsEnv("GO_INSTALL_DIR="+dir, "GOPROXY="+proxy.URL), "bash test/deps.sh go", depsCopy(t, ""))
		t.Log(out)
		want := "deps: " + dir + " is not empty and holds no Go installation"
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("%v, output lacks %q", err, want)
		}
		if names := depsDirNames(t, dir); len(names) != 1 || len(proxy.requests()) != 0 {
			t.Errorf("%s holds %q, proxy requests %q", dir, names, proxy.requests())
		}
	})
}

// depsRun runs script with bash in dir, in a private mount namespace where a tmpfs hides
// /usr/local/go, after checking that no go is on depsPath. It returns stdout and stderr together.
func depsRun(t *testing.T, env []string, script, dir string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private", "bash", "-euc", `
		mount -t tmpfs -o mode=0755 minipod-e2e-nogo /usr/local/go
		if g=$(PATH=`+depsPath+`; command -v go); then echo "a go is still on `+depsPath+`: $g" >&2; exit 99; fi
		`+script)
	cmd.Dir, cmd.Env = dir, env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 99 {
		t.Fatalf("the test needs a PATH without go: %s", out.String())
	}
	return out.String(), err
}

// depsEnv is a minimal environment with a PATH that has no go, and extra (which may set PATH).
func depsEnv(extra ...string) []string {
	home := os.Getenv("HOME")
	if home == "" {
		home = "/root"
	}
	env := []string{"PATH=" + depsPath, "HOME=" + home, "LANG=C.UTF-8"}
	return append(env, extra...)
}

// depsCopy makes a fresh copy of what `make deps` reads: test/deps.sh, go.mod (replaced by
// goMod when it is not empty) and the Makefile.
func depsCopy(t *testing.T, goMod string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"test/deps.sh", "go.mod", "Makefile"} {
		b := depsReadFile(t, filepath.Join("../..", f))
		if f == "go.mod" && goMod != "" {
			b = []byte(goMod)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// depsProxy is a Go module proxy on loopback that serves one zip, at one path, and
// records the paths asked for.
type depsProxy struct {
	*httptest.Server
	mu   sync.Mutex
	body []byte
	reqs []string
}

func newDepsProxy(t *testing.T, path string) *depsProxy {
	p := &depsProxy{}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r.URL.Path)
		body := p.body
		p.mu.Unlock()
		if r.URL.Path != path || body == nil {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/zip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(p.Close)
	return p
}

// serve makes the proxy serve body from now on and forgets the requests so far.
func (p *depsProxy) serve(body []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.body, p.reqs = body, nil
}

func (p *depsProxy) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.reqs...)
}

// depsFirstProxy is the first proxy URL of GOPROXY, or the default one.
func depsFirstProxy() string {
	for _, e := range strings.FieldsFunc(os.Getenv("GOPROXY"), func(r rune) bool { return r == ',' || r == '|' }) {
		if strings.Contains(e, "://") {
			return e
		}
	}
	return "https://proxy.golang.org"
}

// depsCorrupt returns a copy of b with one byte in the middle changed.
func depsCorrupt(b []byte) []byte {
	c := bytes.Clone(b)
	c[len(c)/2] ^= 0xff
	return c
}

func depsSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func depsFileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return ""
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Error(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// depsTreeDigest digests every name, mode, size, modification time, link target and file content
// under root.
func depsTreeDigest(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d %d\n", path, info.Mode(), info.Size(), info.ModTime().UnixNano())
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "-> %s\n", target)
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("digest %s: %v", root, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func depsDirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Error(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func depsWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func depsReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
