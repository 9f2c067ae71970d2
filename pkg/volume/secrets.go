package volume

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Secrets are root's. Whoever can read a secret file learns the secret, and whoever can write
// one (or replace it through a writable directory) feeds data to root containers, so a Secret
// is used only when:
//
//   - the secret directory and the Secret's own directory belong to the user minipod runs as
//     (root) and are not writable by group or others, as the manifest directory must be;
//   - each key file read belongs to that user and gives group and others no access at all.
//
// Anything else is an *InsecureError, which pods report as the reason a container cannot
// start (CreateContainerConfigError for env, FailedMount for a volume); an optional Secret is
// refused too rather than silently dropped. Config.InsecureSecretPerms (the daemon's
// --insecure-manifest-perms) turns the check off.

// ErrInsecure is what an *InsecureError is.
var ErrInsecure = errors.New("insecure permissions")

// InsecureError is a secret file or directory that users other than root could read or change.
type InsecureError struct {
	Path string
	Dir  bool
	UID  uint32
	Mode os.FileMode // permission bits
}

func (e *InsecureError) Error() string {
	owner := fmt.Sprintf("uid %d", e.UID)
	if e.UID == 0 {
		owner = "root"
	}
	if e.Dir {
		return fmt.Sprintf("%s is owned by %s with mode %#o: a secret directory must be root's and not writable by group or others (chown root %s; chmod go-w %s; or run minipod with --insecure-manifest-perms)",
			e.Path, owner, e.Mode, e.Path, e.Path)
	}
	return fmt.Sprintf("%s is owned by %s with mode %#o: a secret file must be root's and not readable by group or others (chown root %s; chmod go-rwx %s; or run minipod with --insecure-manifest-perms)",
		e.Path, owner, e.Mode, e.Path, e.Path)
}

// Is makes errors.Is(err, ErrInsecure) hold.
func (e *InsecureError) Is(target error) bool { return target == ErrInsecure }

// secretOwner is the user secrets must belong to: the one minipod runs as (root).
var secretOwner = uint32(os.Geteuid())

func checkSecretStat(path string, st *unix.Stat_t, dir bool) error {
	perm := os.FileMode(st.Mode & 0o777)
	bad := perm & 0o077
	if dir {
		bad = perm & 0o022
	}
	if st.Uid != secretOwner || bad != 0 {
		return &InsecureError{Path: path, Dir: dir, UID: st.Uid, Mode: perm}
	}
	return nil
}

// CheckSecretDir checks a directory on the way to secrets: the secret directory, or one
// Secret's directory. It returns an error wrapping fs.ErrNotExist when there is none, and an
// *InsecureError when it is not root's alone to change.
func CheckSecretDir(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return &os.PathError{Op: "open", Path: path, Err: unix.ENOTDIR}
	}
	return checkSecretStat(path, &st, true)
}

// ReadSecretFile reads a secret's key file (following symlinks, as a mounted Secret's keys are
// links) after checking, on the opened file, that it is a regular file that is root's and
// that group and others cannot access. A missing file is an error wrapping fs.ErrNotExist.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := checkSecretStat(path, &st, false); err != nil {
		return nil, err
	}
	return io.ReadAll(f)
}

// ScanSecrets checks the secret directory, every Secret's directory in it and every key file
// of those, and returns one error per problem, for the daemon to warn about at start. A
// missing secret directory is no problem: it holds no secrets.
func ScanSecrets(dir string) []error {
	if dir == "" {
		return nil
	}
	if err := CheckSecretDir(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return []error{err}
	}
	var errs []error
	names, _ := os.ReadDir(dir)
	for _, n := range names {
		sdir := filepath.Join(dir, n.Name())
		if err := CheckSecretDir(sdir); err != nil {
			if !errors.Is(err, unix.ENOTDIR) {
				errs = append(errs, err)
			}
			continue
		}
		keys, _ := os.ReadDir(sdir)
		sort.Slice(keys, func(i, j int) bool { return keys[i].Name() < keys[j].Name() })
		for _, k := range keys {
			if len(validation.IsConfigMapKey(k.Name())) > 0 {
				continue
			}
			p := filepath.Join(sdir, k.Name())
			var st unix.Stat_t
			if unix.Stat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if err := checkSecretStat(p, &st, false); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
