package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes/wire"
)

// Manifest kinds (the "weft" key of a manifest block).
const (
	kindFile = "file/v1"
	kindDir  = "dir/v1"
)

// maxManifestEntries bounds the entries of a directory manifest and the
// chunks of a file manifest.
const maxManifestEntries = 1 << 17

// manifest is a dag-cbor block describing a chunked blob (Kind file/v1:
// Size and Chunks) or a directory tree (Kind dir/v1: Entries).
type manifest struct {
	Kind    string   `cbor:"weft"`
	Size    int64    `cbor:"size,omitempty"`
	Chunks  [][]byte `cbor:"chunks,omitempty"`
	Entries []entry  `cbor:"entries,omitempty"`
}

// entry is one path of a directory tree: a directory (Dir), a symbolic link
// (Link) or a regular file (Size and Chunks, raw CIDs in order).
type entry struct {
	Path   string   `cbor:"path"`
	Mode   uint32   `cbor:"mode"`
	Dir    bool     `cbor:"dir,omitempty"`
	Link   string   `cbor:"link,omitempty"`
	Size   int64    `cbor:"size,omitempty"`
	Chunks [][]byte `cbor:"chunks,omitempty"`
}

var (
	encMode = mustEnc()
	decMode = mustDec()
)

func mustEnc() cbor.EncMode { return wire.Enc }

func mustDec() cbor.DecMode {
	return wire.MustDecMode(wire.DecOptions(wire.Limits{Nesting: 8, Elements: maxManifestEntries, MapPairs: 16}))
}

func decodeManifest(data []byte) (*manifest, error) {
	if len(data) > MaxBlockSize {
		return nil, ErrTooLarge
	}
	var m manifest
	if err := decMode.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBlock, err)
	}
	switch m.Kind {
	case kindFile:
		if !sizeFits(m.Size, m.Chunks) || len(m.Entries) > 0 {
			return nil, fmt.Errorf("%w: bad file manifest", ErrBadBlock)
		}
	case kindDir:
		if len(m.Chunks) > 0 {
			return nil, fmt.Errorf("%w: bad dir manifest", ErrBadBlock)
		}
		for _, e := range m.Entries {
			if !sizeFits(e.Size, e.Chunks) {
				return nil, fmt.Errorf("%w: bad size of %q", ErrBadBlock, e.Path)
			}
		}
	default:
		return nil, fmt.Errorf("%w: not a manifest", ErrBadBlock)
	}
	return &m, nil
}

// sizeFits says whether size bytes can be made of chunks (no block is
// over MaxBlockSize), so that a manifest cannot announce a size its chunks
// could never reach.
func sizeFits(size int64, chunks [][]byte) bool {
	return size >= 0 && size <= int64(len(chunks))*MaxBlockSize
}

func rawCIDs(bs [][]byte) ([]cid.Cid, error) {
	out := make([]cid.Cid, 0, len(bs))
	for _, b := range bs {
		c, err := cid.Cast(b)
		if err != nil {
			return nil, fmt.Errorf("%w: bad chunk CID: %v", ErrBadBlock, err)
		}
		if c.Prefix().Codec != cid.Raw || CheckCID(c) != nil {
			return nil, fmt.Errorf("%w: chunk %s is not a raw sha2-256 CID", ErrBadBlock, c)
		}
		out = append(out, c)
	}
	return out, nil
}

func (m *manifest) chunkCIDs() ([]cid.Cid, error) { return rawCIDs(m.Chunks) }

// links returns every chunk of the manifest, without duplicates.
func (m *manifest) links() ([]cid.Cid, error) {
	if m.Kind == kindFile {
		return m.chunkCIDs()
	}
	seen := map[cid.Cid]bool{}
	var out []cid.Cid
	for _, e := range m.Entries {
		cs, err := rawCIDs(e.Chunks)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// PutDir stores the tree under dir (regular files, directories and
// symbolic links; modes kept, owners and times not) and returns the CID of
// its manifest. The same tree gives the same CID. The tree may belong to
// someone else (a partition's out/, stored by root): it is walked from
// directory descriptors without following a symbolic link (walkTree), so
// that nothing outside dir is read whatever its owner swaps meanwhile.
func (s *Store) PutDir(dir string) (cid.Cid, error) {
	var entries []entry
	buf := make([]byte, ChunkSize)
	err := walkTree(dir, func(it treeItem) error {
		e := entry{Path: it.rel, Mode: uint32(it.mode.Perm())}
		switch {
		case it.mode.IsDir():
			e.Dir = true
		case it.mode&fs.ModeSymlink != 0:
			t, err := it.readlink()
			if err != nil {
				return err
			}
			e.Link = t
		case it.mode.IsRegular():
			f, err := it.open()
			if err != nil {
				return err
			}
			defer f.Close()
			if err := s.putChunks(f, buf, &e); err != nil {
				return err
			}
		default:
			return fmt.Errorf("store: %s: only regular files, directories and symbolic links can be stored", it.rel)
		}
		entries = append(entries, e)
		if len(entries) > maxManifestEntries {
			return fmt.Errorf("%w: more than %d entries", ErrTooLarge, maxManifestEntries)
		}
		return nil
	})
	if err != nil {
		return cid.Undef, fmt.Errorf("store: put dir: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	c, err := s.putManifest(&manifest{Kind: kindDir, Entries: entries})
	if err != nil {
		return cid.Undef, err
	}
	return c, s.Sync()
}

// treeItem is one entry of a tree being stored.
type treeItem struct {
	rel      string // slash-separated, relative to the tree's root
	mode     fs.FileMode
	readlink func() (string, error)
	// open opens the very regular file the walk saw (an error if it was
	// replaced since).
	open func() (*os.File, error)
}

// putChunks stores f's content in chunks into e.
func (s *Store) putChunks(f *os.File, buf []byte, e *entry) error {
	for {
		n, rerr := io.ReadFull(f, buf)
		if n > 0 {
			c, err := s.PutRaw(buf[:n])
			if err != nil {
				return err
			}
			e.Chunks = append(e.Chunks, c.Bytes())
			e.Size += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// DirEntry describes one path of a stored directory tree.
type DirEntry struct {
	// Path is slash-separated, relative to the tree's root.
	Path string `json:"path"`
	// Mode is the permission bits.
	Mode uint32 `json:"mode"`
	// Dir is true for directories.
	Dir bool `json:"dir,omitempty"`
	// Link is a symbolic link's target.
	Link string `json:"link,omitempty"`
	// Size of a regular file in bytes.
	Size int64 `json:"size"`
}

// ListDir returns the entries of the stored tree c, sorted by path.
func (s *Store) ListDir(c cid.Cid) ([]DirEntry, error) {
	m, err := s.dirManifest(c)
	if err != nil {
		return nil, err
	}
	out := make([]DirEntry, len(m.Entries))
	for i, e := range m.Entries {
		out[i] = DirEntry{Path: e.Path, Mode: e.Mode, Dir: e.Dir, Link: e.Link, Size: e.Size}
	}
	return out, nil
}

func (s *Store) dirManifest(c cid.Cid) (*manifest, error) {
	b, err := s.Block(c)
	if err != nil {
		return nil, err
	}
	m, err := decodeManifest(b)
	if err != nil || m.Kind != kindDir {
		return nil, fmt.Errorf("%w: %s is not a directory tree", ErrBadBlock, c)
	}
	return m, nil
}

// GetDir writes the stored tree c into outDir (created; it must be empty
// or absent). Every block must be in the store (fetch it first); paths
// that would leave outDir and links pointing outside it are refused.
func (s *Store) GetDir(ctx context.Context, c cid.Cid, outDir string) error {
	m, err := s.dirManifest(c)
	if err != nil {
		return err
	}
	if ents, err := os.ReadDir(outDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("store: %s is not empty", outDir)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	// The links of the tree: nothing is written through one, and no link
	// goes through another, so checking each path and target lexically is
	// enough to keep everything inside outDir (a target such as "x/up/.."
	// is lexically inside, but leaves the tree when x/up is a link to "..").
	links := map[string]bool{}
	for _, e := range m.Entries {
		if e.Link != "" {
			links[e.Path] = true
		}
	}
	var dirs []entry
	for _, e := range m.Entries {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		dst, err := safeJoin(outDir, e.Path)
		if err != nil {
			return err
		}
		for i := range len(e.Path) {
			if e.Path[i] == '/' && links[e.Path[:i]] {
				return fmt.Errorf("%w: %s is under the link %s", ErrBadBlock, e.Path, e.Path[:i])
			}
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		switch {
		case e.Dir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			dirs = append(dirs, e)
		case e.Link != "":
			t := filepath.Join(filepath.Dir(e.Path), e.Link)
			if filepath.IsAbs(e.Link) || t == ".." || strings.HasPrefix(t, "../") || linkThroughLink(e, links) {
				return fmt.Errorf("store: link %s -> %s points outside the tree", e.Path, e.Link)
			}
			if err := os.Symlink(e.Link, dst); err != nil {
				return fmt.Errorf("store: %w", err)
			}
		default:
			if err := s.writeFile(dst, e); err != nil {
				return err
			}
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- { // modes last: a read-only dir could not be filled
		dst, _ := safeJoin(outDir, dirs[i].Path)
		if err := os.Chmod(dst, os.FileMode(dirs[i].Mode&0o777)); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	return nil
}

// linkThroughLink reports whether the target of the link e goes through a
// link of the tree (a path component other than the last one that names a
// link): lexically its target may look inside the tree while on disk it
// resolves elsewhere.
func linkThroughLink(e entry, links map[string]bool) bool {
	cur := filepath.Dir(e.Path)
	parts := strings.Split(filepath.ToSlash(e.Link), "/")
	for i, p := range parts {
		if p == "" || p == "." {
			continue
		}
		cur = filepath.ToSlash(filepath.Join(cur, p))
		if i < len(parts)-1 && links[cur] {
			return true
		}
	}
	return false
}

func (s *Store) writeFile(dst string, e entry) error {
	chunks, err := rawCIDs(e.Chunks)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(e.Mode&0o777)|0o200)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	var n int64
	for _, c := range chunks {
		b, err := s.Block(c)
		if err != nil {
			f.Close()
			return err
		}
		if n+int64(len(b)) > e.Size {
			// Stop here: a chunk listed over and over would otherwise
			// fill the disk before the sizes are compared.
			f.Close()
			return fmt.Errorf("%w: %s: chunks add up to more than the %d bytes the manifest says", ErrBadBlock, e.Path, e.Size)
		}
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("store: %w", err)
		}
		n += int64(len(b))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n != e.Size {
		return fmt.Errorf("%w: %s: %d bytes, manifest says %d", ErrBadBlock, e.Path, n, e.Size)
	}
	if err := os.Chmod(dst, os.FileMode(e.Mode&0o777)); err != nil {
		return errors.Join(fmt.Errorf("store: %w", err))
	}
	return nil
}

// OpenPath returns a reader of the regular file at path (slash-separated)
// inside the stored tree c, and its size.
func (s *Store) OpenPath(c cid.Cid, path string) (io.ReadCloser, int64, error) {
	m, err := s.dirManifest(c)
	if err != nil {
		return nil, 0, err
	}
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Path >= path })
	if i == len(m.Entries) || m.Entries[i].Path != path {
		return nil, 0, fmt.Errorf("%w: %s has no %q", ErrNotFound, c, path)
	}
	e := m.Entries[i]
	if e.Dir || e.Link != "" {
		return nil, 0, fmt.Errorf("store: %s/%s is not a regular file", c, path)
	}
	chunks, err := rawCIDs(e.Chunks)
	if err != nil {
		return nil, 0, err
	}
	return &chunkReader{s: s, chunks: chunks, left: e.Size}, e.Size, nil
}
