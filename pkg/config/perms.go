package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The files the daemon trusts are checked as manifests are (pkg/source): whoever can write the
// configuration file, registry credentials or an image archive to import decides what runs as
// root on the node, just as whoever can write a manifest. So they must belong to the user
// minipod runs as (root) and not be writable by group or others; registry credentials, being
// secrets, not readable by them either. The checks are made on the opened file (fstat), so
// that the file checked is the file read. --insecure-manifest-perms, the escape hatch of the
// manifest check, turns these off too; for the configuration file itself only when given on
// the command line, since a file others can write could otherwise switch its own check off.

// ErrInsecurePerms is what a *PermError is (errors.Is).
var ErrInsecurePerms = errors.New("insecure permissions")

// PermError is a file or directory that users other than root could change or, for a private
// one, read.
type PermError struct {
	What    string // what it is for, e.g. "config file"
	Path    string
	UID     uint32
	Mode    os.FileMode // permission bits
	Private bool        // group and others may not read it either
	Hatch   string      // how to turn the check off
}

func (e *PermError) Error() string {
	owner := fmt.Sprintf("uid %d", e.UID)
	if e.UID == 0 {
		owner = "root"
	}
	rule, fix := "not writable by group or others", "chmod go-w"
	if e.Private {
		rule, fix = "not readable or writable by group or others", "chmod go-rwx"
	}
	return fmt.Sprintf("%s %s is owned by %s with mode %#o: it must be root's and %s (chown root %s; %s %s; or %s)",
		e.What, e.Path, owner, e.Mode, rule, e.Path, fix, e.Path, e.Hatch)
}

// Is makes errors.Is(err, ErrInsecurePerms) hold.
func (e *PermError) Is(target error) bool { return target == ErrInsecurePerms }

// owner is the user trusted files must belong to: the one minipod runs as (root). Tests of
// the refusals change it.
var owner = uint32(os.Geteuid())

// hatch is what PermError suggests to turn the checks off.
const hatch = "run minipod with --insecure-manifest-perms"

// CheckPerms checks what stat said of path, a file or directory the daemon trusts: it must be
// the daemon user's (root's) and not writable by group or others and, when private, not
// readable by them either. what names it in the error, a *PermError.
func CheckPerms(what, path string, info os.FileInfo, private bool) error {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	perm := info.Mode().Perm()
	bad := perm & 0o022
	if private {
		bad = perm & 0o066
	}
	if st.Uid != owner || bad != 0 {
		return &PermError{What: what, Path: path, UID: st.Uid, Mode: perm, Private: private, Hatch: hatch}
	}
	return nil
}

// ReadTrusted reads the regular file at path after checking, on the opened file, that it is
// one (a FIFO is refused, not waited on) and, unless insecure, that CheckPerms accepts it.
// At most limit bytes are read; a larger file is an error. A missing file is an error wrapping
// os.ErrNotExist.
func ReadTrusted(what, path string, private, insecure bool, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file (mode %s)", what, path, info.Mode())
	}
	if !insecure {
		if err := CheckPerms(what, path, info, private); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s %s is larger than %d bytes", what, path, limit)
	}
	return data, nil
}

// CheckImageDir checks the image import directory and the files in it that would be imported
// (all but dotfiles): whoever can write an archive there chooses the images pods run, as
// an archive is imported again when it changes. It returns nil when the directory does not
// exist (the daemon creates it, root's, 0755), else one *PermError per problem, joined.
func CheckImageDir(dir string) error {
	const what = "image import directory"
	info, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("%s %s is not a directory", what, dir)
	}
	errs := []error{CheckPerms(what, dir, info, false)}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			continue // gone meanwhile
		}
		errs = append(errs, CheckPerms("image archive", p, fi, false))
	}
	return errors.Join(errs...)
}
