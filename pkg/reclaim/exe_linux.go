package reclaim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// span is one mapping of the executable: [start, end).
type span struct{ start, end uintptr }

// dropExecutablePages unmaps the resident pages of the executable's read-only mappings (code,
// read-only data, the function tables) with MADV_DONTNEED. For a private file mapping that
// was never written, that only removes the page-table entries: the data stays in the page cache
// and the next access maps it again. Writable mappings (Go's data and bss) are left alone,
// since there it would throw away the process's own changes.
func dropExecutablePages() error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	spans, err := readOnlySpans(maps, reflect.ValueOf(dropExecutablePages).Pointer())
	if err != nil {
		return err
	}
	for _, s := range spans {
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, s.start, s.end-s.start, unix.MADV_DONTNEED); e != 0 {
			return fmt.Errorf("madvise %#x-%#x: %w", s.start, s.end, e)
		}
	}
	return nil
}

// readOnlySpans finds, in a /proc/<pid>/maps listing, the mapping that holds pc (an address in
// the executable's code) and returns every read-only mapping of the same file, told by device
// and inode, which also holds when the file was replaced on disk ("(deleted)").
func readOnlySpans(maps []byte, pc uintptr) ([]span, error) {
	type mapping struct {
		span
		perms, file string // file: "dev inode"
	}
	var all []mapping
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		// start-end perms offset dev inode [path]
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("maps: bad range %q", f[0])
		}
		all = append(all, mapping{span{uintptr(start), uintptr(end)}, f[1], f[3] + " " + f[4]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	file := ""
	for _, m := range all {
		if m.start <= pc && pc < m.end {
			file = m.file
			break
		}
	}
	if file == "" || strings.HasSuffix(file, " 0") { // inode 0: anonymous, not a file
		return nil, fmt.Errorf("maps: no file mapping holds %#x", pc)
	}
	var out []span
	for _, m := range all {
		if m.file == file && len(m.perms) >= 2 && m.perms[1] != 'w' {
			out = append(out, m.span)
		}
	}
	return out, nil
}
