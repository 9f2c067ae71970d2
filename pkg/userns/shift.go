package userns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Shift moves everything below the directory dir, dir included, into the range: an owner or
// group id < Size becomes HostID+id, what the namespace shows as id. An ID of Size or more is
// left as it is: one that Shift moved already (so running it again changes nothing), or one
// the namespace cannot show anyway, which it then shows as the overflow ID, as an ID-mapped
// mount would.
//
// The walk goes from one directory's descriptor to the next and never follows a symlink (a
// symlink's own owner changes), and it stays on dir's filesystem. Setuid and setgid bits,
// which the kernel drops from a file whose owner changes, are set again. dir itself must not
// be a symlink.
func (r Range) Shift(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if err := r.chown(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "chown", Path: dir, Err: err}
	}
	return r.shiftDir(fd, dir, st.Dev)
}

// ShiftFile moves one file (never followed if it is a symlink) into the range, as Shift does.
func (r Range) ShiftFile(path string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(unix.AT_FDCWD, path, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if err := r.chownAt(unix.AT_FDCWD, path, &st); err != nil {
		return &os.PathError{Op: "chown", Path: path, Err: err}
	}
	return nil
}

// shiftDir moves the entries of the directory fd (closed on return) into the range.
func (r Range) shiftDir(fd int, path string, dev uint64) error {
	d := os.NewFile(uintptr(fd), path)
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			errs = append(errs, &os.PathError{Op: "stat", Path: path + "/" + name, Err: err})
			continue
		}
		if err := r.chownAt(fd, name, &st); err != nil {
			errs = append(errs, &os.PathError{Op: "chown", Path: path + "/" + name, Err: err})
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Dev != dev {
			continue
		}
		sub, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			errs = append(errs, &os.PathError{Op: "open", Path: path + "/" + name, Err: err})
			continue
		}
		if err := r.shiftDir(sub, path+"/"+name, dev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ShiftFd moves what fd is open on (a directory, or a file without setuid or setgid bits)
// into the range, as Shift does.
func (r Range) ShiftFd(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	return r.chown(fd, &st)
}

// chown moves the open directory fd into the range.
func (r Range) chown(fd int, st *unix.Stat_t) error {
	uid, gid, ok := r.moved(st)
	if !ok {
		return nil
	}
	return unix.Fchown(fd, uid, gid)
}

// chownAt moves the entry name of directory dirfd, whose lstat is st, into the range.
func (r Range) chownAt(dirfd int, name string, st *unix.Stat_t) error {
	uid, gid, ok := r.moved(st)
	if !ok {
		return nil
	}
	// The kernel drops a file's capabilities with its owner: they are read first, and
	// written back as the range's (a ping that has cap_net_raw keeps it).
	var caps []byte
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		var err error
		if caps, err = fileCaps(dirfd, name); err != nil {
			return err
		}
	}
	if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if caps = r.capsInRange(caps); caps != nil {
		if err := unix.Lsetxattr(entryPath(dirfd, name), xattrCaps, caps, 0); err != nil {
			return fmt.Errorf("restore file capabilities: %w", err)
		}
	}
	// chown drops setuid, and setgid from a group-executable file. Only what lstat saw as
	// neither a symlink nor a directory gets its bits back: fchmodat follows a symlink, but
	// nothing else writes to what is shifted (a root filesystem no container uses yet, or
	// volume files only the daemon writes), so the entry is still what lstat saw.
	mode := st.Mode & 0o7777
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK, unix.S_IFDIR:
		return nil
	}
	if mode&(unix.S_ISUID|unix.S_ISGID) != 0 {
		return unix.Fchmodat(dirfd, name, mode, 0)
	}
	return nil
}

// moved is the owner and group st gets in the range, and whether either changes.
func (r Range) moved(st *unix.Stat_t) (int, int, bool) {
	uid, gid := -1, -1
	if h, ok := r.ToHost(st.Uid); ok {
		uid = int(h)
	}
	if h, ok := r.ToHost(st.Gid); ok {
		gid = int(h)
	}
	return uid, gid, uid != -1 || gid != -1
}

// String is the range as a uid_map line shows it.
func (r Range) String() string { return fmt.Sprintf("0 %d %d", r.HostID, r.Size) }

const xattrCaps = "security.capability"

// Revisions of the security.capability value (linux/capability.h): v2 holds the capabilities;
// v3 adds the host ID of the root of the user namespace they are for.
const (
	capRevisionMask = 0xFF000000
	capRevision2    = 0x02000000
	capRevision3    = 0x03000000
	capSize2        = 20
	capSize3        = 24
)

// entryPath names entry name of directory dirfd for the *xattr calls, which have no *at form:
// the directory through its descriptor, the entry itself never followed (lgetxattr,
// lsetxattr).
func entryPath(dirfd int, name string) string {
	if dirfd == unix.AT_FDCWD {
		return name
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
}

// fileCaps is the security.capability value of entry name of dirfd, nil for none.
func fileCaps(dirfd int, name string) ([]byte, error) {
	buf := make([]byte, capSize3)
	n, err := unix.Lgetxattr(entryPath(dirfd, name), xattrCaps, buf)
	switch {
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.ERANGE):
		return nil, nil // none, none possible here, or no value the kernel would use
	case err != nil:
		return nil, fmt.Errorf("read file capabilities: %w", err)
	}
	return buf[:n], nil
}

// capsInRange is a file capability value made for the range: a v2 value becomes v3 for the
// range's root, and a v3 value for root ID n inside becomes one for HostID+n. What is neither
// (nothing, a v1 value, a v3 for an ID outside the range) is nil: the file is left without.
func (r Range) capsInRange(v []byte) []byte {
	if len(v) < 4 {
		return nil
	}
	magic := binary.LittleEndian.Uint32(v)
	var root uint32
	switch {
	case magic&capRevisionMask == capRevision2 && len(v) == capSize2:
	case magic&capRevisionMask == capRevision3 && len(v) == capSize3:
		root = binary.LittleEndian.Uint32(v[capSize2:])
	default:
		return nil
	}
	host, ok := r.ToHost(root)
	if !ok {
		return nil
	}
	out := make([]byte, capSize3)
	copy(out, v[:capSize2])
	binary.LittleEndian.PutUint32(out, capRevision3|magic&^capRevisionMask)
	binary.LittleEndian.PutUint32(out[capSize2:], host)
	return out
}
