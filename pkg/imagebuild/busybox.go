package imagebuild

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// DefaultBusyboxPath is where Debian's busybox-static installs busybox.
const DefaultBusyboxPath = "/bin/busybox"

// busyboxRepo is the repository of Busybox's default reference.
const busyboxRepo = "minipod.local/busybox"

// Busybox returns the test image: /bin/busybox from busyboxPath (default
// "/bin/busybox" when "") plus a symlink /bin/<applet> -> busybox for every
// applet busybox lists, /etc/passwd (root and nobody), /etc/group, /tmp
// (1777), /root, an empty /var/www (for httpd -h), empty /etc/hosts,
// /etc/resolv.conf and /etc/hostname and /proc, /sys and /dev (mount points
// the runtime fills), and Cmd ["sh"].
//
// busybox must be statically linked: the image has no libc. An empty name
// means "minipod.local/busybox:<major.minor>" from busybox's banner
// (DefaultBusyboxName for Debian 12's busybox).
func Busybox(name, busyboxPath string) (Image, error) {
	if busyboxPath == "" {
		busyboxPath = DefaultBusyboxPath
	}
	if err := checkStatic(busyboxPath); err != nil {
		return Image{}, err
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return Image{}, fmt.Errorf("imagebuild: listing applets of %s: %w", busyboxPath, err)
	}
	applets := strings.Fields(string(out))
	if len(applets) == 0 {
		return Image{}, fmt.Errorf("imagebuild: %s --list printed no applets", busyboxPath)
	}
	if name == "" {
		name = DefaultBusyboxName
		if v, err := BusyboxVersion(busyboxPath); err == nil {
			name = busyboxRepo + ":" + v
		}
	}

	files := []File{
		{Path: "bin/busybox", Mode: 0o755, Source: busyboxPath},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/bin/sh\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte(
			"root:x:0:\n" +
				"nogroup:x:65534:\n")},
		{Path: "etc/hosts", Mode: 0o644, Data: []byte("127.0.0.1\tlocalhost\n::1\tlocalhost\n")},
		{Path: "etc/resolv.conf", Mode: 0o644, Data: []byte{}},
		{Path: "etc/hostname", Mode: 0o644, Data: []byte{}},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "root", Mode: fs.ModeDir | 0o700},
		{Path: "var/www", Mode: fs.ModeDir | 0o755},
		{Path: "proc", Mode: fs.ModeDir | 0o555},
		{Path: "sys", Mode: fs.ModeDir | 0o555},
		{Path: "dev", Mode: fs.ModeDir | 0o755},
	}
	seen := map[string]bool{"busybox": true}
	for _, a := range applets {
		// Only plain names: --list never prints paths, but do not trust it
		// to place files outside /bin.
		if seen[a] || strings.ContainsAny(a, "/\\") || a == "." || a == ".." {
			continue
		}
		seen[a] = true
		files = append(files, File{Path: "bin/" + a, Mode: fs.ModeSymlink | 0o777, Linkname: "busybox"})
	}
	return Image{
		Name:  name,
		Files: files,
		Cmd:   []string{"sh"},
	}, nil
}

var busyboxVersionRE = regexp.MustCompile(`BusyBox v(\d+)\.(\d+)`)

// BusyboxVersion returns the major.minor version, e.g. "1.35", from the
// banner of the busybox at busyboxPath ("" means /bin/busybox).
func BusyboxVersion(busyboxPath string) (string, error) {
	if busyboxPath == "" {
		busyboxPath = DefaultBusyboxPath
	}
	// busybox --help prints the banner; some builds exit non-zero or print
	// it on stderr, so only the output matters.
	out, err := exec.Command(busyboxPath, "--help").CombinedOutput()
	m := busyboxVersionRE.FindSubmatch(out)
	if m == nil {
		if err != nil {
			return "", fmt.Errorf("imagebuild: running %s: %w", busyboxPath, err)
		}
		return "", fmt.Errorf("imagebuild: no version in the banner of %s", busyboxPath)
	}
	return string(m[1]) + "." + string(m[2]), nil
}

// Pause returns the pause image: the program at pausePath (a static binary
// such as minipod-pause) as /pause, with Entrypoint ["/pause"] and
// StopSignal SIGTERM, on which minipod-pause exits 0. An empty name means
// DefaultPauseName.
func Pause(name, pausePath string) (Image, error) {
	if pausePath == "" {
		return Image{}, errors.New("imagebuild: the pause program's path is required")
	}
	if err := checkStatic(pausePath); err != nil {
		return Image{}, err
	}
	if name == "" {
		name = DefaultPauseName
	}
	return Image{
		Name:       name,
		Files:      []File{{Path: "pause", Mode: 0o755, Source: pausePath}},
		Entrypoint: []string{"/pause"},
		StopSignal: "SIGTERM",
	}, nil
}

// checkStatic fails when path is not a regular file or is a dynamically
// linked ELF program, which could not start in an image without a libc (the
// error would only be an obscure "no such file or directory" at run time).
// Non-ELF files are accepted.
func checkStatic(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("imagebuild: %w", err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("imagebuild: %s is not a regular file", path)
	}
	f, err := elf.Open(path)
	if err != nil {
		return nil // not ELF (or unreadable, which reading it later reports)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("imagebuild: %s is dynamically linked; the image has no libc, use a static build (e.g. Debian's busybox-static, CGO_ENABLED=0)", path)
		}
	}
	return nil
}
