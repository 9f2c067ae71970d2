package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
)

// entry is a validated, normalized File.
type entry struct {
	name     string // clean relative path, no trailing slash
	typ      byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	mode     int64  // tar mode: permissions plus setuid/setgid/sticky
	source   string // TypeReg: host file, or
	data     []byte // TypeReg: content
	linkname string // TypeSymlink
}

// layerInfo identifies a written layer.
type layerInfo struct {
	diffID digest.Digest // sha256 of the uncompressed tar
	digest digest.Digest // sha256 of the gzip stream
	size   int64         // size of the gzip stream
}

// cleanPath turns a File path into a clean relative path, refusing paths
// that are empty, the root, or escape it.
func cleanPath(p string) (string, error) {
	c := path.Clean("/" + p)
	// path.Clean of an absolute path never escapes "/", but the original
	// must not have tried to: "../x" would silently become "x".
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", fmt.Errorf("imagebuild: path %q contains \"..\"", p)
		}
	}
	c = strings.TrimPrefix(c, "/")
	if c == "" {
		return "", fmt.Errorf("imagebuild: invalid path %q", p)
	}
	return c, nil
}

// tarMode converts the permission and special bits of m to a tar mode.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 || m&0o4000 != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 || m&0o2000 != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 || m&0o1000 != 0 {
		mode |= 0o1000
	}
	return mode
}

// layerEntries validates files, adds missing parent directories and returns
// the entries sorted by path (parents always sort before their children).
func layerEntries(files []File) ([]entry, error) {
	byName := make(map[string]*entry, len(files))
	for i := range files {
		f := &files[i]
		name, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := byName[name]; dup {
			return nil, fmt.Errorf("imagebuild: duplicate path %q", name)
		}
		e := &entry{name: name, mode: tarMode(f.Mode)}
		defaultPerm := e.mode&0o7777 == 0
		switch typ := f.Mode.Type(); typ {
		case 0:
			e.typ = tar.TypeReg
			if f.Linkname != "" {
				return nil, fmt.Errorf("imagebuild: %s: Linkname set on a regular file", name)
			}
			if f.Source != "" {
				if f.Data != nil {
					return nil, fmt.Errorf("imagebuild: %s: both Source and Data set", name)
				}
				st, err := os.Stat(f.Source)
				if err != nil {
					return nil, fmt.Errorf("imagebuild: %s: %w", name, err)
				}
				if !st.Mode().IsRegular() {
					return nil, fmt.Errorf("imagebuild: %s: source %s is not a regular file", name, f.Source)
				}
				e.source = f.Source
				if defaultPerm {
					e.mode = tarMode(st.Mode())
				}
			} else {
				e.data = f.Data
				if defaultPerm {
					e.mode = 0o644
				}
			}
		case fs.ModeDir:
			e.typ = tar.TypeDir
			if f.Source != "" || f.Data != nil || f.Linkname != "" {
				return nil, fmt.Errorf("imagebuild: %s: directory with Source, Data or Linkname", name)
			}
			if defaultPerm {
				e.mode = 0o755
			}
		case fs.ModeSymlink:
			e.typ = tar.TypeSymlink
			if f.Linkname == "" {
				return nil, fmt.Errorf("imagebuild: %s: symlink without Linkname", name)
			}
			if f.Source != "" || f.Data != nil {
				return nil, fmt.Errorf("imagebuild: %s: symlink with Source or Data", name)
			}
			e.linkname = f.Linkname
			e.mode = 0o777
		default:
			return nil, fmt.Errorf("imagebuild: %s: unsupported file type %v", name, typ)
		}
		byName[name] = e
	}

	// Implied parent directories.
	for name := range byName {
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			parent, ok := byName[dir]
			if !ok {
				byName[dir] = &entry{name: dir, typ: tar.TypeDir, mode: 0o755}
				continue
			}
			if parent.typ != tar.TypeDir {
				return nil, fmt.Errorf("imagebuild: %s: parent %s is not a directory", name, dir)
			}
		}
	}

	entries := make([]entry, 0, len(byName))
	for _, e := range byName {
		entries = append(entries, *e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}

// countingHash hashes and counts what is written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func hashDigest(h hash.Hash) digest.Digest {
	return digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
}

// writeLayer writes entries as a gzip-compressed tar to out and returns its
// digests. The output depends only on the entries and file contents.
func writeLayer(out io.Writer, entries []entry) (layerInfo, error) {
	compressed := &countingHash{h: sha256.New()}
	gz, err := gzip.NewWriterLevel(io.MultiWriter(compressed, out), gzip.BestCompression)
	if err != nil {
		return layerInfo{}, err
	}
	// gzip.Writer leaves Header.ModTime zero: no timestamp (MTIME 0), no name.
	diffID, _, err := writeTar(gz, entries)
	if err != nil {
		return layerInfo{}, err
	}
	if err := gz.Close(); err != nil {
		return layerInfo{}, err
	}
	return layerInfo{
		diffID: diffID,
		digest: hashDigest(compressed.h),
		size:   compressed.n,
	}, nil
}

// writeRawLayer writes entries as an uncompressed tar to out, as docker save
// stores layers; its digest is its diffID.
func writeRawLayer(out io.Writer, entries []entry) (layerInfo, error) {
	diffID, size, err := writeTar(out, entries)
	if err != nil {
		return layerInfo{}, err
	}
	return layerInfo{diffID: diffID, digest: diffID, size: size}, nil
}

// writeTar writes entries as a tar to out and returns the tar's digest and
// size.
func writeTar(out io.Writer, entries []entry) (digest.Digest, int64, error) {
	h := &countingHash{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(h, out))
	for i := range entries {
		if err := writeEntry(tw, &entries[i]); err != nil {
			return "", 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return "", 0, err
	}
	return hashDigest(h.h), h.n, nil
}

func writeEntry(tw *tar.Writer, e *entry) error {
	hdr := &tar.Header{
		Typeflag: e.typ,
		Name:     e.name,
		Mode:     e.mode,
		ModTime:  epoch,
	}
	switch e.typ {
	case tar.TypeDir:
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	case tar.TypeSymlink:
		hdr.Linkname = e.linkname
		return tw.WriteHeader(hdr)
	}

	if e.source == "" {
		hdr.Size = int64(len(e.data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(e.data)
		return err
	}

	f, err := os.Open(e.source)
	if err != nil {
		return fmt.Errorf("imagebuild: %s: %w", e.name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("imagebuild: %s: %w", e.name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("imagebuild: %s: source %s is not a regular file", e.name, e.source)
	}
	hdr.Size = st.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyN(tw, f, hdr.Size)
	if err != nil {
		return fmt.Errorf("imagebuild: %s: reading %s: %w (copied %d of %d bytes)", e.name, e.source, err, n, hdr.Size)
	}
	return nil
}
