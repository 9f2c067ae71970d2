// Package airgap imports image archives dropped into a directory, for nodes that reach no
// registry: OCI layouts or docker-archive tarballs (docker save), plain, gzip or zstd
// compressed. Archives are streamed into containerd as they are read, never staged as a second
// copy on disk, since small devices run short of space. Each archive is imported once; the
// record of what was imported lives in the state directory so a restart does not read them
// all again.
package airgap

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/klauspost/compress/zstd"
)

// Importer is what the package needs from containerd.
type Importer interface {
	Import(ctx context.Context, r io.Reader) ([]string, error)
}

// Config of a Watcher.
type Config struct {
	Dir      string // where archives are dropped
	Record   string // file remembering what was imported
	Importer Importer
	Log      *slog.Logger
	// Imported is called after new images were imported, so that pods waiting for them can
	// try again at once.
	Imported func(names []string)
	// Check, when set, vets each archive as opened (its owner and mode, say) before it is read:
	// an archive changed after the daemon started is imported again.
	Check func(path string, info os.FileInfo) error
}

// Watcher imports archives from a directory.
type Watcher struct {
	cfg  Config
	done map[string]string // file name -> identity (size, mtime, inode) when imported
}

// New returns a Watcher; call ImportAll once before pods start, then Run.
func New(cfg Config) *Watcher {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cfg: cfg, done: map[string]string{}}
	if b, err := os.ReadFile(cfg.Record); err == nil {
		_ = json.Unmarshal(b, &w.done)
	}
	return w
}

// archive says whether a file name looks like an image archive.
func archive(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	for _, ext := range []string{".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return false
}

func identity(info os.FileInfo) string {
	var ino uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		ino = st.Ino
	}
	return fmt.Sprintf("%d/%d/%d", info.Size(), info.ModTime().UnixNano(), ino)
}

// ImportAll imports every archive not imported before. Errors are logged per file; one bad
// archive does not stop the others.
func (w *Watcher) ImportAll(ctx context.Context) {
	entries, err := os.ReadDir(w.cfg.Dir)
	if err != nil {
		if !os.IsNotExist(err) {
			w.cfg.Log.Warn("read image dir", "dir", w.cfg.Dir, "err", err)
		}
		return
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && archive(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var imported []string
	for _, n := range names {
		info, err := os.Stat(filepath.Join(w.cfg.Dir, n))
		if err != nil {
			continue
		}
		id := identity(info)
		if w.done[n] == id {
			continue
		}
		start := time.Now()
		imgs, err := w.importFile(ctx, filepath.Join(w.cfg.Dir, n))
		if err != nil {
			w.cfg.Log.Error("import image archive", "file", n, "err", err)
			continue
		}
		w.cfg.Log.Info("imported image archive", "file", n, "images", imgs, "took", time.Since(start).Round(time.Millisecond))
		w.done[n] = id
		imported = append(imported, imgs...)
	}
	for n := range w.done {
		if _, err := os.Stat(filepath.Join(w.cfg.Dir, n)); os.IsNotExist(err) {
			delete(w.done, n)
		}
	}
	w.save()
	if len(imported) > 0 && w.cfg.Imported != nil {
		w.cfg.Imported(imported)
	}
}

func (w *Watcher) save() {
	b, _ := json.Marshal(w.done)
	tmp := w.cfg.Record + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err == nil {
		_ = os.Rename(tmp, w.cfg.Record)
	}
}

// importFile streams one archive into containerd, decompressing on the way.
func (w *Watcher) importFile(ctx context.Context, path string) ([]string, error) {
	// Non-blocking: a FIFO put there is refused below, never waited on.
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
		return nil, fmt.Errorf("image archive %s is not a regular file (mode %s)", path, info.Mode())
	}
	if w.cfg.Check != nil {
		if err := w.cfg.Check(path, info); err != nil {
			return nil, err
		}
	}
	r, err := Decompress(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return w.cfg.Importer.Import(ctx, r)
}

// Decompress returns a reader of the uncompressed stream, recognising gzip and zstd by their
// magic numbers; anything else passes through.
func Decompress(br *bufio.Reader) (io.ReadCloser, error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	}
	return io.NopCloser(br), nil
}

// Run imports archives as they appear, until ctx ends. A file is read once writes to it have
// been quiet for a moment, or right away when it was moved in whole (the recommended way).
func (w *Watcher) Run(ctx context.Context) error {
	if err := os.MkdirAll(w.cfg.Dir, 0o755); err != nil {
		return err
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer fw.Close()
	if err := fw.Add(w.cfg.Dir); err != nil {
		return fmt.Errorf("watch image dir: %w", err)
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-fw.Events:
			if !ok {
				return nil
			}
			if archive(filepath.Base(ev.Name)) {
				settle.Reset(500 * time.Millisecond)
			}
		case <-fw.Errors:
			settle.Reset(500 * time.Millisecond)
		case <-settle.C:
			w.ImportAll(ctx)
		}
	}
}
