// Package config holds the daemon's settings: built-in defaults, then the YAML file
// (/etc/minipod/config.yaml, or --config), then command-line flags, which win.
//
// The file's keys are the flag names (kebab-case). Reading is strict: an unknown key, a
// duplicate key, a value of the wrong type, a bad duration, log level, log format, containerd
// mode or CIDR is an error that names the key and, for a value from the file, the file and
// line.
package config

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/minipod/minipod/pkg/policy"
)

// DefaultFile is read when --config is not given; it may be missing.
const DefaultFile = "/etc/minipod/config.yaml"

// Values of Config.LogFormat.
const (
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// Values of Config.Containerd: how the daemon gets its containerd.
const (
	// ContainerdAuto uses a containerd answering at containerd-address, and starts one of its
	// own when none answers.
	ContainerdAuto = "auto"
	// ContainerdExternal only ever uses a containerd someone else runs (waited for, with
	// backoff).
	ContainerdExternal = "external"
	// ContainerdManaged always runs the daemon's own containerd.
	ContainerdManaged = "managed"
)

// Config is the daemon's effective configuration. The JSON (and file) keys are the flag names.
type Config struct {
	ManifestDir           string   `json:"manifest-dir"`
	StateDir              string   `json:"state-dir"`
	Socket                string   `json:"socket"`
	SocketGroup           int      `json:"socket-group"` // numeric gid; -1: root only (0600)
	ContainerdAddress     string   `json:"containerd-address"`
	ContainerdNamespace   string   `json:"containerd-namespace"`
	Containerd            string   `json:"containerd"` // auto, external or managed
	CNIConfDir            string   `json:"cni-conf-dir"`
	CNIBinDir             string   `json:"cni-bin-dir"` // a search path, ':'-separated
	LogDir                string   `json:"log-dir"`
	NetNSDir              string   `json:"netns-dir"`
	PauseImage            string   `json:"pause-image"`
	PauseBinary           string   `json:"pause-binary"`
	Bridge                string   `json:"bridge"`
	PodCIDR               string   `json:"pod-cidr"`
	BackoffInitial        Duration `json:"backoff-initial"`
	BackoffMax            Duration `json:"backoff-max"`
	ContainerLogMaxSize   Size     `json:"container-log-max-size"`  // rotate a container's log at this size
	ContainerLogMaxFiles  int      `json:"container-log-max-files"` // log files kept per container, the current one included
	Resync                Duration `json:"resync"`
	LogLevel              string   `json:"log-level"`  // debug, info, warn or error
	LogFormat             string   `json:"log-format"` // text or json
	AuthFile              string   `json:"auth-file"`
	ImageImportDir        string   `json:"image-import-dir"` // "": <state-dir>/images; "off": disabled
	ConfigMapDir          string   `json:"configmap-dir"`
	SecretDir             string   `json:"secret-dir"`
	InsecureManifestPerms bool     `json:"insecure-manifest-perms"`
	MetricsAddress        string   `json:"metrics-address"` // host:port; "": no metrics endpoint
	MetricsAllowNonLoop   bool     `json:"metrics-allow-non-loopback"`

	// ContainerLogMaxTotalSize caps all containers' log files together (0: no cap).
	ContainerLogMaxTotalSize Size `json:"container-log-max-total-size"`
	// ContainerdRoot is a directory on the file system holding containerd's content, whose
	// usage image garbage collection watches; "": ask containerd, else /var/lib/containerd.
	ContainerdRoot string `json:"containerd-root"`
	// Image garbage collection, as the kubelet's imageGCHighThresholdPercent,
	// imageGCLowThresholdPercent and imageMinimumGCAge.
	ImageGCHighThresholdPercent int      `json:"image-gc-high-threshold-percent"`
	ImageGCLowThresholdPercent  int      `json:"image-gc-low-threshold-percent"`
	ImageMinimumGCAge           Duration `json:"image-minimum-gc-age"`

	// Policy is what pods may ask for (privileged, host namespaces, host paths, capabilities,
	// privilege escalation, host ports, unsafe sysctls); the zero value allows everything but
	// sysctls outside the kubelet's safe set, as a kubelet's defaults do.
	Policy policy.Policy `json:"policy"`
	// Updates is how changed manifests replace running pods: pull first, and roll back.
	Updates Updates `json:"updates"`
}

// Default is the configuration with nothing set: the same defaults as cmd/minipod's flags.
func Default() Config {
	return Config{
		ManifestDir:          "/etc/minipod/manifests",
		StateDir:             "/var/lib/minipod",
		Socket:               "/run/minipod/minipod.sock",
		SocketGroup:          -1,
		ContainerdAddress:    "/run/containerd/containerd.sock",
		ContainerdNamespace:  "minipod",
		Containerd:           ContainerdAuto,
		CNIConfDir:           "/etc/cni/net.d",
		CNIBinDir:            "/opt/cni/bin:/usr/lib/cni",
		LogDir:               "/var/log/minipod/pods",
		NetNSDir:             "/run/netns",
		PauseImage:           "minipod.local/pause:3.10",
		Bridge:               "minipod0",
		PodCIDR:              "10.88.0.0/16",
		BackoffInitial:       Duration(10 * time.Second),
		BackoffMax:           Duration(5 * time.Minute),
		ContainerLogMaxSize:  Size(10 << 20),
		ContainerLogMaxFiles: 5,
		Resync:               Duration(20 * time.Second),
		LogLevel:             "info",
		LogFormat:            LogFormatText,
		AuthFile:             "/etc/minipod/auth.json",
		ConfigMapDir:         "/etc/minipod/configmaps",
		SecretDir:            "/etc/minipod/secrets",
		Updates:              Updates{ProgressDeadline: Duration(DefaultProgressDeadline)},

		// All logs together: 20 containers at their 50Mi each.
		ContainerLogMaxTotalSize:    Size(1 << 30),
		ImageGCHighThresholdPercent: 85,
		ImageGCLowThresholdPercent:  80,
		ImageMinimumGCAge:           Duration(2 * time.Minute),
	}
}

// usage is the help text of each key, for the flags.
var usage = map[string]string{
	"manifest-dir":               "directory of Pod manifests (.yaml, .yml, .json)",
	"state-dir":                  "directory for minipod's own state",
	"socket":                     "unix socket of the API",
	"socket-group":               "numeric group allowed to use the API socket (mode 0660); -1 means root only (0600)",
	"containerd-address":         "containerd socket",
	"containerd-namespace":       "containerd namespace for minipod's containers",
	"containerd":                 "containerd to use: auto (the one at --containerd-address, else start one), external (only one run by others) or managed (always start one)",
	"cni-conf-dir":               "CNI configuration directory; without a config the built-in bridge network is used",
	"cni-bin-dir":                "CNI plugin search path",
	"log-dir":                    "directory of container logs",
	"netns-dir":                  "where pod network namespaces are pinned",
	"pause-image":                "image of the pod sandbox's pause container",
	"pause-binary":               "pause program to build the pause image from when it is missing (default: minipod-pause beside this binary, then /usr/lib/minipod)",
	"bridge":                     "bridge of the built-in network",
	"pod-cidr":                   "subnet of the built-in network",
	"backoff-initial":            "first crash-loop restart `delay`",
	"backoff-max":                "maximum crash-loop restart `delay`",
	"container-log-max-size":     "`size` at which a container's log file is rotated, as the kubelet's containerLogMaxSize (e.g. 10Mi)",
	"container-log-max-files":    "log files kept per container attempt, the current one included, as the kubelet's containerLogMaxFiles (at least 2)",
	"resync":                     "`period` of the full manifest re-list",
	"log-level":                  "debug, info, warn or error",
	"log-format":                 "text or json",
	"auth-file":                  "registry credentials (Docker config format); $HOME/.docker/config.json is read when it is missing",
	"image-import-dir":           "directory whose image archives are imported at start and when they appear; default <state-dir>/images, \"off\" to disable",
	"configmap-dir":              "local configMaps: NAME/KEY files, for configMap volumes, configMapKeyRef and envFrom",
	"secret-dir":                 "local secrets: NAME/KEY files (keep it root-only)",
	"insecure-manifest-perms":    "accept manifests and a manifest dir that users other than root can write, and secrets they can read; also the auth file, the image import dir and, given as a flag, the config file",
	"metrics-address":            "host:port of the Prometheus /metrics endpoint; empty: none",
	"metrics-allow-non-loopback": "allow --metrics-address on an address other than loopback",
	"policy":                     "node policy as JSON, e.g. '{\"allowPrivileged\":false,\"allowedHostPaths\":[\"/srv\"],\"allowedHostPorts\":[\"8000-8999\"]}' (keys: " + strings.Join(policy.Keys(), ", ") + "); usually the file's policy: mapping",
	"updates":                    "how changed manifests replace running pods, as JSON: '{\"rollback\":true,\"progressDeadline\":\"5m\"}'; usually the file's updates: mapping",

	"container-log-max-total-size":    "`size` of all containers' log files together; above it the oldest files no container writes now are removed (0: no cap)",
	"containerd-root":                 "a directory on the file system of containerd's content store, whose usage image garbage collection watches (default: where containerd says, else /var/lib/containerd)",
	"image-gc-high-threshold-percent": "usage of the image file system at or above which unused images are removed, as the kubelet's imageGCHighThresholdPercent (100 disables image garbage collection)",
	"image-gc-low-threshold-percent":  "usage of the image file system that image garbage collection brings it down to, as the kubelet's imageGCLowThresholdPercent",
	"image-minimum-gc-age":            "minimum `age` of an unused image (since the daemon first saw it) before it may be collected, as the kubelet's imageMinimumGCAge",
}

// field is one key of Config.
type field struct {
	key   string
	index int // in Config
}

// fields lists Config's keys in declaration order.
var fields = func() []field {
	t := reflect.TypeFor[Config]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		out = append(out, field{key: name, index: i})
	}
	return out
}()

func lookupField(key string) (field, bool) {
	for _, f := range fields {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// Keys lists every configuration key, sorted.
func Keys() []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	sort.Strings(keys)
	return keys
}

// ErrVersion is returned by Load for --version: the caller prints its version and exits 0,
// as for flag.ErrHelp. It is returned before any file is read.
var ErrVersion = errors.New("version requested")

// Load parses args (the daemon's arguments without the program name) and the configuration
// file, and returns the merged, validated configuration: defaults, then the file, then the
// flags given in args. The file is --config, default DefaultFile; the default file may be
// missing, a file named with --config may not, and --config "" reads no file. The file must be
// root's and not writable by group or others (see CheckPerms), unless --insecure-manifest-perms
// is given among args: the file's own insecure-manifest-perms does not excuse the file itself.
// printConfig reports --print-config. Usage and flag errors are written to stderr; -h gives
// flag.ErrHelp and --version ErrVersion.
func Load(args []string, stderr io.Writer) (cfg Config, printConfig bool, err error) {
	if stderr == nil {
		stderr = io.Discard
	}
	fromFlags := Default()
	fs := newFlagSet(&fromFlags, stderr)
	path := fs.String("config", DefaultFile, "configuration file (YAML; keys are the flag names); flags win over it")
	fs.BoolVar(&printConfig, "print-config", false, "print the effective configuration as YAML and exit")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return Config{}, false, err
	}
	if fs.NArg() > 0 {
		return Config{}, false, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *version {
		return Config{}, false, ErrVersion
	}
	explicit := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			explicit = true
		}
	})

	cfg = Default()
	origin := map[string]string{} // key -> where its value came from, for errors
	if *path != "" {
		lines, err := loadFile(*path, &cfg, fromFlags.InsecureManifestPerms)
		switch {
		case errors.Is(err, os.ErrNotExist) && !explicit:
		case err != nil:
			return Config{}, false, err
		default:
			for k, l := range lines {
				origin[k] = fmt.Sprintf("%s:%d", *path, l)
			}
		}
	}
	// Flags win: copy every flag that was set over what the file said.
	src, dst := reflect.ValueOf(&fromFlags).Elem(), reflect.ValueOf(&cfg).Elem()
	fs.Visit(func(fl *flag.Flag) {
		if f, ok := lookupField(fl.Name); ok {
			dst.Field(f.index).Set(src.Field(f.index))
			origin[f.key] = "--" + f.key
		}
	})
	if err := cfg.Validate(); err != nil {
		return Config{}, false, locate(err, origin)
	}
	return cfg, printConfig, nil
}

// LoadFile reads a configuration file over Default, without flags, and validates the result.
// Unlike Load it accepts a file whatever its owner and mode: it is for tools that check a
// file (minipodctl validate --config), not for the daemon.
func LoadFile(path string) (Config, error) {
	cfg := Default()
	lines, err := loadFile(path, &cfg, true)
	if err != nil {
		return Config{}, err
	}
	if err := cfg.Validate(); err != nil {
		origin := map[string]string{}
		for k, l := range lines {
			origin[k] = fmt.Sprintf("%s:%d", path, l)
		}
		return Config{}, locate(err, origin)
	}
	return cfg, nil
}

// locate prefixes each FieldError in err with where the key's value came from.
func locate(err error, origin map[string]string) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) && fe.Where == "" {
			c := *fe
			c.Where = origin[fe.Key]
			e = &c
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// FieldError is an invalid value of one key.
type FieldError struct {
	Where string // "file:line", "--flag" or "" when unknown
	Key   string
	Msg   string
}

func (e *FieldError) Error() string {
	if e.Where == "" || e.Where == "--"+e.Key {
		if e.Where != "" {
			return "--" + e.Key + ": " + e.Msg
		}
		return e.Key + ": " + e.Msg
	}
	return e.Where + ": " + e.Key + ": " + e.Msg
}

// maxFileSize is the largest configuration file read; real ones are a few hundred bytes.
const maxFileSize = 1 << 20

// loadFile decodes path over cfg. It returns the line of each key found. Unless insecure, the
// file must pass CheckPerms.
func loadFile(path string, cfg *Config, insecure bool) (map[string]int, error) {
	data, err := ReadTrusted("config file", path, false, insecure, maxFileSize)
	var pe *PermError
	switch {
	case errors.As(err, &pe):
		pe.Hatch = "run minipod with --insecure-manifest-perms on the command line: the file's own setting does not count for itself"
		return nil, err
	case errors.As(err, new(*os.PathError)):
		return nil, fmt.Errorf("config file: %w", err)
	case err != nil:
		return nil, err
	}
	return decode(path, data, cfg)
}

// YAML is the configuration as a YAML document with every key, sorted, for --print-config.
// Loading it back gives the same Config.
func (c Config) YAML() ([]byte, error) {
	return yaml.Marshal(c)
}

// Validate checks every value. Its error joins one *FieldError per bad key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &FieldError{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for key, v := range map[string]string{
		"manifest-dir":         c.ManifestDir,
		"state-dir":            c.StateDir,
		"socket":               c.Socket,
		"containerd-address":   c.ContainerdAddress,
		"containerd-namespace": c.ContainerdNamespace,
		"cni-conf-dir":         c.CNIConfDir,
		"cni-bin-dir":          c.CNIBinDir,
		"log-dir":              c.LogDir,
		"netns-dir":            c.NetNSDir,
		"pause-image":          c.PauseImage,
		"bridge":               c.Bridge,
		"configmap-dir":        c.ConfigMapDir,
		"secret-dir":           c.SecretDir,
	} {
		if strings.TrimSpace(v) == "" {
			bad(key, "must not be empty")
		}
	}
	if c.SocketGroup < -1 {
		bad("socket-group", "%d is not a group id (-1 for root only)", c.SocketGroup)
	}
	if c.ContainerdNamespace != "" && !namespaceRE.MatchString(c.ContainerdNamespace) {
		bad("containerd-namespace", "%q is not a valid containerd namespace (letters, digits, and . _ - between them)", c.ContainerdNamespace)
	}
	switch c.Containerd {
	case ContainerdAuto, ContainerdExternal, ContainerdManaged:
	default:
		bad("containerd", "%q is not one of auto, external, managed", c.Containerd)
	}
	if c.Bridge != "" && (len(c.Bridge) > 15 || strings.ContainsAny(c.Bridge, "/: \t\n") || c.Bridge == "." || c.Bridge == "..") {
		bad("bridge", "%q is not a valid interface name (at most 15 characters, no '/', ':' or spaces)", c.Bridge)
	}
	if p, err := netip.ParsePrefix(c.PodCIDR); err != nil {
		bad("pod-cidr", "%q is not a CIDR like 10.88.0.0/16", c.PodCIDR)
	} else if p != p.Masked() {
		bad("pod-cidr", "%q has host bits set: the network is %s", c.PodCIDR, p.Masked())
	} else if p.Addr().Is4() && p.Bits() > 30 || p.Addr().Is6() && p.Bits() > 126 {
		bad("pod-cidr", "%q is too small for pods", c.PodCIDR)
	}
	if c.ContainerLogMaxSize <= 0 {
		bad("container-log-max-size", "must be > 0, got %s", c.ContainerLogMaxSize)
	}
	if c.ContainerLogMaxFiles < 2 {
		bad("container-log-max-files", "must be at least 2 (the kubelet's minimum), got %d", c.ContainerLogMaxFiles)
	}
	if c.ContainerLogMaxTotalSize < 0 {
		bad("container-log-max-total-size", "must be >= 0 (0: no cap), got %s", c.ContainerLogMaxTotalSize)
	}
	// The kubelet's rules for its image GC settings.
	for key, v := range map[string]int{
		"image-gc-high-threshold-percent": c.ImageGCHighThresholdPercent,
		"image-gc-low-threshold-percent":  c.ImageGCLowThresholdPercent,
	} {
		if v < 0 || v > 100 {
			bad(key, "%d must be between 0 and 100, inclusive", v)
		}
	}
	if c.ImageGCLowThresholdPercent >= c.ImageGCHighThresholdPercent {
		bad("image-gc-low-threshold-percent", "%d must be less than image-gc-high-threshold-percent %d", c.ImageGCLowThresholdPercent, c.ImageGCHighThresholdPercent)
	}
	if c.ImageMinimumGCAge < 0 {
		bad("image-minimum-gc-age", "must be >= 0, got %s", c.ImageMinimumGCAge)
	}
	if c.BackoffInitial <= 0 {
		bad("backoff-initial", "must be > 0, got %s", c.BackoffInitial)
	}
	if c.BackoffMax < c.BackoffInitial {
		bad("backoff-max", "%s is less than backoff-initial %s", c.BackoffMax, c.BackoffInitial)
	}
	if c.Resync <= 0 {
		bad("resync", "must be > 0, got %s", c.Resync)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		bad("log-level", "%v", err)
	}
	switch c.LogFormat {
	case LogFormatText, LogFormatJSON:
	default:
		bad("log-format", "%q is not one of text, json", c.LogFormat)
	}
	if c.MetricsAddress != "" {
		if err := checkMetricsAddress(c.MetricsAddress, c.MetricsAllowNonLoop); err != nil {
			bad("metrics-address", "%v", err)
		}
	}
	// The file's decoder and the flag already check the policy; a Config built in code is
	// checked here too, so that no path reaches the daemon with a prefix like "data" or
	// "/data/" that would never match as its author meant.
	if err := c.Policy.Validate(); err != nil {
		bad("policy", "%v", err)
	}
	if err := c.Updates.Validate(); err != nil {
		bad("updates", "%v", err)
	}
	sort.SliceStable(errs, func(i, j int) bool {
		return errs[i].(*FieldError).Key < errs[j].(*FieldError).Key
	})
	return errors.Join(errs...)
}

// namespaceRE is containerd's rule for namespace names.
var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$`)

func checkMetricsAddress(addr string, allowNonLoopback bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (e.g. 127.0.0.1:9101)", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%q: port %q is not a number from 1 to 65535", addr, port)
	}
	if allowNonLoopback {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%q is not a loopback address: metrics tell about every pod; set metrics-allow-non-loopback to serve them elsewhere", addr)
}

// ParseLogLevel accepts debug, info, warn (or warning) and error, in any case.
func ParseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("%q is not one of debug, info, warn, error", s)
}

// Level is the slog level of LogLevel (info when invalid; Load validates it).
func (c Config) Level() slog.Level {
	l, err := ParseLogLevel(c.LogLevel)
	if err != nil {
		return slog.LevelInfo
	}
	return l
}

// NewLogger is a logger writing to w in LogFormat at LogLevel.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Level()}
	if c.LogFormat == LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// ImageDir is the image import directory with its default applied; ok is false when the
// import is off.
func (c Config) ImageDir() (dir string, ok bool) {
	switch c.ImageImportDir {
	case "off":
		return "", false
	case "":
		return filepath.Join(c.StateDir, "images"), true
	}
	return c.ImageImportDir, true
}

// Duration is a time.Duration written as text ("10s", "5m") in YAML, JSON and flags.
type Duration time.Duration

// D is the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String is the duration without trailing zero units: "5m", "1h30m", "10s", "1.5s".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// Set parses a duration (flag.Value).
func (d *Duration) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 10s, 5m or 1h30m", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText parses a duration like "10s".
func (d *Duration) UnmarshalText(b []byte) error { return d.Set(string(b)) }

// MarshalJSON writes a JSON string ("10s").
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts a JSON string ("10s"); numbers are refused, having no unit.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s is not a duration: write it as a string like \"10s\"", b)
	}
	return d.Set(s)
}

// UnmarshalYAML reads a scalar as a duration (go.yaml.in/yaml/v2 Unmarshaler).
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return errors.New("not a duration like 10s, 5m or 1h30m")
	}
	return d.Set(s)
}

// Size is a number of bytes written as a Kubernetes quantity ("10Mi", "500Ki", "1G") in YAML,
// JSON and flags.
type Size int64

// Bytes is the size in bytes.
func (s Size) Bytes() int64 { return int64(s) }

// String writes the size as a quantity in binary units where it is a whole number of them.
func (s Size) String() string { return resource.NewQuantity(int64(s), resource.BinarySI).String() }

// Set parses a quantity (flag.Value).
func (s *Size) Set(v string) error {
	q, err := resource.ParseQuantity(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%q is not a size like 10Mi, 500Ki or 1G", v)
	}
	*s = Size(q.Value())
	return nil
}

// MarshalText writes the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a size like "10Mi".
func (s *Size) UnmarshalText(b []byte) error { return s.Set(string(b)) }

// MarshalJSON writes a JSON string ("10Mi").
func (s Size) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// UnmarshalJSON accepts a JSON string ("10Mi") or a number of bytes.
func (s *Size) UnmarshalJSON(b []byte) error {
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		var n int64
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("%s is not a size: write it like \"10Mi\"", b)
		}
		*s = Size(n)
		return nil
	}
	return s.Set(v)
}

// UnmarshalYAML reads a scalar as a size (go.yaml.in/yaml/v2 Unmarshaler).
func (s *Size) UnmarshalYAML(unmarshal func(any) error) error {
	var v string
	if err := unmarshal(&v); err != nil {
		return errors.New("not a size like 10Mi, 500Ki or 1G")
	}
	return s.Set(v)
}
