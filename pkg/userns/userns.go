// Package userns gives each pod with `hostUsers: false` a user namespace of its own: a range of
// 65536 host IDs that no other pod holds, mapped to the IDs 0..65535 inside, as the kubelet's
// user namespace manager (pkg/kubelet/userns) does.
//
// The node's pool is the kubelet's default one: every ID from 65536 up, in ranges of 65536
// (host ID 0 is never mapped). The range a pod gets is written, in the kubelet's format, to the
// file "userns" of its directory (<state-dir>/pods/<uid>) before anything of the pod uses it,
// so that the pod keeps it across daemon restarts; it is free again once Release removes the
// file, with the pod's directory.
//
// runc 1.1 has no ID-mapped mounts, so what a pod's containers see must belong to the range:
// Range.Shift moves a directory tree into it (the root filesystem's copy, the files of the
// daemon's volumes), never following a symlink.
package userns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Size is how many IDs a pod's user namespace maps: 0..Size-1 inside.
const Size = 65536

// slots is the number of ranges in the pool. Range i (1 <= i < slots) is the host IDs
// i*Size..i*Size+Size-1. Range 0 holds the host's own IDs; the last one, 65535, would map
// 4294967295, which is no ID (the kernel refuses a mapping that reaches it).
const slots = 1<<32/Size - 1

// File is the name of the file that holds a pod's range in its directory.
const File = "userns"

// Range is a pod's user namespace: the host IDs HostID..HostID+Size-1, for both users and
// groups, are 0..Size-1 inside.
type Range struct {
	HostID uint32
	Size   uint32
}

// ToHost is the host ID of id inside the namespace, and whether the namespace maps it.
func (r Range) ToHost(id uint32) (uint32, bool) {
	if id >= r.Size {
		return 0, false
	}
	return r.HostID + id, true
}

// mapping and file are the kubelet's format of the file (userns_manager.go).
type mapping struct {
	HostID      uint32 `json:"hostId"`
	ContainerID uint32 `json:"containerId"`
	Length      uint32 `json:"length"`
}

type file struct {
	UIDMappings []mapping `json:"uidMappings"`
	GIDMappings []mapping `json:"gidMappings"`
}

func encode(r Range) ([]byte, error) {
	m := []mapping{{HostID: r.HostID, ContainerID: 0, Length: r.Size}}
	return json.Marshal(file{UIDMappings: m, GIDMappings: m})
}

// decode reads a file as the kubelet checks it: one mapping, the same for users and groups,
// of ID 0, Size long, on a range boundary.
func decode(b []byte) (Range, error) {
	var f file
	if err := json.Unmarshal(b, &f); err != nil {
		return Range{}, fmt.Errorf("invalid user namespace file: %w", err)
	}
	if len(f.UIDMappings) != 1 || len(f.GIDMappings) != 1 || f.UIDMappings[0] != f.GIDMappings[0] {
		return Range{}, errors.New("invalid user namespace file: want one mapping, the same for UIDs and GIDs")
	}
	m := f.UIDMappings[0]
	switch {
	case m.ContainerID != 0:
		return Range{}, errors.New("invalid user namespace file: ID 0 must be mapped")
	case m.Length != Size:
		return Range{}, fmt.Errorf("invalid user namespace file: length %d, want %d", m.Length, Size)
	case m.HostID%Size != 0 || m.HostID/Size == 0 || m.HostID/Size >= slots:
		return Range{}, fmt.Errorf("invalid user namespace file: host ID %d is not a range of the pool", m.HostID)
	}
	return Range{HostID: m.HostID, Size: Size}, nil
}

// Allocator hands out ranges to pods. It is safe for concurrent use.
type Allocator struct {
	podsDir string
	write   WriteFunc
	mu      sync.Mutex
	byPod   map[string]uint32 // pod UID -> slot
	used    map[uint32]string // slot -> pod UID
	pick    func(n int) int   // a random start in [0, n)
}

// WriteFunc replaces the file at path with data durably: whole, and still there after a crash
// or a power loss (the daemon's sandbox.WriteFileAtomic). It is given to New so that this
// package, which the runtime uses, depends on nothing of the daemon's.
type WriteFunc func(path string, data []byte, perm os.FileMode) error

// New returns an allocator for the pods whose directories are <podsDir>/<uid>, with the ranges
// their files hold taken; it records new ones with write. A file that cannot be used (unreadable, not a range of the pool, a
// range another pod's file holds too) is left out and reported in the error, which is not
// fatal: the allocator works, and that pod gets a range anew (and a new file) if it asks.
func New(podsDir string, write WriteFunc) (*Allocator, error) {
	a := &Allocator{podsDir: podsDir, write: write, byPod: map[string]uint32{}, used: map[uint32]string{}, pick: rand.IntN}
	entries, err := os.ReadDir(podsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return a, fmt.Errorf("read pod directories: %w", err)
	}
	// In name order, so that of two files holding one range, the same one wins every time.
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	var errs []error
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		uid := e.Name()
		b, err := os.ReadFile(filepath.Join(podsDir, uid, File))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			var r Range
			if r, err = decode(b); err == nil {
				err = a.record(uid, r.HostID/Size)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("pod %s: %w", uid, err))
		}
	}
	return a, errors.Join(errs...)
}

func (a *Allocator) record(uid string, slot uint32) error {
	if other, ok := a.used[slot]; ok && other != uid {
		return fmt.Errorf("range %d is pod %s's", slot*Size, other)
	}
	a.used[slot], a.byPod[uid] = uid, slot
	return nil
}

// Get returns the pod's range: the one it holds, or else a free one, recorded durably in the
// pod's directory (made if missing) before Get returns it.
func (a *Allocator) Get(uid string) (Range, error) {
	if uid == "" || uid != filepath.Base(uid) || uid == "." || uid == ".." {
		return Range{}, fmt.Errorf("user namespace for pod %q: not a pod UID", uid)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if slot, ok := a.byPod[uid]; ok {
		return Range{HostID: slot * Size, Size: Size}, nil
	}
	if len(a.used) >= slots-1 {
		return Range{}, errors.New("create user namespace: every range of the pool is taken")
	}
	// From a random start, as the kubelet's allocator does: a range says nothing of the order
	// in which pods came.
	slot := uint32(1 + a.pick(slots-1))
	for a.used[slot] != "" {
		if slot++; slot == slots {
			slot = 1
		}
	}
	r := Range{HostID: slot * Size, Size: Size}
	b, err := encode(r)
	if err != nil {
		return Range{}, err
	}
	dir := filepath.Join(a.podsDir, uid)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Range{}, fmt.Errorf("create user namespace: %w", err)
	}
	if err := a.write(filepath.Join(dir, File), b, 0o644); err != nil {
		return Range{}, fmt.Errorf("create user namespace: %w", err)
	}
	a.used[slot], a.byPod[uid] = uid, slot
	return r, nil
}

// Release frees the pod's range and removes its file. Releasing a pod that holds none does
// nothing.
func (a *Allocator) Release(uid string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	slot, ok := a.byPod[uid]
	if !ok {
		return
	}
	_ = os.Remove(filepath.Join(a.podsDir, uid, File))
	delete(a.byPod, uid)
	delete(a.used, slot)
}
