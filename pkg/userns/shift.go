package userns

import (
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
	if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
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
