package runtime

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// An exec's output file that grows past its head and the spill allowance has its tail's blocks
// freed, keeping the head and the size; one that does not is left alone.
func TestTrimTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "exec.out")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := bytes.Repeat([]byte("h"), 10<<10)
	f.Write(head)
	f.Write(bytes.Repeat([]byte("x"), 512<<10))
	trimTail(path, 10<<10, 1<<20)
	if used := blocks(t, path); used < 512<<10 {
		t.Fatalf("trimmed below the spill allowance: %d bytes in use", used)
	}
	f.Write(bytes.Repeat([]byte("y"), 4<<20))
	trimTail(path, 10<<10, 1<<20)
	if used := blocks(t, path); used > 64<<10 {
		t.Errorf("%d bytes still in use after the trim", used)
	}
	f.Write([]byte("tail")) // the writer carries on appending
	st, _ := os.Stat(path)
	if want := int64(len(head) + 512<<10 + 4<<20 + 4); st.Size() != want {
		t.Errorf("size %d, want %d", st.Size(), want)
	}
	if got := readHead(path, len(head)); !bytes.Equal(got, head) {
		t.Error("the head was not kept")
	}
}

func blocks(t *testing.T, path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}
