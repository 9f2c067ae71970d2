package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Local ConfigMaps and Secrets are directories of files, Dir/NAME/KEY. What those files hold
// reaches containers (a configMap volume's files are 0644 by default, env is in the OCI spec),
// so they are read as carefully as manifests:
//
//   - NAME must be a DNS subdomain and a file is a key only when its name is a valid ConfigMap
//     key ([-._a-zA-Z0-9]+, not "." or ".."), as the API server requires: no name leads out
//     of the directory, and `..data` or the timestamped directories of a mounted ConfigMap's
//     layout are not keys.
//   - NAME is opened relative to Dir and every key relative to NAME (openat2 with
//     RESOLVE_BENEATH): a symbolic link is followed only while it stays inside, so the
//     `key -> ..data/key` links of a mounted ConfigMap work and a link to /etc/shadow or
//     /dev/zero is refused. A kernel without openat2 (before 5.6) follows no link at all.
//   - A key must be a regular file. It is looked at through an O_PATH descriptor first, so a
//     FIFO, a device or a socket is refused without being opened, and then opened
//     non-blocking and checked again on the open file: nothing waits on a writer.
//   - The values of one object hold at most MaxObjectSize bytes together (the API server's
//     limit on a ConfigMap's or a Secret's data); reading stops there.
//   - Unless Insecure is set, Dir and NAME must be root's and not writable by group or
//     others (as the manifest directory), and so must every key file; a Secret's key files
//     must give group and others no access at all. See InsecureError.
//
// A problem is an error, never a skipped key: an *InsecureError, an *UnsafeError, or an
// invalid name. Pods report it as the kubelet reports a ConfigMap or Secret it cannot use
// (CreateContainerConfigError for env, FailedMount for a volume), even for an optional one:
// an object that is there but unsafe is not a missing one.

// MaxObjectSize is the most data a local ConfigMap or Secret may hold, its values together:
// 1 MiB, the API server's limit on both (corev1.MaxSecretSize).
const MaxObjectSize = 1 << 20

// ErrNotFound is a ConfigMap or Secret that does not exist: there is no NAME directory (or no
// Dir at all).
var ErrNotFound = errors.New("not found")

// ErrUnsafe is what an *UnsafeError is.
var ErrUnsafe = errors.New("unsafe file")

// UnsafeError is a file of a local ConfigMap or Secret that is not read: a symbolic link out
// of its directory, something other than a regular file, or more data than an object may hold.
type UnsafeError struct {
	Path    string
	Problem string // what is wrong, after the path: "is a named pipe, not a regular file"
}

func (e *UnsafeError) Error() string { return e.Path + " " + e.Problem }

// Is makes errors.Is(err, ErrUnsafe) hold.
func (e *UnsafeError) Is(target error) bool { return target == ErrUnsafe }

// Local is a directory of local ConfigMaps or of local Secrets. Its zero value reads nothing
// (every object is ErrNotFound). Read may be called from any goroutine.
type Local struct {
	Dir    string
	Secret bool // Secrets: key files must also be unreadable by group and others
	// Insecure skips the owner and mode checks (the daemon's --insecure-manifest-perms). The
	// other rules hold whatever it says.
	Insecure bool
}

// kind is how messages name the objects.
func (l Local) kind() string {
	if l.Secret {
		return "secret"
	}
	return "configMap"
}

// Read returns the keys of the object name and their values. It returns an error wrapping
// ErrNotFound when there is no such object, and an error for an invalid name, for unsafe
// permissions (ErrInsecure), and for an unsafe file (ErrUnsafe).
func (l Local) Read(name string) (map[string][]byte, error) {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return nil, fmt.Errorf("invalid name %q: %s", name, strings.Join(msgs, "; "))
	}
	if l.Dir == "" {
		return nil, ErrNotFound
	}
	top, err := unix.Open(l.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil, ErrNotFound
		}
		return nil, &os.PathError{Op: "open", Path: l.Dir, Err: err}
	}
	defer unix.Close(top)
	if err := l.checkFd(top, l.Dir, true); err != nil {
		return nil, err
	}
	root := filepath.Join(l.Dir, name)
	fd, err := openInside(top, name, unix.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case err == unix.ENOENT:
		return nil, ErrNotFound
	case err == unix.ENOTDIR:
		return nil, &UnsafeError{Path: root, Problem: "is not a directory"}
	case err != nil:
		return nil, l.openError(root, l.Dir, err)
	}
	d := os.NewFile(uintptr(fd), root)
	defer d.Close()
	if err := l.checkFd(fd, root, true); err != nil {
		return nil, err
	}
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	obj := map[string][]byte{}
	size := 0
	for _, e := range ents {
		key := e.Name()
		if e.IsDir() || len(validation.IsConfigMapKey(key)) > 0 {
			continue
		}
		b, err := l.readKey(fd, root, key, MaxObjectSize-size)
		switch {
		case errors.Is(err, errNotKey):
			continue
		case errors.Is(err, errTooBig):
			return nil, &UnsafeError{Path: root, Problem: fmt.Sprintf("holds more than %d bytes (1 MiB), the most a %s may hold", MaxObjectSize, l.kind())}
		case err != nil:
			return nil, err
		}
		obj[key] = b
		size += len(b)
	}
	return obj, nil
}

// errNotKey is a directory entry that is no key after all: it went away since the listing
// (or is a link to nothing), or is a directory reached through a link.
var errNotKey = errors.New("not a key")

// errTooBig is a key whose value is larger than what the object may still hold.
var errTooBig = errors.New("too big")

// readKey reads key in the object directory dirfd (whose path is root), at most limit bytes.
func (l Local) readKey(dirfd int, root, key string, limit int) ([]byte, error) {
	path := filepath.Join(root, key)
	// The file's type first, without opening it: opening a FIFO waits for a writer, and
	// opening a device may act on it.
	pfd, err := openInside(dirfd, key, unix.O_PATH)
	if err != nil {
		if err == unix.ENOENT {
			return nil, errNotKey
		}
		return nil, l.openError(path, root, err)
	}
	var st unix.Stat_t
	err = unix.Fstat(pfd, &st)
	unix.Close(pfd)
	if err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil, errNotKey
	}
	if err := notRegular(path, st.Mode); err != nil {
		return nil, err
	}
	fd, err := openInside(dirfd, key, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		if err == unix.ENOENT {
			return nil, errNotKey
		}
		return nil, l.openError(path, root, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	// Again on what was opened: the name may lead elsewhere by now.
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := notRegular(path, st.Mode); err != nil {
		return nil, err
	}
	if err := l.checkStat(path, &st, false); err != nil {
		return nil, err
	}
	if st.Size > int64(limit) {
		return nil, errTooBig
	}
	// The file may grow while it is read.
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > limit {
		return nil, errTooBig
	}
	return b, nil
}

// notRegular is the error for a file of mode m that is not a regular file, or nil.
func notRegular(path string, m uint32) error {
	var what string
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFIFO:
		what = "a named pipe"
	case unix.S_IFCHR:
		what = "a character device"
	case unix.S_IFBLK:
		what = "a block device"
	case unix.S_IFSOCK:
		what = "a socket"
	case unix.S_IFLNK:
		what = "a symbolic link"
	case unix.S_IFDIR:
		what = "a directory"
	default:
		what = fmt.Sprintf("of type %#o", m&unix.S_IFMT)
	}
	return &UnsafeError{Path: path, Problem: "is " + what + ", not a regular file"}
}

// openError turns an error of openInside on path, below dir, into the error to report.
func (l Local) openError(path, dir string, err error) error {
	switch err {
	case unix.EXDEV:
		return &UnsafeError{Path: path, Problem: fmt.Sprintf("is a symbolic link out of %s: a %s's links are followed only within its own directory", dir, l.kind())}
	case unix.ELOOP:
		if localNoOpenat2.Load() {
			return &UnsafeError{Path: path, Problem: "is a symbolic link: this kernel has no openat2, so no link is followed"}
		}
	}
	return &os.PathError{Op: "open", Path: path, Err: err}
}

// checkFd checks the owner and mode of the open directory fd (path).
func (l Local) checkFd(fd int, path string, dir bool) error {
	if l.Insecure {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return l.checkStat(path, &st, dir)
}

func (l Local) checkStat(path string, st *unix.Stat_t, dir bool) error {
	if l.Insecure {
		return nil
	}
	return checkStat(path, st, dir, l.Secret)
}

// localNoOpenat2 is set once openat2 turned out missing (ENOSYS): from then on, openInside
// follows no link at all.
var localNoOpenat2 atomic.Bool

// openInside opens name relative to dirfd with flags (O_CLOEXEC added), following symbolic
// links only while they stay below dirfd: a link out of it is EXDEV. Without openat2 it
// follows none (ELOOP, or an O_PATH descriptor of the link itself).
func openInside(dirfd int, name string, flags int) (int, error) {
	flags |= unix.O_CLOEXEC
	if !localNoOpenat2.Load() {
		how := unix.OpenHow{Flags: uint64(flags), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		fd, err := unix.Openat2(dirfd, name, &how)
		// EAGAIN: a rename raced the lookup; try again a few times.
		for i := 0; i < 8 && (err == unix.EINTR || err == unix.EAGAIN); i++ {
			fd, err = unix.Openat2(dirfd, name, &how)
		}
		if err != unix.ENOSYS {
			return fd, err
		}
		localNoOpenat2.Store(true)
	}
	for {
		fd, err := unix.Openat(dirfd, name, flags|unix.O_NOFOLLOW, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
