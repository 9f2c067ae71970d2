package userns

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestGetDistinctPersistedReleased(t *testing.T) {
	dir := t.TempDir()
	a, err := New(dir, os.WriteFile)
	if err != nil {
		t.Fatal(err)
	}
	// Every pick lands on the same slot: the allocator must still give distinct ranges.
	a.pick = func(int) int { return 41 }
	seen := map[uint32]string{}
	for _, uid := range []string{"a", "b", "c"} {
		r, err := a.Get(uid)
		if err != nil {
			t.Fatalf("Get(%s): %v", uid, err)
		}
		if r.Size != Size || r.HostID%Size != 0 || r.HostID < Size {
			t.Errorf("Get(%s) = %+v, want a range of %d on a boundary above %d", uid, r, Size, Size)
		}
		if other, ok := seen[r.HostID]; ok {
			t.Errorf("pods %s and %s both got %d", other, uid, r.HostID)
		}
		seen[r.HostID] = uid
		again, err := a.Get(uid)
		if err != nil || again != r {
			t.Errorf("Get(%s) again = %+v, %v; want %+v", uid, again, err, r)
		}
	}
	ra, _ := a.Get("a")
	b, err := os.ReadFile(filepath.Join(dir, "a", File))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"uidMappings":[{"hostId":2752512,"containerId":0,"length":65536}],"gidMappings":[{"hostId":2752512,"containerId":0,"length":65536}]}`
	if string(b) != want || ra.HostID != 42*Size {
		t.Errorf("file of a = %s (range %+v), want %s", b, ra, want)
	}

	// A new allocator (a daemon restart) finds the ranges again.
	a2, err := New(dir, os.WriteFile)
	if err != nil {
		t.Fatal(err)
	}
	a2.pick = func(int) int { return 41 }
	for host, uid := range seen {
		r, err := a2.Get(uid)
		if err != nil || r.HostID != host {
			t.Errorf("after restart Get(%s) = %+v, %v; want host ID %d", uid, r, err, host)
		}
	}
	d, err := a2.Get("d")
	if err != nil {
		t.Fatal(err)
	}
	if _, taken := seen[d.HostID]; taken {
		t.Errorf("after restart a new pod got %d, which %s holds", d.HostID, seen[d.HostID])
	}

	// Released, the range is free again and the file is gone.
	a2.Release("a")
	if _, err := os.Stat(filepath.Join(dir, "a", File)); !os.IsNotExist(err) {
		t.Errorf("file of a after Release: %v, want it gone", err)
	}
	e, err := a2.Get("e")
	if err != nil || e.HostID != ra.HostID {
		t.Errorf("Get(e) after a's release = %+v, %v; want a's %d", e, err, ra.HostID)
	}
	a2.Release("nobody") // holds nothing: no effect
}

func TestNewSkipsBadFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(uid, content string) {
		if err := os.MkdirAll(filepath.Join(dir, uid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, uid, File), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	good := func(host int) string {
		return `{"uidMappings":[{"hostId":` + itoa(host) + `,"containerId":0,"length":65536}],"gidMappings":[{"hostId":` + itoa(host) + `,"containerId":0,"length":65536}]}`
	}
	write("p1", good(65536*3))
	write("p2", good(65536*3)) // the same range as p1: left out
	write("p3", "{")
	write("p4", good(0))                                                 // the host's own IDs
	write("p5", good(65536*3+1))                                         // not on a boundary
	write("p6", good(65535*65536))                                       // would map 4294967295
	if err := os.MkdirAll(filepath.Join(dir, "p7"), 0o755); err != nil { // no file: no user namespace
		t.Fatal(err)
	}
	a, err := New(dir, os.WriteFile)
	if err == nil {
		t.Fatal("New: no error for bad files")
	}
	for _, uid := range []string{"p2", "p3", "p4", "p5", "p6"} {
		if !strings.Contains(err.Error(), "pod "+uid+":") {
			t.Errorf("error %q does not name %s", err, uid)
		}
	}
	if strings.Contains(err.Error(), "pod p1:") || strings.Contains(err.Error(), "pod p7:") {
		t.Errorf("error %q names a good pod", err)
	}
	a.pick = func(int) int { return 2 } // slot 3, p1's
	r, err := a.Get("p2")
	if err != nil || r.HostID == 65536*3 {
		t.Errorf("Get(p2) = %+v, %v; want a range other than p1's", r, err)
	}
	if r, _ := a.Get("p1"); r.HostID != 65536*3 {
		t.Errorf("Get(p1) = %+v, want its file's range", r)
	}
}

func TestGetRefusesBadUID(t *testing.T) {
	a, _ := New(t.TempDir(), os.WriteFile)
	for _, uid := range []string{"", ".", "..", "a/b"} {
		if _, err := a.Get(uid); err == nil {
			t.Errorf("Get(%q): no error", uid)
		}
	}
}

func TestPoolExhausted(t *testing.T) {
	a, _ := New(t.TempDir(), os.WriteFile)
	for s := uint32(1); s < slots; s++ {
		a.used[s] = "x"
	}
	if _, err := a.Get("y"); err == nil {
		t.Error("Get with every range taken: no error")
	}
}

func TestShift(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	dir := t.TempDir()
	outside := t.TempDir()
	mk := func(p string, uid, gid int) {
		if err := os.Lchown(p, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "d"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "d", "f"), []byte("x"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "big"), nil, 0o644))
	must(os.WriteFile(filepath.Join(outside, "target"), nil, 0o644))
	must(os.Symlink(filepath.Join(outside, "target"), filepath.Join(dir, "link")))
	must(os.Symlink(outside, filepath.Join(dir, "dirlink")))
	mk(filepath.Join(dir, "d", "f"), 1000, 50)
	mk(filepath.Join(dir, "big"), 70000, 0)
	must(unix.Chmod(filepath.Join(dir, "d", "f"), 0o4755)) // after the chown, which drops it
	// cap_net_raw+ep, as setcap writes it (v2).
	capped := filepath.Join(dir, "d", "ping")
	must(os.WriteFile(capped, nil, 0o755))
	v2 := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	hasCaps := unix.Lsetxattr(capped, xattrCaps, v2, 0) == nil
	r := Range{HostID: 5 * Size, Size: Size}
	for range 2 { // a second run changes nothing
		must(r.Shift(dir))
	}
	check := func(p string, uid, gid uint32, mode uint32) {
		t.Helper()
		var st unix.Stat_t
		must(unix.Lstat(p, &st))
		if st.Uid != uid || st.Gid != gid || (mode != 0 && st.Mode&0o7777 != mode) {
			t.Errorf("%s: %d:%d mode %o, want %d:%d mode %o", p, st.Uid, st.Gid, st.Mode&0o7777, uid, gid, mode)
		}
	}
	h := r.HostID
	check(dir, h, h, 0)
	check(filepath.Join(dir, "d"), h, h, 0o755)
	check(filepath.Join(dir, "d", "f"), h+1000, h+50, 0o4755)
	check(filepath.Join(dir, "big"), 70000, h, 0)
	check(filepath.Join(dir, "link"), h, h, 0)
	check(filepath.Join(outside, "target"), 0, 0, 0) // never followed
	check(outside, 0, 0, 0)
	if !hasCaps {
		t.Log("no security.capability here: file capabilities not checked")
		return
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(capped, xattrCaps, buf)
	if err != nil {
		t.Fatalf("file capabilities after the shift: %v", err)
	}
	want := append([]byte{1, 0, 0, 3}, v2[4:]...)
	want = binary.LittleEndian.AppendUint32(want, h)
	if string(buf[:n]) != string(want) {
		t.Errorf("file capabilities % x, want % x (v3 for the range's root)", buf[:n], want)
	}
}

func TestCapsInRange(t *testing.T) {
	r := Range{HostID: 3 * Size, Size: Size}
	v2 := []byte{1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	v3 := func(root uint32) []byte {
		return binary.LittleEndian.AppendUint32(append([]byte{1, 0, 0, 3}, v2[4:]...), root)
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
	}{
		{"none", nil, nil},
		{"v2", v2, v3(r.HostID)},
		{"v3 root 0", v3(0), v3(r.HostID)},
		{"v3 root 1000", v3(1000), v3(r.HostID + 1000)},
		{"v3 root outside", v3(Size), nil},
		{"v1", []byte{0, 0, 0, 1, 0, 0x20, 0, 0, 0, 0, 0, 0}, nil},
		{"v2 short", v2[:12], nil},
	} {
		if got := r.capsInRange(tc.in); string(got) != string(tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, got, tc.want)
		}
	}
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		if n /= 10; n == 0 {
			return string(b)
		}
	}
}
