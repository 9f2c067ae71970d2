package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/minipod/minipod/pkg/policy"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func load(t *testing.T, args ...string) (Config, error) {
	t.Helper()
	var stderr bytes.Buffer
	cfg, _, err := Load(args, &stderr)
	return cfg, err
}

// noFile keeps tests from reading the machine's /etc/minipod/config.yaml.
const noFile = "--config="

func TestDefaults(t *testing.T) {
	cfg, err := load(t, noFile)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("Load() = %+v, want Default() %+v", cfg, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() is invalid: %v", err)
	}
	d := Default()
	if d.SocketGroup != -1 || d.BackoffInitial.D() != 10*time.Second || d.BackoffMax.D() != 5*time.Minute ||
		d.Resync.D() != 20*time.Second || d.PodCIDR != "10.88.0.0/16" || d.LogLevel != "info" ||
		d.LogFormat != "text" || d.Containerd != "auto" || d.MetricsAddress != "" {
		t.Fatalf("unexpected defaults: %+v", d)
	}
}

func TestFlagsMatchKeys(t *testing.T) {
	cfg := Default()
	fs := newFlagSet(&cfg, nil)
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	if !reflect.DeepEqual(names, Keys()) { // VisitAll is sorted too
		t.Fatalf("flags %v, keys %v", names, Keys())
	}
	// Every flag of cmd/minipod is a key.
	for _, k := range []string{"manifest-dir", "state-dir", "socket", "socket-group", "containerd-address",
		"containerd-namespace", "cni-conf-dir", "cni-bin-dir", "log-dir", "netns-dir", "pause-image",
		"pause-binary", "bridge", "pod-cidr", "backoff-initial", "backoff-max", "resync", "log-level",
		"log-format", "containerd", "metrics-address", "metrics-allow-non-loopback", "auth-file",
		"image-import-dir", "configmap-dir", "secret-dir", "insecure-manifest-perms"} {
		if _, ok := lookupField(k); !ok {
			t.Errorf("no key %s", k)
		}
		if usage[k] == "" {
			t.Errorf("no usage for %s", k)
		}
	}
}

func TestFileApplied(t *testing.T) {
	p := writeFile(t, `# minipod
manifest-dir: /srv/manifests
socket-group: 1001
backoff-initial: 2s
backoff-max: 1m30s
log-level: debug
log-format: json
containerd: external
image-import-dir: off
insecure-manifest-perms: true
pod-cidr: 10.99.0.0/24
metrics-address: "127.0.0.1:9101"
`)
	cfg, err := load(t, "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.ManifestDir = "/srv/manifests"
	want.SocketGroup = 1001
	want.BackoffInitial = Duration(2 * time.Second)
	want.BackoffMax = Duration(90 * time.Second)
	want.LogLevel = "debug"
	want.LogFormat = "json"
	want.Containerd = "external"
	want.ImageImportDir = "off" // a YAML 1.1 boolean word, read as the string it is
	want.InsecureManifestPerms = true
	want.PodCIDR = "10.99.0.0/24"
	want.MetricsAddress = "127.0.0.1:9101"
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("got  %+v\nwant %+v", cfg, want)
	}
	if _, ok := cfg.ImageDir(); ok {
		t.Fatal("image-import-dir off should disable the import")
	}
}

func TestJSONFile(t *testing.T) {
	p := writeFile(t, `{"resync": "1m", "bridge": "br9"}`)
	cfg, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Resync.D() != time.Minute || cfg.Bridge != "br9" {
		t.Fatalf("got %+v", cfg)
	}
}

func TestEmptyFile(t *testing.T) {
	p := writeFile(t, "# nothing set\n")
	cfg, err := load(t, "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, Default()) {
		t.Fatalf("got %+v", cfg)
	}
}

func TestFlagsWin(t *testing.T) {
	p := writeFile(t, "log-level: debug\nstate-dir: /file/state\nresync: 1m\ninsecure-manifest-perms: true\n")
	cfg, err := load(t, "--config", p, "--log-level=error", "--resync", "5s", "--insecure-manifest-perms=false", "--socket-group", "7")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "error" || cfg.Resync.D() != 5*time.Second || cfg.InsecureManifestPerms || cfg.SocketGroup != 7 {
		t.Fatalf("flags did not win: %+v", cfg)
	}
	if cfg.StateDir != "/file/state" {
		t.Fatalf("file value lost: state-dir %q", cfg.StateDir)
	}
	// A flag set to its default still wins over the file.
	cfg, err = load(t, "--config", p, "--log-level=info")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "info" {
		t.Fatalf("log-level %q, want the flag's info", cfg.LogLevel)
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	p := writeFile(t, "state-dir: /x\nmanifest_dir: /y\n")
	_, err := load(t, "--config", p)
	wantErr(t, err, p+":2", "manifest_dir", "unknown key", `did you mean "manifest-dir"`)
}

func TestDuplicateKeyRefused(t *testing.T) {
	p := writeFile(t, "state-dir: /x\nstate-dir: /y\n")
	_, err := load(t, "--config", p)
	wantErr(t, err, p+":2: state-dir: duplicate key")
}

func TestBadValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"duration", "log-dir: /l\nbackoff-max: 5 minutes\n", []string{":2: backoff-max:", "not a duration"}},
		{"duration number", "resync: 20\n", []string{":1: resync:", "not a duration"}},
		{"level", "log-level: verbose\n", []string{":1: log-level:", `"verbose"`}},
		{"format", "log-format: xml\n", []string{":1: log-format:", "text, json"}},
		{"mode", "containerd: maybe\n", []string{":1: containerd:", "auto, external, managed"}},
		{"cidr", "bridge: br0\npod-cidr: 10.88.0.0/33\n", []string{":2: pod-cidr:", "not a CIDR"}},
		{"cidr host bits", "pod-cidr: 10.88.1.0/16\n", []string{"pod-cidr:", "host bits"}},
		{"int type", "socket-group: wheel\n", []string{":1: socket-group:", "expected an integer", "wheel"}},
		{"bool type", "insecure-manifest-perms: sometimes\n", []string{":1: insecure-manifest-perms:", "true or false"}},
		{"list for string", "state-dir:\n  - /a\n", []string{":2: state-dir:", "expected a string, got a list"}},
		{"null", "state-dir:\n", []string{":1: state-dir:", "no value"}},
		{"empty path", "state-dir: \"\"\n", []string{":1: state-dir:", "must not be empty"}},
		{"backoff order", "backoff-initial: 1m\nbackoff-max: 10s\n", []string{":2: backoff-max:", "less than"}},
		{"metrics non-loopback", "metrics-address: 0.0.0.0:9101\n", []string{":1: metrics-address:", "loopback"}},
		{"metrics all interfaces", "metrics-address: \":9101\"\n", []string{"metrics-address:", "loopback"}},
		{"metrics port", "metrics-address: 127.0.0.1:http\n", []string{"metrics-address:", "port"}},
		{"not a mapping", "- a\n- b\n", []string{":1:", "mapping"}},
		{"syntax", "state-dir: [\n", []string{"config.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.file)
			_, err := load(t, "--config", p)
			wantErr(t, err, append([]string{p}, tc.want...)...)
		})
	}
}

func TestBadFlagsRefused(t *testing.T) {
	_, err := load(t, noFile, "--pod-cidr", "nonsense")
	wantErr(t, err, "--pod-cidr:", "not a CIDR")
	_, err = load(t, noFile, "--backoff-initial", "soon")
	wantErr(t, err, "backoff-initial", "not a duration")
	_, err = load(t, noFile, "--log-level", "loud")
	wantErr(t, err, "--log-level:", "loud")
	_, err = load(t, noFile, "extra")
	wantErr(t, err, "unexpected arguments: extra")
}

func TestMetricsAddress(t *testing.T) {
	for _, a := range []string{"127.0.0.1:9101", "localhost:9101", "[::1]:9101", "127.0.0.5:1"} {
		if _, err := load(t, noFile, "--metrics-address", a); err != nil {
			t.Errorf("%s: %v", a, err)
		}
	}
	if _, err := load(t, noFile, "--metrics-address", "192.0.2.1:9101"); err == nil {
		t.Error("non-loopback address accepted")
	}
	if _, err := load(t, noFile, "--metrics-address", "0.0.0.0:9101", "--metrics-allow-non-loopback"); err != nil {
		t.Errorf("non-loopback with allow: %v", err)
	}
}

func TestMissingFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := load(t, "--config", missing)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error", err)
	}
	wantErr(t, err, missing)
}

func TestPrintConfigRoundTrip(t *testing.T) {
	p := writeFile(t, "resync: 90s\nimage-import-dir: \"off\"\npause-binary: /usr/lib/minipod/minipod-pause\n")
	var stderr bytes.Buffer
	cfg, printConfig, err := Load([]string{"--config", p, "--print-config", "--bridge", "yes", "--backoff-max", "1h30m",
		"--cni-bin-dir", "/a:/b", "--metrics-address", "[::1]:9101", "--socket-group", "0"}, &stderr)
	if err != nil {
		t.Fatal(err)
	}
	if !printConfig {
		t.Fatal("printConfig not reported")
	}
	out, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	// Every key, sorted, one per line (nested mappings indented below their key).
	var keys []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, " ") {
			continue
		}
		k, _, _ := strings.Cut(l, ":")
		keys = append(keys, k)
	}
	if !reflect.DeepEqual(keys, Keys()) {
		t.Fatalf("keys in --print-config output:\n%v\nwant\n%v", keys, Keys())
	}
	if !strings.Contains(string(out), "backoff-max: 1h30m\n") || !strings.Contains(string(out), "resync: 1m30s\n") {
		t.Errorf("durations not written as text:\n%s", out)
	}
	back, err := load(t, "--config", writeFile(t, string(out)))
	if err != nil {
		t.Fatalf("--print-config output does not load: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", back, cfg, out)
	}
}

func TestVersionAndHelp(t *testing.T) {
	// --version comes before the file: even a broken one does not matter.
	p := writeFile(t, "nonsense: true\n")
	if _, err := load(t, "--config", p, "--version"); !errors.Is(err, ErrVersion) {
		t.Fatalf("err = %v, want ErrVersion", err)
	}
	var stderr bytes.Buffer
	if _, _, err := Load([]string{"-h"}, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	for _, s := range []string{"-pod-cidr", "-config", "-print-config", "-metrics-address"} {
		if !strings.Contains(stderr.String(), s) {
			t.Errorf("usage lacks %s:\n%s", s, stderr.String())
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]string{"10s": "10s", "5m": "5m", "300s": "5m", "1h": "1h", "90m": "1h30m", "1.5s": "1.5s", "2h0m1s": "2h0m1s"} {
		var d Duration
		if err := d.Set(in); err != nil {
			t.Fatal(err)
		}
		if d.String() != want {
			t.Errorf("%s -> %s, want %s", in, d, want)
		}
		var back Duration
		if err := back.UnmarshalText([]byte(d.String())); err != nil || back != d {
			t.Errorf("%s does not parse back: %v", d, err)
		}
	}
	var d Duration
	if err := d.UnmarshalJSON([]byte(`10`)); err == nil {
		t.Error("a number without unit accepted")
	}
}

func TestLogger(t *testing.T) {
	c := Default()
	c.LogFormat, c.LogLevel = "json", "warn"
	var buf bytes.Buffer
	log := c.NewLogger(&buf)
	log.Info("hidden")
	log.Warn("shown", "k", 1)
	if s := buf.String(); strings.Contains(s, "hidden") || !strings.Contains(s, `"msg":"shown"`) {
		t.Fatalf("logger output %q", s)
	}
}

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// The policy is one nested key of the file, read as strictly as the others: an unknown rule
// (a misspelling would silently allow what it meant to forbid), a wrong type or a host path
// prefix that could never match is refused with the file and line.
func TestPolicyFromFile(t *testing.T) {
	p := writeFile(t, `state-dir: /x
policy:
  allowPrivileged: false
  allowHostNetwork: false
  allowHostPID: true
  allowedHostPaths: [/srv/data, /var/log/app]
  allowedCapabilities: []
  allowPrivilegeEscalation: false
  allowedHostPorts: [8000-8999, 443, "30000-30100"]
  allowedUnsafeSysctls: [kernel.msg*, net.core.somaxconn]
`)
	cfg, err := load(t, "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	pol := cfg.Policy
	if pol.AllowPrivileged == nil || *pol.AllowPrivileged || pol.AllowHostNetwork == nil || *pol.AllowHostNetwork ||
		pol.AllowHostPID == nil || !*pol.AllowHostPID || pol.AllowHostIPC != nil ||
		!reflect.DeepEqual(pol.AllowedHostPaths, []string{"/srv/data", "/var/log/app"}) ||
		pol.AllowedCapabilities == nil || len(pol.AllowedCapabilities) != 0 ||
		pol.AllowPrivilegeEscalation == nil || *pol.AllowPrivilegeEscalation ||
		!reflect.DeepEqual(pol.AllowedHostPorts, []string{"8000-8999", "443", "30000-30100"}) ||
		!reflect.DeepEqual(pol.AllowedUnsafeSysctls, []string{"kernel.msg*", "net.core.somaxconn"}) {
		t.Fatalf("policy read as %+v", pol)
	}

	// No policy key, or an empty mapping: no key set, everything allowed but unsafe sysctls.
	for _, file := range []string{"state-dir: /x\n", "policy: {}\n"} {
		cfg, err := load(t, "--config", writeFile(t, file))
		if err != nil || !cfg.Policy.Unset() || !reflect.DeepEqual(cfg.Policy, policy.Policy{}) {
			t.Errorf("%q: policy %+v, err %v; want the zero policy", file, cfg.Policy, err)
		}
	}
}

func TestBadPolicyRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		want       []string
	}{
		{"unknown rule", "state-dir: /x\npolicy:\n  allowPrivileged: false\n  allowHostNetwrk: false\n",
			[]string{":2: policy:", "unknown policy key allowHostNetwrk", "allowHostNetwork"}},
		{"relative prefix", "policy:\n  allowedHostPaths: [srv/data]\n", []string{":1: policy:", `"srv/data" must be an absolute, clean path`}},
		{"unclean prefix", "policy:\n  allowedHostPaths: [/srv/data/]\n", []string{":1: policy:", "absolute, clean"}},
		{"dot-dot prefix", "policy:\n  allowedHostPaths: [/srv/../etc]\n", []string{":1: policy:", `(like "/etc")`}},
		{"bool type", "policy:\n  allowPrivileged: sometimes\n", []string{":2: policy:", "expected true or false, got sometimes"}},
		{"list type", "policy:\n  allowedHostPaths: /srv\n", []string{":2: policy:", "expected a list, got /srv"}},
		{"not a mapping", "policy: [allowPrivileged]\n", []string{":1: policy:", "expected a mapping, got a list"}},
		{"null", "policy:\n", []string{":1: policy:", "no value"}},
		{"bad capability", "policy:\n  allowedCapabilities: [\"NET ADMIN\"]\n", []string{"policy:", "not a capability name"}},
		{"host port not a number", "policy:\n  allowedHostPorts: [ssh]\n",
			[]string{":1: policy:", `allowedHostPorts: "ssh" is not a port (1-65535) or a range of ports like "8000-8999"`}},
		{"host port out of range", "policy:\n  allowedHostPorts: [443, 70000]\n", []string{"policy:", `"70000": port 70000 is not between 1 and 65535`}},
		{"host port range reversed", "policy:\n  allowedHostPorts: [8999-8000]\n", []string{"policy:", `"8999-8000": the range ends before it starts (write "8000-8999")`}},
		{"host port range open", "policy:\n  allowedHostPorts: [8000-]\n", []string{"policy:", `"8000-" is not a port`}},
		{"host ports not a list", "policy:\n  allowedHostPorts: 8000-8999\n", []string{":2: policy:", "expected a list, got 8000-8999"}},
		{"every bad host port", "policy:\n  allowedHostPorts: [0, 1-2, x]\n", []string{`"0": port 0`, `"x" is not a port`}},
		{"sysctl not namespaced", "policy:\n  allowedUnsafeSysctls: [kernel.panic]\n",
			[]string{"policy:", `allowedUnsafeSysctls: "kernel.panic": not known to be namespaced`}},
		{"sysctl pattern malformed", "policy:\n  allowedUnsafeSysctls: [\"net.*.rp_filter\"]\n",
			[]string{"policy:", `allowedUnsafeSysctls: "net.*.rp_filter" is not a sysctl name or a prefix ending in *`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, tc.file)
			_, err := load(t, "--config", p)
			wantErr(t, err, append([]string{p}, tc.want...)...)
		})
	}
	// A Config made in code is checked too.
	c := Default()
	c.Policy.AllowedHostPaths = []string{"data"}
	wantErr(t, c.Validate(), "policy:", `"data"`)
	c = Default()
	c.Policy.AllowedHostPorts = []string{"22-"}
	c.Policy.AllowedUnsafeSysctls = []string{"vm.swappiness"}
	wantErr(t, c.Validate(), "policy:", `allowedHostPorts: "22-"`, `allowedUnsafeSysctls: "vm.swappiness"`)
}

// --policy takes JSON and, like every flag, wins over the file's policy as a whole.
func TestPolicyFlag(t *testing.T) {
	p := writeFile(t, "policy:\n  allowPrivileged: false\n  allowedHostPaths: [/srv]\n")
	cfg, err := load(t, "--config", p, "--policy", `{"allowHostNetwork":false}`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Policy.AllowPrivileged != nil || cfg.Policy.AllowedHostPaths != nil ||
		cfg.Policy.AllowHostNetwork == nil || *cfg.Policy.AllowHostNetwork {
		t.Fatalf("policy %+v, want only the flag's", cfg.Policy)
	}
	_, err = load(t, noFile, "--policy", `{"allowPrivilegd":false}`)
	wantErr(t, err, "policy", "allowPrivilegd")
	_, err = load(t, noFile, "--policy", `{"allowedHostPaths":["rel"]}`)
	wantErr(t, err, "policy", "absolute, clean")
	_, err = load(t, noFile, "--policy", `{"allowedHostPorts":["9000-8000"]}`)
	wantErr(t, err, "policy", "the range ends before it starts")
	cfg, err = load(t, noFile, "--policy", `{"allowedHostPorts":[],"allowedUnsafeSysctls":["net.core.*"]}`)
	if err != nil || cfg.Policy.AllowedHostPorts == nil || len(cfg.Policy.AllowedHostPorts) != 0 ||
		!reflect.DeepEqual(cfg.Policy.AllowedUnsafeSysctls, []string{"net.core.*"}) {
		t.Errorf("--policy with host ports and sysctls: %+v, %v", cfg.Policy, err)
	}
}

// --print-config shows the policy, and what it prints loads back as the same policy; above
// all allowedHostPaths: [] (no host path at all) must not print as a missing key (any path).
func TestPrintConfigPolicy(t *testing.T) {
	p := writeFile(t, "policy:\n  allowPrivileged: false\n  allowHostIPC: true\n  allowedHostPaths: []\n  allowedCapabilities: [CHOWN]\n"+
		"  allowedHostPorts: []\n  allowedUnsafeSysctls: [kernel.msg*]\n")
	cfg, err := load(t, "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cfg.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\npolicy:\n", "\n  allowPrivileged: false\n", "\n  allowHostIPC: true\n",
		"\n  allowedHostPaths: []\n", "\n  allowedCapabilities:\n  - CHOWN\n", "\n  allowedHostPorts: []\n",
		"\n  allowedUnsafeSysctls:\n  - kernel.msg*\n"} {
		if !strings.Contains("\n"+string(out), want) {
			t.Errorf("--print-config lacks %q:\n%s", want, out)
		}
	}
	back, err := load(t, "--config", writeFile(t, string(out)))
	if err != nil {
		t.Fatalf("--print-config output does not load: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, cfg) {
		t.Fatalf("round trip:\n got %+v\nwant %+v\n%s", back.Policy, cfg.Policy, out)
	}
	// The default shows an empty mapping: nothing restricted.
	out, _ = Default().YAML()
	if !strings.Contains(string(out), "\npolicy: {}\n") {
		t.Errorf("default --print-config lacks policy: {}:\n%s", out)
	}
}

// The container log limits take the kubelet's names, defaults and quantity syntax.
func TestContainerLogLimits(t *testing.T) {
	if d := Default(); d.ContainerLogMaxSize.Bytes() != 10<<20 || d.ContainerLogMaxFiles != 5 {
		t.Fatalf("defaults: %s, %d; want the kubelet's 10Mi and 5", d.ContainerLogMaxSize, d.ContainerLogMaxFiles)
	}
	p := writeFile(t, "container-log-max-size: 500Ki\ncontainer-log-max-files: 3\n")
	cfg, err := load(t, "--config", p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ContainerLogMaxSize.Bytes() != 500<<10 || cfg.ContainerLogMaxFiles != 3 {
		t.Errorf("from the file: %s, %d", cfg.ContainerLogMaxSize, cfg.ContainerLogMaxFiles)
	}
	cfg, err = load(t, "--config", p, "--container-log-max-size", "2M")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ContainerLogMaxSize.Bytes() != 2_000_000 || cfg.ContainerLogMaxSize.String() != "2M" && cfg.ContainerLogMaxSize.String() != "2000000" {
		t.Errorf("the flag over the file: %d (%s)", cfg.ContainerLogMaxSize.Bytes(), cfg.ContainerLogMaxSize)
	}
	if s := Size(10 << 20).String(); s != "10Mi" {
		t.Errorf("Size(10Mi).String() = %q", s)
	}
	for _, bad := range [][]string{
		{"--container-log-max-files", "1"},
		{"--container-log-max-size", "0"},
		{"--container-log-max-size", "ten megs"},
	} {
		if _, err := load(t, append([]string{"--config", ""}, bad...)...); err == nil || !strings.Contains(err.Error(), "container-log-max") {
			t.Errorf("%v: err = %v, want one naming the key", bad, err)
		}
	}
}

// updates: is a nested mapping, read as strictly as the policy; --updates takes the same as JSON.
func TestUpdates(t *testing.T) {
	cfg, err := load(t, noFile)
	if err != nil || cfg.Updates.Rollback || cfg.Updates.ProgressDeadline.D() != 5*time.Minute {
		t.Fatalf("default updates %+v, %v", cfg.Updates, err)
	}
	cfg, err = load(t, "--config", writeFile(t, "updates:\n  rollback: true\n  progressDeadline: 90s\n"))
	if err != nil || !cfg.Updates.Rollback || cfg.Updates.ProgressDeadline.D() != 90*time.Second {
		t.Fatalf("file updates %+v, %v", cfg.Updates, err)
	}
	cfg, err = load(t, noFile, "--updates", `{"rollback":true}`)
	if err != nil || !cfg.Updates.Rollback || cfg.Updates.ProgressDeadline.D() != 5*time.Minute {
		t.Fatalf("--updates %+v, %v", cfg.Updates, err)
	}
	for content, want := range map[string]string{
		"updates:\n  rollbak: true\n":         "updates.rollbak: unknown key (known keys: progressDeadline, rollback)",
		"updates:\n  progressDeadline: 0s\n":  "updates.progressDeadline: must be > 0",
		"updates:\n  progressDeadline: 300\n": "updates.progressDeadline",
		"updates:\n  rollback: maybe\n":       "updates.rollback: must be true or false",
		"updates: [rollback]\n":               "updates must be a mapping",
	} {
		_, err := load(t, "--config", writeFile(t, content))
		wantErr(t, err, want)
	}
	_, err = load(t, noFile, "--updates", `{"rollback":1}`)
	wantErr(t, err, "updates.rollback: must be true or false")
}
