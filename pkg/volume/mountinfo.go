package volume

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	id, parent int
	point      string   // mount point
	optional   []string // optional fields: shared:N, master:N, ...
	fstype     string
	source     string
	superOpts  string
}

func (m mountEntry) shared() bool {
	for _, o := range m.optional {
		if strings.HasPrefix(o, "shared:") {
			return true
		}
	}
	return false
}

func (m mountEntry) slave() bool {
	for _, o := range m.optional {
		if strings.HasPrefix(o, "master:") {
			return true
		}
	}
	return false
}

// mountInfoPath is read by readMounts; a variable so that tests can point it elsewhere.
var mountInfoPath = "/proc/self/mountinfo"

// readMounts parses the mount table of this process's mount namespace, in mount order.
func readMounts() ([]mountEntry, error) {
	f, err := os.Open(mountInfoPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m, err := parseMountInfoLine(sc.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// parseMountInfoLine parses `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`.
func parseMountInfoLine(line string) (mountEntry, error) {
	fields := strings.Fields(line)
	sep := -1
	for i, f := range fields {
		if f == "-" && i >= 6 {
			sep = i
			break
		}
	}
	if sep < 0 || len(fields) < sep+3 {
		return mountEntry{}, fmt.Errorf("malformed mountinfo line %q", line)
	}
	id, err1 := strconv.Atoi(fields[0])
	parent, err2 := strconv.Atoi(fields[1])
	if err1 != nil || err2 != nil {
		return mountEntry{}, fmt.Errorf("malformed mountinfo line %q", line)
	}
	m := mountEntry{
		id: id, parent: parent,
		point:    unescapeMountPath(fields[4]),
		optional: fields[6:sep],
		fstype:   fields[sep+1],
		source:   unescapeMountPath(fields[sep+2]),
	}
	if len(fields) > sep+3 {
		m.superOpts = fields[sep+3]
	}
	return m, nil
}

// unescapeMountPath undoes the kernel's octal escapes (\040 for a space, \011, \012, \134).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountAt returns the topmost mount whose mount point is exactly p (p must be resolved).
func mountAt(p string) (mountEntry, bool, error) {
	ms, err := readMounts()
	if err != nil {
		return mountEntry{}, false, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].point == p {
			return ms[i], true, nil
		}
	}
	return mountEntry{}, false, nil
}

// mountOf returns the mount that holds p (p must be resolved): the topmost mount whose mount
// point is p or its nearest ancestor.
func mountOf(p string) (mountEntry, error) {
	ms, err := readMounts()
	if err != nil {
		return mountEntry{}, err
	}
	best := -1
	for i, m := range ms {
		if within(p, m.point) && (best < 0 || len(m.point) >= len(ms[best].point)) {
			best = i
		}
	}
	if best < 0 {
		return mountEntry{}, fmt.Errorf("no mount holds %s", p)
	}
	return ms[best], nil
}

// within reports whether p is base or below it. Both are clean absolute paths.
func within(p, base string) bool {
	if base == "/" {
		return strings.HasPrefix(p, "/")
	}
	// Without base+"/": this runs for every line of the mount table, and the concatenation
	// allocated each time.
	return strings.HasPrefix(p, base) && (len(p) == len(base) || p[len(base)] == '/')
}

// unmountUnder unmounts every mount at or below each of dirs (resolved paths), deepest first,
// and fails when any is left. A busy mount is detached.
func unmountUnder(dirs ...string) error {
	for pass := 0; ; pass++ {
		ms, err := readMounts()
		if err != nil {
			return err
		}
		var todo []string
		for i := len(ms) - 1; i >= 0; i-- { // newest first: stacked mounts come off top down
			for _, d := range dirs {
				if within(ms[i].point, d) {
					todo = append(todo, ms[i].point)
					break
				}
			}
		}
		if len(todo) == 0 {
			return nil
		}
		if pass >= 8 {
			return fmt.Errorf("mounts left after unmounting: %s", strings.Join(todo, ", "))
		}
		sort.SliceStable(todo, func(a, b int) bool {
			return strings.Count(todo[a], "/") > strings.Count(todo[b], "/")
		})
		var errs []error
		for _, p := range todo {
			if err := unmount(p); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 && pass >= 7 {
			return errors.Join(errs...)
		}
	}
}

// unmount unmounts p, detaching it when busy. A path that is no longer mounted is fine.
func unmount(p string) error {
	err := unix.Unmount(p, unix.UMOUNT_NOFOLLOW)
	if errors.Is(err, unix.EBUSY) {
		err = unix.Unmount(p, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	}
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return &os.PathError{Op: "unmount", Path: p, Err: err}
}

// resolve returns p with symlinks resolved, or p cleaned when it does not exist.
func resolve(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return filepath.Clean(p)
}
