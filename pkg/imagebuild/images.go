package imagebuild

import (
	"fmt"
	"io/fs"
	"os/exec"
	"regexp"
	"strings"
)

// Busybox returns the test image: busybox from busyboxPath ("" means /bin/busybox, from
// Debian's busybox-static) with a /bin symlink for every applet, minimal /etc/passwd and
// /etc/group, /tmp, /root and an empty /var/www for httpd. Its Cmd is ["sh"].
func Busybox(name, busyboxPath string) (Image, error) {
	if busyboxPath == "" {
		busyboxPath = "/bin/busybox"
	}
	out, err := exec.Command(busyboxPath, "--list").Output()
	if err != nil {
		return Image{}, fmt.Errorf("list busybox applets of %s: %w", busyboxPath, err)
	}
	if name == "" {
		name = DefaultBusyboxName
	}
	files := []File{
		{Path: "bin/busybox", Mode: 0o755, Source: busyboxPath},
		{Path: "etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Path: "etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnogroup:x:65534:\n")},
		{Path: "tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		{Path: "root", Mode: fs.ModeDir | 0o700},
		{Path: "var/www", Mode: fs.ModeDir | 0o755},
		{Path: "etc/hosts", Mode: 0o644, Data: []byte("127.0.0.1\tlocalhost\n")},
		{Path: "etc/resolv.conf", Mode: 0o644},
		{Path: "etc/hostname", Mode: 0o644},
		{Path: "proc", Mode: fs.ModeDir | 0o755},
		{Path: "sys", Mode: fs.ModeDir | 0o755},
		{Path: "dev", Mode: fs.ModeDir | 0o755},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, File{Path: "bin/" + applet, Mode: fs.ModeSymlink | 0o777, Linkname: "busybox"})
	}
	return Image{Name: name, Files: files, Cmd: []string{"sh"}}, nil
}

var versionRE = regexp.MustCompile(`BusyBox v(\d+\.\d+)`)

// BusyboxVersion reads the major.minor version from busybox's banner, e.g. "1.35".
func BusyboxVersion(busyboxPath string) (string, error) {
	if busyboxPath == "" {
		busyboxPath = "/bin/busybox"
	}
	out, _ := exec.Command(busyboxPath).CombinedOutput()
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no version in the banner of %s", busyboxPath)
	}
	return string(m[1]), nil
}

// Pause returns the pause image: the program at pausePath as /pause, its entrypoint.
func Pause(name, pausePath string) (Image, error) {
	if pausePath == "" {
		return Image{}, fmt.Errorf("pause program path is required")
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
