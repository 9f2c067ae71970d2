package volume

import (
	"errors"
	"fmt"
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
// ConfigMaps are not secret, but what they hold reaches containers too: their directories
// and key files must be root's and not writable by group or others. Anything else is an
// *InsecureError, which pods report as the reason a container cannot start
// (CreateContainerConfigError for env, FailedMount for a volume); an optional ConfigMap or
// Secret is refused too rather than silently dropped. Config.InsecureSecretPerms (the
// daemon's --insecure-manifest-perms) turns the check off. The other rules of reading them
// (see Local) always hold.

// ErrInsecure is what an *InsecureError is.
var ErrInsecure = errors.New("insecure permissions")

// InsecureError is a secret or configMap file or directory that users other than root could
// change, or, for a secret, read.
type InsecureError struct {
	Path      string
	Dir       bool
	ConfigMap bool // a ConfigMap's (only writes by others matter), else a Secret's
	UID       uint32
	Mode      os.FileMode // permission bits
}

func (e *InsecureError) Error() string {
	owner := fmt.Sprintf("uid %d", e.UID)
	if e.UID == 0 {
		owner = "root"
	}
	what, rule, fix := "secret", "not readable by group or others", "go-rwx"
	if e.ConfigMap {
		what, rule, fix = "configMap", "not writable by group or others", "go-w"
	}
	if e.Dir {
		return fmt.Sprintf("%s is owned by %s with mode %#o: a %s directory must be root's and not writable by group or others (chown root %s; chmod go-w %s; or run minipod with --insecure-manifest-perms)",
			e.Path, owner, e.Mode, what, e.Path, e.Path)
	}
	return fmt.Sprintf("%s is owned by %s with mode %#o: a %s file must be root's and %s (chown root %s; chmod %s %s; or run minipod with --insecure-manifest-perms)",
		e.Path, owner, e.Mode, what, rule, e.Path, fix, e.Path)
}

// Is makes errors.Is(err, ErrInsecure) hold.
func (e *InsecureError) Is(target error) bool { return target == ErrInsecure }

// secretOwner is the user secrets and configMaps must belong to: the one minipod runs as
// (root).
var secretOwner = uint32(os.Geteuid())

// checkStat checks the owner and mode of a secret's (secret set) or configMap's file or
// directory.
func checkStat(path string, st *unix.Stat_t, dir, secret bool) error {
	perm := os.FileMode(st.Mode & 0o777)
	bad := perm & 0o022
	if secret && !dir {
		bad = perm & 0o077
	}
	if st.Uid != secretOwner || bad != 0 {
		return &InsecureError{Path: path, Dir: dir, ConfigMap: !secret, UID: st.Uid, Mode: perm}
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
	return checkStat(path, &st, true, true)
}

// ReadSecretFile reads one secret key file the way Local reads a Secret's keys: a link is
// followed only within the file's directory, the file must be a regular file that is root's
// and that group and others cannot access, and it holds at most MaxObjectSize bytes. A
// missing file is an error wrapping fs.ErrNotExist.
func ReadSecretFile(path string) ([]byte, error) {
	dir, key := filepath.Split(filepath.Clean(path))
	dir = filepath.Clean(dir)
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(dfd)
	l := Local{Secret: true}
	b, err := l.readKey(dfd, dir, key, MaxObjectSize)
	switch {
	case errors.Is(err, errNotKey):
		return nil, &os.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	case errors.Is(err, errTooBig):
		return nil, &UnsafeError{Path: path, Problem: fmt.Sprintf("holds more than %d bytes (1 MiB), the most a secret may hold", MaxObjectSize)}
	}
	return b, err
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
			if err := checkStat(p, &st, false, true); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}
