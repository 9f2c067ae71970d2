package reclaim

import (
	"encoding/binary"
	"os"
	"reflect"
	"testing"
	"unsafe"
)

const sampleMaps = `00400000-01046000 r-xp 00000000 fe:00 9986740                            /usr/bin/minipod (deleted)
01046000-01db3000 r--p 00c46000 fe:00 9986740                            /usr/bin/minipod (deleted)
01db3000-01e46000 rw-p 019b3000 fe:00 9986740                            /usr/bin/minipod (deleted)
01e46000-01e80000 rw-p 00000000 00:00 0
c000000000-c004000000 rw-p 00000000 00:00 0
7f0000000000-7f0000001000 r--p 00000000 fe:00 1234                       /etc/minipod/other
7f0000001000-7f0000002000 r-xp 00000000 fe:01 9986740                   /mnt/same-inode-other-dev
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
`

func TestReadOnlySpans(t *testing.T) {
	got, err := readOnlySpans([]byte(sampleMaps), 0x00500000)
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0x00400000, 0x01046000}, {0x01046000, 0x01db3000}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spans = %#v, want %#v", got, want)
	}
	for _, pc := range []uintptr{0xc000001000, 0x3000, 0x01e46000} { // heap, unmapped, anonymous bss
		if s, err := readOnlySpans([]byte(sampleMaps), pc); err == nil {
			t.Errorf("pc %#x: got %v, want an error", pc, s)
		}
	}
	if _, err := readOnlySpans([]byte("zz-01 r-xp 0 fe:00 1 /x\n"), 1); err == nil {
		t.Error("a malformed range gave no error")
	}
}

// blob is 1 MiB of read-only data that nothing but the test below reads: a constant, folded
// by the compiler into one string in the executable's read-only data.
const (
	blob0  = "minipod reclaim."
	blob1  = blob0 + blob0
	blob2  = blob1 + blob1
	blob3  = blob2 + blob2
	blob4  = blob3 + blob3
	blob5  = blob4 + blob4
	blob6  = blob5 + blob5
	blob7  = blob6 + blob6
	blob8  = blob7 + blob7
	blob9  = blob8 + blob8
	blob10 = blob9 + blob9
	blob11 = blob10 + blob10
	blob12 = blob11 + blob11
	blob13 = blob12 + blob12
	blob14 = blob13 + blob13
	blob15 = blob14 + blob14
	blob   = blob15 + blob15
)

// blobData is blob as a variable, so that reads of it are loads from the executable.
var blobData = blob

// sink keeps the reads of blobData from being optimised away.
var sink byte

// written lives in the executable's writable data mapping (it has a non-zero initial value).
// Dropping that mapping would silently reset it to 1: the test below would see that.
var written = 1

// TestDropExecutablePages checks on this test binary that pages of the read-only mappings
// that were resident are not after the drop, and that the process's written data is untouched.
func TestDropExecutablePages(t *testing.T) {
	// The whole pages inside blob: the ones at its ends may share a 64 KiB fault-around run
	// with data something else reads.
	base := uintptr(unsafe.Pointer(unsafe.StringData(blobData)))
	start := (base + 4095) &^ 4095
	end := (base + uintptr(len(blobData))) &^ 4095
	inner := []span{{start, end}}
	total := int(end-start) / 4096
	for off := start - base; off < end-base; off += 4096 {
		sink ^= blobData[off]
	}
	if before := presentPages(t, inner); before != total {
		t.Fatalf("%d of blob's %d pages resident after reading them all", before, total)
	}
	written = 42
	if err := dropExecutablePages(); err != nil {
		t.Fatal(err)
	}
	// Fault-around may map back up to 64 KiB next to something else's fault.
	if after := presentPages(t, inner); after > 32 {
		t.Errorf("%d of blob's %d pages still resident after the drop", after, total)
	}
	if written != 42 {
		t.Errorf("written data changed by the drop: %d, want 42", written)
	}
}

// presentPages counts the pages of spans that are mapped, by the "present" bit (63) of
// /proc/self/pagemap, which is readable without privileges.
func presentPages(t *testing.T, spans []span) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	for _, s := range spans {
		buf := make([]byte, (s.end-s.start)/4096*8)
		if _, err := f.ReadAt(buf, int64(s.start/4096*8)); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(buf); i += 8 {
			if binary.LittleEndian.Uint64(buf[i:])>>63 == 1 {
				n++
			}
		}
	}
	return n
}
