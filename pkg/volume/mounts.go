package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"github.com/minipod/minipod/pkg/userns"
)

// Mounts returns the OCI mounts for one container's volumeMounts, parents before children.
// Every mount is a bind ("rbind"), "ro" when the volumeMount is readOnly and always for
// configMap, secret, downwardAPI and projected volumes (as on a kubelet), with propagation
// rprivate, rslave or rshared for None, HostToContainer and Bidirectional. Use
// RootfsPropagation on the result for the container's rootfs propagation.
//
// subPath (or subPathExpr, expanded with env as the kubelet does: $(VAR), $$ for $, and an
// error for a variable with no value) selects a path inside the volume. It is opened without
// leaving the volume (symlinks are followed only while they stay inside; `..` and absolute
// paths are rejected), created as a directory when missing, and bind mounted at
// PodDir/volume-subpaths/<volume>/<container>/<index>, the path the mount then uses, so that
// the container gets what was checked even if the volume changes afterwards. A configMap or
// secret key mounted with subPath is therefore a bind of one file version: it does not see
// updates, as on Kubernetes. Under allowedHostPaths a hostPath volume is bound there the same
// way, with its submounts, after it was opened below its allowed directory (bindHostPath).
// Cleanup removes these binds.
func (p *Prepared) Mounts(c *corev1.Container, env map[string]string) ([]specs.Mount, error) {
	mounts, _, err := p.MountsAndDevices(c, env)
	return mounts, err
}

// Device is a device node a hostPath volume mounts into a container: the container is allowed
// to use it (and only it) through the device cgroup, read-only ("r") when the volumeMount is.
type Device struct {
	Type         string // "c" or "b"
	Major, Minor int64
	Access       string // "rwm" or "r"
}

// MountsAndDevices is Mounts, with the devices that the container's hostPath volumes are. Only
// a hostPath volume's own source counts, never a node reached through subPath or found in any
// other volume: a container that may make device nodes (CAP_MKNOD) could plant one there.
func (p *Prepared) MountsAndDevices(c *corev1.Container, env map[string]string) ([]specs.Mount, []Device, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var devices []Device
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	var out []specs.Mount
	for i, vm := range c.VolumeMounts {
		v, ok := p.vols[vm.Name]
		if !ok {
			return nil, nil, configError(nil, "cannot find volume %q to mount into container %q", vm.Name, c.Name)
		}
		sub := vm.SubPath
		if vm.SubPathExpr != "" {
			var err error
			if sub, err = expandSubPath(vm.SubPathExpr, env); err != nil {
				return nil, nil, configError(err, "volumeMount %q of container %q: subPathExpr %q: %v", vm.Name, c.Name, vm.SubPathExpr, err)
			}
		}
		prop := "rprivate"
		if vm.MountPropagation != nil {
			switch *vm.MountPropagation {
			case corev1.MountPropagationNone:
			case corev1.MountPropagationHostToContainer:
				prop = "rslave"
			case corev1.MountPropagationBidirectional:
				if !privileged {
					return nil, nil, configError(nil, "volumeMount %q of container %q: Bidirectional mount propagation is available only to privileged containers", vm.Name, c.Name)
				}
				prop = "rshared"
			default:
				return nil, nil, configError(nil, "volumeMount %q of container %q: invalid mountPropagation %q", vm.Name, c.Name, *vm.MountPropagation)
			}
		}

		// src is what the container gets; host is the host path whose mount decides the
		// propagation it can have.
		var src, host string
		switch {
		case sub != "":
			var err error
			if src, err = p.bindSubpath(v, sub, c.Name, i); err != nil {
				return nil, nil, err
			}
			host = src
		case v.kind == kindHostPath && p.allowed() != nil:
			var err error
			if src, host, err = p.bindHostPath(v, c.Name, i, prop == "rshared"); err != nil {
				return nil, nil, err
			}
		default:
			src = v.path
			if v.kind == kindHostPath && (v.vol.HostPath.Type == nil || *v.vol.HostPath.Type == corev1.HostPathUnset) {
				// The CRI runtime creates a missing hostPath with no type as a directory.
				if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
					if _, err := mkdirAllCreated(src, 0755); err != nil {
						return nil, nil, &Error{Reason: ReasonCreateContainer, Message: fmt.Sprintf("volume %q: creating hostPath %s: %v", vm.Name, src, err), Err: err}
					}
				}
			}
			src = resolve(src)
			host = src
		}

		if prop != "rprivate" {
			if err := checkPropagation(host, prop); err != nil {
				return nil, nil, &Error{Reason: ReasonCreateContainer, Message: fmt.Sprintf("volumeMount %q of container %q: %v", vm.Name, c.Name, err), Err: err}
			}
		}
		if v.kind == kindHostPath && sub == "" {
			dev, ok, err := p.deviceOf(v, src, vm.ReadOnly)
			if err != nil {
				return nil, nil, err
			}
			if ok {
				devices = append(devices, dev)
			}
		}

		opts := []string{"rbind", prop}
		if vm.ReadOnly || v.apiData() {
			opts = append(opts, "ro")
			if vm.RecursiveReadOnly != nil {
				switch *vm.RecursiveReadOnly {
				case corev1.RecursiveReadOnlyEnabled:
					opts = append(opts, "rro")
				case corev1.RecursiveReadOnlyIfPossible:
					if kernelAtLeast(5, 12) {
						opts = append(opts, "rro")
					}
				}
			}
		} else {
			opts = append(opts, "rw")
		}
		out = append(out, specs.Mount{Destination: vm.MountPath, Type: "bind", Source: src, Options: opts})
	}
	sort.SliceStable(out, func(a, b int) bool { return depth(out[a].Destination) < depth(out[b].Destination) })
	return out, devices, nil
}

// deviceOf looks at what the hostPath volume v mounts (src, the path or the bind of what was
// opened below allowedHostPaths): a character or block device gives the rule that lets the
// container use it, after the policy's allowedDevices has admitted its path with links
// followed.
func (p *Prepared) deviceOf(v *prepared, src string, readOnly bool) (Device, bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return Device{}, false, nil // the mount itself reports it
	}
	var d Device
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		d.Type = "c"
	case unix.S_IFBLK:
		d.Type = "b"
	default:
		return Device{}, false, nil
	}
	d.Major, d.Minor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	d.Access = "rwm"
	if readOnly {
		d.Access = "r"
	}
	if p.cfg.CheckDevice != nil {
		real, err := filepath.EvalSymlinks(v.path)
		if err == nil {
			err = p.cfg.CheckDevice(real)
		}
		if err != nil {
			return Device{}, false, &Error{Reason: ReasonPolicyViolation,
				Message: fmt.Sprintf("volume %q: %s: Forbidden: %v", v.vol.Name, p.fieldPath(v.vol.Name), err), Err: err}
		}
	}
	return d, true, nil
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// RootfsPropagation is the rootfs propagation a container with these mounts needs, as
// containerd's CRI plugin sets it: "rshared" when a mount is rshared, "rslave" when one is
// rslave, else "" (the runtime's default, rprivate).
func RootfsPropagation(mounts []specs.Mount) string {
	out := ""
	for _, m := range mounts {
		for _, o := range m.Options {
			switch {
			case o == "rshared":
				return "rshared"
			case o == "rslave":
				out = "rslave"
			}
		}
	}
	return out
}

// checkPropagation refuses propagation that the host mount of src cannot give, as containerd's
// CRI plugin does: rshared needs a shared mount, rslave a shared or slave one.
func checkPropagation(src, prop string) error {
	m, err := mountOf(src)
	if err != nil {
		return err
	}
	switch {
	case prop == "rshared" && !m.shared():
		return fmt.Errorf("path %q is mounted on %q but it is not a shared mount", src, m.point)
	case prop == "rslave" && !m.shared() && !m.slave():
		return fmt.Errorf("path %q is mounted on %q but it is not a shared or slave mount", src, m.point)
	}
	return nil
}

func kernelAtLeast(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(parts[0])
	mi, _ := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return ma > major || ma == major && mi >= minor
}

// expandSubPath expands $(VAR) references in a subPathExpr the kubelet's way: $$ is a literal
// $, an unterminated $( is literal, and a variable that is unset or empty is an error.
func expandSubPath(expr string, env map[string]string) (string, error) {
	var b strings.Builder
	var missing []string
	for i := 0; i < len(expr); i++ {
		if expr[i] != '$' || i+1 >= len(expr) {
			b.WriteByte(expr[i])
			continue
		}
		switch expr[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(expr[i+2:], ')')
			if end < 0 {
				b.WriteString("$(")
				i++
				continue
			}
			name := expr[i+2 : i+2+end]
			v := env[name]
			if v == "" && !contains(missing, name) {
				missing = append(missing, name)
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte('$')
			b.WriteByte(expr[i+1])
			i++
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return "", fmt.Errorf("missing value for %s", strings.Join(missing, ", "))
	}
	return b.String(), nil
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// errEscape is a subPath that resolves outside its volume.
var errEscape = errors.New("resolves outside the volume")

// bindSubpath opens sub inside the volume without leaving it, creating it as a directory when
// missing, and bind mounts what it opened at PodDir/volume-subpaths/<volume>/<container>/<index>.
// It returns the bind's path. A bind that is already there for the same file is reused.
func (p *Prepared) bindSubpath(v *prepared, sub, container string, index int) (string, error) {
	fail := func(err error, why string) (string, error) {
		return "", configError(err, "volumeMount %q of container %q: subPath %q %s", v.vol.Name, container, sub, why)
	}
	if path.IsAbs(sub) {
		return fail(nil, "must be a relative path")
	}
	for _, el := range strings.Split(sub, "/") {
		if el == ".." {
			return fail(nil, "must not contain '..'")
		}
	}
	sub = path.Clean(sub)

	var base string
	var baseFd int
	if v.kind == kindHostPath && p.allowed() != nil {
		// A hostPath under a node policy: the volume is what its path opens to below the
		// allowed directory (beneath.go), not wherever a symlink in it points.
		h, err := openHostPath(p.allowed(), v.path, false, 0)
		if forbidden(err) {
			return "", forbiddenPath(ReasonCreateContainerConfig, v.vol.Name, p.fieldPath(v.vol.Name), err)
		}
		if err != nil {
			return fail(err, fmt.Sprintf("cannot be prepared: volume path: %v", err))
		}
		defer h.close()
		baseFd = h.fd
		if base, err = fdPath(baseFd); err != nil {
			return fail(err, fmt.Sprintf("cannot be prepared: volume path: %v", err))
		}
	} else {
		var err error
		if base, err = filepath.EvalSymlinks(v.path); err != nil {
			return fail(err, fmt.Sprintf("cannot be prepared: volume path: %v", err))
		}
		if baseFd, err = unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return fail(err, fmt.Sprintf("cannot be prepared: %v", &os.PathError{Op: "open", Path: base, Err: err}))
		}
		defer unix.Close(baseFd)
	}

	fd, err := openBeneath(baseFd, base, sub, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		// Create it now, as the kubelet does, with the volume root's mode, so that the runtime
		// does not create it later with whatever owner and mode it likes.
		var st unix.Stat_t
		if err := unix.Fstat(baseFd, &st); err != nil {
			return fail(err, fmt.Sprintf("cannot be prepared: %v", err))
		}
		if err := mkdirBeneath(baseFd, base, sub, st.Mode&07777, p.cfg.UserNS); err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) || errors.Is(err, errEscape) {
				return fail(err, errEscape.Error())
			}
			return fail(err, fmt.Sprintf("cannot be created: %v", err))
		}
		fd, err = openBeneath(baseFd, base, sub, unix.O_PATH)
	}
	if err != nil {
		if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) || errors.Is(err, errEscape) {
			return fail(err, errEscape.Error())
		}
		return fail(err, fmt.Sprintf("cannot be opened: %v", err))
	}
	defer unix.Close(fd)
	target, err := p.bindFd(fd, v.vol.Name, container, index, false)
	if err != nil {
		return fail(err, err.Error())
	}
	return target, nil
}

// createsDir reports whether a missing hostPath is made as a directory: type DirectoryOrCreate,
// or no type (the CRI runtime makes it when it mounts).
func createsDir(hp *corev1.HostPathVolumeSource) bool {
	return hp.Type == nil || *hp.Type == corev1.HostPathUnset || *hp.Type == corev1.HostPathDirectoryOrCreate
}

// bindHostPath opens a hostPath volume below the allowed directory that admits it (beneath.go),
// creating it as a directory when it is missing and createsDir says so, and bind mounts what
// it opened, with the mounts below it, at PodDir/volume-subpaths/<volume>/<container>/<index>.
// It returns that bind as src, and the host path it opened. The bind is a slave of the host's
// mounts: mounts made below the host path later reach it (HostToContainer), and unmounting it
// at cleanup never reaches back to the host's.
//
// direct (Bidirectional) returns the host path opened as src instead of a bind: the
// container's mounts must reach the host's own shared mount, and only a privileged container
// may ask for it, which can reach any host path anyway; what it gets was checked all the same.
func (p *Prepared) bindHostPath(v *prepared, container string, index int, direct bool) (src, host string, err error) {
	name := v.vol.Name
	h, err := openHostPath(p.allowed(), v.path, createsDir(v.vol.HostPath), 0o755)
	if forbidden(err) {
		return "", "", forbiddenPath(ReasonCreateContainerConfig, name, p.fieldPath(name), err)
	}
	if err != nil {
		return "", "", &Error{Reason: ReasonCreateContainer, Message: fmt.Sprintf("volume %q: hostPath %s: %v", name, v.path, err), Err: err}
	}
	defer h.close()
	if host, err = fdPath(h.fd); err != nil {
		return "", "", &Error{Reason: ReasonCreateContainer, Message: fmt.Sprintf("volume %q: hostPath %s: %v", name, v.path, err), Err: err}
	}
	if direct {
		return host, host, nil
	}
	if src, err = p.bindFd(h.fd, name, container, index, true); err != nil {
		return "", "", &Error{Reason: ReasonCreateContainer, Message: fmt.Sprintf("volume %q: hostPath %s %v", name, v.path, err), Err: err}
	}
	return src, host, nil
}

// bindFd bind mounts the file or directory open as fd at
// PodDir/volume-subpaths/<volume>/<container>/<index> and returns that path; a bind of the
// same file already there is reused. recursive binds the mounts below it too, and makes the
// bind a slave (see bindHostPath). Its errors read after a subject: "cannot be ...".
func (p *Prepared) bindFd(fd int, volume, container string, index int, recursive bool) (string, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("cannot be prepared: %w", err)
	}
	root := resolve(p.cfg.PodDir)
	target := filepath.Join(root, SubpathsDir, volume, container, strconv.Itoa(index))
	if m, mounted, err := mountAt(target); err != nil {
		return "", fmt.Errorf("cannot be prepared: %w", err)
	} else if mounted {
		var tst unix.Stat_t
		if unix.Stat(target, &tst) == nil && tst.Dev == st.Dev && tst.Ino == st.Ino {
			return target, nil
		}
		// Another file since (a hostPath replaced, say): unmount what is there, all of it.
		if recursive {
			if err := unmountUnder(target); err != nil {
				return "", fmt.Errorf("cannot be prepared: %w", err)
			}
		} else if err := unmount(m.point); err != nil {
			return "", fmt.Errorf("cannot be prepared: %w", err)
		}
	}
	if _, err := mkdirAllCreated(filepath.Dir(target), 0750); err != nil {
		return "", fmt.Errorf("cannot be prepared: %w", err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if fi, err := os.Lstat(target); err == nil && fi.IsDir() != isDir {
		if err := os.RemoveAll(target); err != nil {
			return "", fmt.Errorf("cannot be prepared: %w", err)
		}
	}
	var err error
	if isDir {
		err = os.Mkdir(target, 0750)
	} else {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0640); err == nil {
			f.Close()
		}
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("cannot be prepared: %w", err)
	}
	flags := uintptr(unix.MS_BIND)
	if recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), target, "", flags, ""); err != nil {
		return "", fmt.Errorf("cannot be bind mounted: %w", &os.PathError{Op: "mount", Path: target, Err: err})
	}
	if recursive {
		if err := unix.Mount("", target, "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
			_ = unmountUnder(target)
			return "", fmt.Errorf("cannot be bind mounted: %w", &os.PathError{Op: "make slave", Path: target, Err: err})
		}
	}
	var tst unix.Stat_t
	if err := unix.Stat(target, &tst); err != nil || tst.Dev != st.Dev || tst.Ino != st.Ino {
		_ = unmountUnder(target)
		return "", errors.New("cannot be prepared: the bind mount does not show the opened file")
	}
	return target, nil
}

// noOpenat2 is set when the kernel has no openat2 (before 5.6); tests set it to cover the
// fallback.
var noOpenat2 atomic.Bool

// openBeneath opens rel below the directory baseFd (whose path is base), following symlinks
// only while they stay below it. It fails with EXDEV or errEscape when rel leaves it.
func openBeneath(baseFd int, base, rel string, flags int) (int, error) {
	if !noOpenat2.Load() {
		fd, err := unix.Openat2(baseFd, rel, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		if !errors.Is(err, unix.ENOSYS) {
			return fd, err
		}
		noOpenat2.Store(true)
	}
	// The kubelet's way: resolve, check the result is inside, then walk it without following
	// any symlink so that a swap between the two steps is caught.
	resolved, err := filepath.EvalSymlinks(filepath.Join(base, rel))
	if err != nil {
		return -1, err
	}
	if !within(resolved, base) {
		return -1, errEscape
	}
	r, err := filepath.Rel(base, resolved)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Dup(baseFd)
	if err != nil {
		return -1, err
	}
	if r == "." {
		return fd, nil
	}
	for _, seg := range strings.Split(r, "/") {
		nfd, err := unix.Openat(fd, seg, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, err
		}
		fd = nfd
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			unix.Close(fd)
			return -1, errEscape
		}
	}
	if flags&unix.O_PATH == 0 {
		// Reopen with the wanted flags through the verified descriptor.
		nfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), flags|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		return nfd, err
	}
	return fd, nil
}

// mkdirBeneath creates the missing directories of rel below baseFd with mode perm, never
// leaving the volume; with a user namespace, owned by its root, as an ID-mapped mount would
// show the kubelet's.
func mkdirBeneath(baseFd int, base, rel string, perm uint32, ns *userns.Range) error {
	segs := strings.Split(rel, "/")
	for i := 1; i <= len(segs); i++ {
		fd, err := openBeneath(baseFd, base, strings.Join(segs[:i], "/"), unix.O_PATH)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		parent := baseFd
		if i > 1 {
			if parent, err = openBeneath(baseFd, base, strings.Join(segs[:i-1], "/"), unix.O_PATH|unix.O_DIRECTORY); err != nil {
				return err
			}
			defer unix.Close(parent)
		}
		if err := unix.Mkdirat(parent, segs[i-1], perm&0777); err != nil {
			return err
		}
		cfd, err := unix.Openat(parent, segs[i-1], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = unix.Fchmod(cfd, perm)
		if err == nil && ns != nil {
			err = ns.ShiftFd(cfd)
		}
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}
