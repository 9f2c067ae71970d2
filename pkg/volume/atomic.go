package volume

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/minipod/minipod/pkg/userns"
)

const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// validatePayload checks the paths of a payload as the kubelet's atomic writer does: relative,
// no `..` element, and no first element starting with `..` (that name space belongs to the
// writer). It returns the cleaned payload.
func validatePayload(p payload) (payload, error) {
	out := make(payload, len(p))
	for name, f := range p {
		switch {
		case name == "":
			return nil, errors.New("empty file path")
		case path.IsAbs(name):
			return nil, fmt.Errorf("file path %q must be relative", name)
		}
		for _, el := range strings.Split(name, "/") {
			if el == ".." {
				return nil, fmt.Errorf("file path %q must not contain '..'", name)
			}
		}
		clean := path.Clean(name)
		if clean == "." || strings.HasPrefix(clean, "..") {
			return nil, fmt.Errorf("file path %q must not start with '..'", name)
		}
		out[clean] = f
	}
	return out, nil
}

// topLevel is the first element of a payload path: the name of its user-visible symlink.
func topLevel(p string) string {
	first, _, _ := strings.Cut(p, "/")
	return first
}

// fileMode is the mode a payload file gets on disk: its mode, plus group read when an fsGroup
// owns the volume (the kubelet's read-only mask for API data volumes).
func fileMode(m os.FileMode, gid *int64) os.FileMode {
	if gid != nil {
		m |= 0440
	}
	return m & os.ModePerm
}

// writeAtomic makes dir hold exactly the payload with the kubelet's layout and returns whether
// anything changed. An unchanged payload writes nothing. dir must exist.
//
// With a user namespace (ns), what it writes is moved into the pod's range (userns.Range.Shift)
// before ..data names it: root inside owns the files, and an fsGroup gid (already a host ID in
// gid) stays. dir holds nothing a container can write: API data volumes are mounted read-only.
func writeAtomic(dir string, p payload, gid *int64, ns *userns.Range) (bool, error) {
	p, err := validatePayload(p)
	if err != nil {
		return false, err
	}
	oldTs, err := os.Readlink(filepath.Join(dir, dataDirName))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	var oldPaths map[string]bool
	if oldTs != "" {
		same, paths, err := sameContent(dir, oldTs, p, gid)
		if err != nil {
			return false, err
		}
		if same {
			return false, nil
		}
		oldPaths = paths
	}

	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return false, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tsDir)
		}
	}()
	if err := setDirMode(tsDir, gid); err != nil {
		return false, err
	}
	if err := writePayload(tsDir, p, gid); err != nil {
		return false, err
	}
	if ns != nil {
		if err := ns.Shift(tsDir); err != nil {
			return false, err
		}
	}

	// Swap ..data atomically: a new symlink renamed over the old one.
	tmp := filepath.Join(dir, newDataDirName)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.Symlink(filepath.Base(tsDir), tmp); err != nil {
		return false, err
	}
	if gid != nil {
		if err := os.Lchown(tmp, -1, int(*gid)); err != nil {
			return false, err
		}
	}
	if ns != nil {
		if err := ns.ShiftFile(tmp); err != nil {
			return false, err
		}
	}
	if err := os.Rename(tmp, filepath.Join(dir, dataDirName)); err != nil {
		_ = os.Remove(tmp)
		return false, err
	}
	ok = true

	// User-visible symlinks for new top-level names; a name already taken (by an earlier link,
	// or by a directory a subPath created) is left alone, as the kubelet does.
	tops := map[string]bool{}
	for name := range p {
		tops[topLevel(name)] = true
	}
	for top := range tops {
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, top), link); err != nil {
			return true, err
		}
		if gid != nil {
			if err := os.Lchown(link, -1, int(*gid)); err != nil {
				return true, err
			}
		}
		if ns != nil {
			if err := ns.ShiftFile(link); err != nil {
				return true, err
			}
		}
	}
	// Remove links of top-level names that are gone; only our own links into ..data.
	for old := range oldPaths {
		top := topLevel(old)
		if tops[top] {
			continue
		}
		link := filepath.Join(dir, top)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataDirName, top) {
			if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return true, err
			}
		}
	}
	// Remove the old timestamped directory and anything a crash left behind.
	return true, removeStale(dir, filepath.Base(tsDir))
}

// removeStale removes every writer-owned `..` entry of dir but ..data and keep.
func removeStale(dir, keep string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, "..") || n == dataDirName || n == keep || n == ".." {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// writePayload writes the files of p under tsDir.
func writePayload(tsDir string, p payload, gid *int64) error {
	for name, f := range p {
		full := filepath.Join(tsDir, filepath.FromSlash(name))
		if err := mkdirAllGroup(tsDir, filepath.Dir(full), gid); err != nil {
			return err
		}
		if err := writeFile(full, f.data, fileMode(f.mode, gid), gid); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(name string, data []byte, m os.FileMode, gid *int64) error {
	fh, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0600)
	if err != nil {
		return err
	}
	_, err = fh.Write(data)
	if err == nil && gid != nil {
		err = fh.Chown(-1, int(*gid))
	}
	if err == nil {
		err = fh.Chmod(m)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}

// mkdirAllGroup creates the directories from base (which exists) down to dir, 0755 and, with
// an fsGroup, group owned and setgid.
func mkdirAllGroup(base, dir string, gid *int64) error {
	if dir == base {
		return nil
	}
	if fi, err := os.Lstat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s: not a directory", dir)
		}
		return nil
	}
	if err := mkdirAllGroup(base, filepath.Dir(dir), gid); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0755); err != nil {
		return err
	}
	return setDirMode(dir, gid)
}

// setDirMode gives a writer directory 0755, with an fsGroup also the group and setgid (the
// kubelet's read-only mask for directories, r-x plus setgid).
func setDirMode(dir string, gid *int64) error {
	m := os.FileMode(0755)
	if gid != nil {
		if err := os.Lchown(dir, -1, int(*gid)); err != nil {
			return err
		}
		m |= os.ModeSetgid | 0550
	}
	return os.Chmod(dir, m)
}

// sameContent reports whether the timestamped directory ts of dir holds exactly p, with the
// modes and group p asks for, and every user-visible name exists. It also returns the paths
// the directory holds.
func sameContent(dir, ts string, p payload, gid *int64) (bool, map[string]bool, error) {
	root := filepath.Join(dir, ts)
	paths := map[string]bool{}
	same := true
	err := filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && name == root {
				same = false
				return filepath.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, name)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		paths[rel] = true
		want, ok := p[rel]
		if !ok || !d.Type().IsRegular() {
			same = false
			return nil
		}
		if !same {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.Mode() != fileMode(want.mode, gid) {
			same = false
			return nil
		}
		if gid != nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int64(st.Gid) != *gid {
				same = false
				return nil
			}
		}
		got, err := os.ReadFile(name)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want.data) {
			same = false
		}
		return nil
	})
	if err != nil {
		return false, nil, err
	}
	if len(paths) != len(p) {
		same = false
	}
	if same {
		for name := range p {
			if _, err := os.Lstat(filepath.Join(dir, topLevel(name))); err != nil {
				same = false
				break
			}
		}
	}
	return same, paths, nil
}
