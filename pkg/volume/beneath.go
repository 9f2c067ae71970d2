package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host paths under a node policy.
//
// The policy's allowedHostPaths is checked at admission against the text of a hostPath; what
// the text names on the host can change afterwards. A pod that may mount /srv/data can plant
// /srv/data/pwn -> / and then mount hostPath /srv/data/pwn: a path the policy allows, which
// the host resolves to its root. So, when the node has allowedHostPaths, a hostPath is opened
// below the allowed directory that admits it, one component at a time relative to its
// parent's descriptor and never following a symlink by path: a symlink is read and followed
// by hand, and only while it stays below that directory. What the open gives is what gets
// checked, created and bind mounted (through /proc/self/fd/N, as subPath does), so a link
// swapped in afterwards changes nothing.
//
// Why not openat2 with RESOLVE_BENEATH, as subPath uses: it refuses every absolute symlink,
// even /srv/data/current -> /srv/data/v2, which a host's own tools make. The walk here gives
// a symlink its host meaning, as the runtime would, and refuses only what leaves; it also
// needs no kernel 5.6.

// maxSymlinks is how many symlinks one open follows before it fails with ELOOP (Linux's
// limit for one path).
const maxSymlinks = 40

// hostRoot is an open directory of allowedHostPaths. Below it nothing is trusted: pods that
// mount it write there. It and its ancestors are trusted: no pod can mount them, or the policy
// would allow a path above it (see allowedPrefix). So the way to it follows symlinks, as the
// host does, and the way below it does not.
type hostRoot struct {
	fd   int    // O_PATH
	name string // as allowedHostPaths names it
	path string // resolved
}

// openRoot opens the allowed directory prefix (a clean absolute path).
func openRoot(prefix string) (*hostRoot, error) {
	fd, err := unix.Open(prefix, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: prefix, Err: err}
	}
	real, err := fdPath(fd)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &hostRoot{fd: fd, name: prefix, path: real}, nil
}

func (r *hostRoot) close() { unix.Close(r.fd) }

// fdPath is the path of what fd is open on, as the kernel tells it.
func fdPath(fd int) (string, error) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("descriptor %d is open on %q, not a path", fd, p)
	}
	return p, nil
}

// escapeError is a host path whose symlinks lead out of the allowed directory that admits it.
type escapeError struct {
	path   string // the host path asked for
	root   string // the allowed directory
	link   string // the symlink (host path) that leads out
	target string // what it points to
}

func (e *escapeError) Error() string {
	if e.link == "" { // only a `..` of the path itself, which callers clean away
		return fmt.Sprintf("host path %s leaves %s, the directory of this node's allowedHostPaths that admits it", e.path, e.root)
	}
	return fmt.Sprintf("host path %s leaves %s, the directory of this node's allowedHostPaths that admits it: the symbolic link %s points to %s",
		e.path, e.root, e.link, e.target)
}

// notAllowedError is a host path below no directory of allowedHostPaths.
type notAllowedError struct {
	path    string
	allowed []string
}

func (e *notAllowedError) Error() string {
	list := "none"
	if len(e.allowed) > 0 {
		list = strings.Join(e.allowed, ", ")
	}
	return fmt.Sprintf("host path %s is not under a directory this node's policy allows (%s)", e.path, list)
}

// forbidden reports whether err is the policy refusing a host path.
func forbidden(err error) bool {
	var esc *escapeError
	var na *notAllowedError
	return errors.As(err, &esc) || errors.As(err, &na)
}

// allowedPrefix returns the outermost directory of allowed that admits p (clean, absolute):
// p itself or an ancestor, on whole components, as the policy compares. The outermost,
// because a pod that may mount it could have replaced an inner one by a symlink, while
// nothing a pod may mount is above it.
func allowedPrefix(allowed []string, p string) (string, bool) {
	best, ok := "", false
	for _, a := range allowed {
		a = filepath.Clean(a)
		if within(p, a) && (!ok || len(a) < len(best)) {
			best, ok = a, true
		}
	}
	return best, ok
}

// open opens rel (relative to r; "" or "." is r itself) the way the host resolves it, without
// leaving r: each component is opened with O_NOFOLLOW relative to its parent's descriptor; a
// symlink is read from its own descriptor and followed by hand, an absolute target only when
// it names r (by either of its paths) or something below, a relative one from where the link
// is; `..` goes back to the parent's descriptor and never above r. Symlinks on /proc are not
// followed (RESOLVE_NO_MAGICLINKS). With mkdir, missing directories are made with mkdirat in
// their parent's descriptor, mode perm whatever the umask; created lists them, relative to r,
// in the order made. It returns an O_PATH descriptor. path is the host path asked for, for
// errors.
func (r *hostRoot) open(path, rel string, mkdir bool, perm uint32) (fd int, created []string, err error) {
	type dir struct {
		fd   int
		name string
	}
	stack := []dir{{fd: r.fd}} // stack[0] is r's, not ours to close
	defer func() {
		for _, d := range stack[1:] {
			unix.Close(d.fd)
		}
	}()
	here := func(name string) string { // the host path of name in the current directory
		parts := []string{r.name}
		for _, d := range stack[1:] {
			parts = append(parts, d.name)
		}
		return filepath.Join(append(parts, name)...)
	}
	relHere := func(name string) string {
		var parts []string
		for _, d := range stack[1:] {
			parts = append(parts, d.name)
		}
		return filepath.Join(append(parts, name)...)
	}
	todo := strings.Split(rel, "/")
	links := 0
	var lastLink, lastTarget string
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			if len(stack) == 1 {
				return -1, created, &escapeError{path: path, root: r.name, link: lastLink, target: lastTarget}
			}
			unix.Close(stack[len(stack)-1].fd)
			stack = stack[:len(stack)-1]
			continue
		}
		parent := stack[len(stack)-1].fd
		cfd, err := unix.Openat(parent, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && mkdir {
			err = unix.Mkdirat(parent, name, perm&0o777)
			switch {
			case err == nil:
				created = append(created, relHere(name))
				if err := chmodAt(parent, name, perm); err != nil {
					return -1, created, &os.PathError{Op: "chmod", Path: here(name), Err: err}
				}
				fallthrough
			case errors.Is(err, unix.EEXIST): // made by someone else meanwhile: look again
				todo = append([]string{name}, todo...)
				continue
			}
			return -1, created, &os.PathError{Op: "mkdir", Path: here(name), Err: err}
		}
		if err != nil {
			return -1, created, &os.PathError{Op: "open", Path: here(name), Err: err}
		}
		var st unix.Stat_t
		if err := unix.Fstat(cfd, &st); err != nil {
			unix.Close(cfd)
			return -1, created, &os.PathError{Op: "stat", Path: here(name), Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			stack = append(stack, dir{fd: cfd, name: name})
			continue
		}
		target, err := readLink(cfd)
		var fs unix.Statfs_t
		if err == nil {
			err = unix.Fstatfs(cfd, &fs)
		}
		unix.Close(cfd)
		if err != nil {
			return -1, created, &os.PathError{Op: "readlink", Path: here(name), Err: err}
		}
		if links++; links > maxSymlinks {
			return -1, created, &os.PathError{Op: "open", Path: path, Err: unix.ELOOP}
		}
		lastLink, lastTarget = here(name), target
		if fs.Type == unix.PROC_SUPER_MAGIC {
			return -1, created, &escapeError{path: path, root: r.name, link: lastLink, target: target + " (a /proc link)"}
		}
		if filepath.IsAbs(target) {
			below, ok := r.below(target)
			if !ok {
				return -1, created, &escapeError{path: path, root: r.name, link: lastLink, target: target}
			}
			for _, d := range stack[1:] {
				unix.Close(d.fd)
			}
			stack = stack[:1]
			target = below
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(stack) == 1 {
		fd, err := unix.FcntlInt(uintptr(r.fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1, created, err
		}
		return fd, created, nil
	}
	fd = stack[len(stack)-1].fd
	stack = stack[:len(stack)-1]
	return fd, created, nil
}

// below returns the absolute path target relative to r, when it names r or something below
// it by either of r's paths.
func (r *hostRoot) below(target string) (string, bool) {
	target = filepath.Clean(target)
	for _, base := range []string{r.name, r.path} {
		if within(target, base) {
			rel, err := filepath.Rel(base, target)
			return rel, err == nil
		}
	}
	return "", false
}

// readLink reads the symlink open as the O_PATH|O_NOFOLLOW descriptor fd.
func readLink(fd int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// chmodAt sets the mode of the directory name in dirfd, which this open just made, without
// following a symlink put there since.
func chmodAt(dirfd int, name string, perm uint32) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fchmod(fd, perm)
}

// hostOpen is a hostPath opened below its allowed directory, and what the open created.
type hostOpen struct {
	fd      int // O_PATH; -1 once closed
	root    string
	created []string // directories made below root, relative to it, in the order made
	rootTop string   // the topmost directory made on the way to root itself, if any
}

func (h *hostOpen) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// undo removes the directories the open created, deepest first, while they are empty; it
// finds them again below the allowed directory, so a symlink put in their place since cannot
// take it elsewhere.
func (h *hostOpen) undo() {
	if len(h.created) > 0 {
		if r, err := openRoot(h.root); err == nil {
			for i := len(h.created) - 1; i >= 0; i-- {
				rel := h.created[i]
				pfd, _, err := r.open(h.root, filepath.Dir(rel), false, 0)
				if err != nil {
					continue
				}
				_ = unix.Unlinkat(pfd, filepath.Base(rel), unix.AT_REMOVEDIR)
				unix.Close(pfd)
			}
			r.close()
		}
	}
	if h.rootTop != "" {
		removeEmptyDirs(h.root, h.rootTop)
	}
}

// openHostPath opens the host path p (clean, absolute) below the outermost directory of
// allowed that admits it (see hostRoot.open). With mkdir, missing directories are created
// (mode perm), the allowed directory itself too, the way os.MkdirAll would, since no pod can
// change the way to it. Errors are *notAllowedError or *escapeError when the policy refuses p,
// else errors of the file system (ENOENT, ENOTDIR, ...).
func openHostPath(allowed []string, p string, mkdir bool, perm uint32) (*hostOpen, error) {
	prefix, ok := allowedPrefix(allowed, p)
	if !ok {
		return nil, &notAllowedError{path: p, allowed: allowed}
	}
	h := &hostOpen{fd: -1, root: prefix}
	if mkdir {
		if _, err := os.Lstat(prefix); errors.Is(err, os.ErrNotExist) {
			top, err := mkdirAllCreated(prefix, os.FileMode(perm))
			if err != nil {
				return nil, err
			}
			h.rootTop = top
		}
	}
	r, err := openRoot(prefix)
	if err != nil {
		h.undo()
		return nil, err
	}
	defer r.close()
	rel, err := filepath.Rel(prefix, p)
	if err != nil {
		h.undo()
		return nil, err
	}
	fd, created, err := r.open(p, rel, mkdir, perm)
	h.created = created
	if err != nil {
		h.undo()
		return nil, err
	}
	h.fd = fd
	return h, nil
}
