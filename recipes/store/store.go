package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/weftgrid/weft/recipes"
)

// Errors returned by the store.
var (
	// ErrNotFound means a block is not in the store.
	ErrNotFound = errors.New("store: not found")
	// ErrHashMismatch means data does not hash to the CID it was given with.
	ErrHashMismatch = errors.New("store: data does not match its CID")
	// ErrBadCID means a CID the store does not accept (not CIDv1 sha2-256
	// with codec raw or dag-cbor).
	ErrBadCID = errors.New("store: unsupported CID")
	// ErrTooLarge means a block over MaxBlockSize.
	ErrTooLarge = errors.New("store: block too large")
	// ErrBadBlock means a dag-cbor block that is neither a manifest nor a recipe.
	ErrBadBlock = errors.New("store: malformed block")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store: closed")
)

// ChunkSize is the size of the raw chunks blobs are cut into.
const ChunkSize = 1 << 20

// MaxBlockSize bounds every block (chunks, manifests, recipes).
const MaxBlockSize = 8 << 20

// Store keeps content-addressed blocks in a directory: raw chunks (codec
// raw), manifests of blobs and directory trees, and recipes (codec
// dag-cbor, their canonical encoding). Writes are atomic (temporary file,
// fsync, rename), so a crash leaves either the whole block or none.
type Store struct {
	dir string

	lock *os.File // held (shared) while the store is open; nil on some platforms

	mu      sync.Mutex
	closed  bool
	pending map[string]bool // block files renamed into place, not yet fsynced
	syncing chan struct{}   // held by the Sync in progress
}

// Open opens (creating) the store in dir.
func Open(dir string) (*Store, error) {
	for _, d := range []string{"blocks", "tmp", "recipes", "roots"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	// Leftovers of writes interrupted by a crash, unless another store
	// (another process: the CLI, the node) has the directory open: then
	// they may be its writes in progress.
	lock, err := lockDir(dir, func() {
		if ents, err := os.ReadDir(filepath.Join(dir, "tmp")); err == nil {
			for _, e := range ents {
				_ = os.Remove(filepath.Join(dir, "tmp", e.Name()))
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &Store{dir: dir, lock: lock, pending: map[string]bool{}, syncing: make(chan struct{}, 1)}, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close marks the store closed; later writes fail with ErrClosed. It is
// safe to call more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && s.lock != nil {
		_ = s.lock.Close()
	}
	s.closed = true
	return nil
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// CheckCID returns an error unless c is a CID this store accepts.
func CheckCID(c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%w: undefined", ErrBadCID)
	}
	p := c.Prefix()
	// A sha2-256 multihash may carry a truncated digest: no block hashes
	// to it, and Digest refuses it, so neither does the store.
	if p.Version != 1 || p.MhType != multihash.SHA2_256 || p.MhLength != sha256.Size || (p.Codec != cid.Raw && p.Codec != cid.DagCBOR) {
		return fmt.Errorf("%w: %s (want CIDv1, sha2-256, raw or dag-cbor)", ErrBadCID, c)
	}
	return nil
}

// Verify checks that data hashes to c.
func Verify(c cid.Cid, data []byte) error {
	if err := CheckCID(c); err != nil {
		return err
	}
	if len(data) > MaxBlockSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	if got := recipes.CIDOf(c.Prefix().Codec, data); !got.Equals(c) {
		return fmt.Errorf("%w: expected %s, got %s", ErrHashMismatch, c, got)
	}
	return nil
}

// Digest returns the sha2-256 digest c names (for checking data hashed
// while it streams in), or an error unless CheckCID accepts c.
func Digest(c cid.Cid) ([]byte, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	dh, err := multihash.Decode(c.Hash())
	if err != nil || len(dh.Digest) != sha256.Size {
		return nil, fmt.Errorf("%w: %s: bad sha2-256 multihash", ErrBadCID, c)
	}
	return dh.Digest, nil
}

func (s *Store) path(c cid.Cid) string {
	k := c.String()
	return filepath.Join(s.dir, "blocks", k[len(k)-2:], k)
}

// HasBlock reports whether the block c is stored.
func (s *Store) HasBlock(c cid.Cid) bool {
	if CheckCID(c) != nil {
		return false
	}
	_, err := os.Stat(s.path(c))
	return err == nil
}

// Block returns the block c, checked against its hash.
func (s *Store) Block(c cid.Cid) ([]byte, error) {
	if err := CheckCID(c); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(s.path(c))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", c, err)
	}
	if err := Verify(c, b); err != nil {
		// Damaged (e.g. by a crash before Sync): drop it so it is fetched again.
		_ = os.Remove(s.path(c))
		return nil, fmt.Errorf("%w: %s was damaged and has been removed", ErrNotFound, c)
	}
	return b, nil
}

// BlockSize returns the size of the stored block c.
func (s *Store) BlockSize(c cid.Cid) (int64, error) {
	if err := CheckCID(c); err != nil {
		return 0, err
	}
	st, err := os.Stat(s.path(c))
	if err != nil {
		return 0, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	return st.Size(), nil
}

// ReadBlockInto reads block c into buf (grown as needed) and returns it,
// without checking its hash (for serving: the receiver checks it).
func (s *Store) ReadBlockInto(c cid.Cid, buf []byte) ([]byte, error) {
	return s.AppendBlock(buf[:0], c)
}

// AppendBlock appends block c to dst (grown as needed) and returns the
// extended slice, without checking the hash (for serving: the receiver
// checks it). A provider leaves room for a frame header in front of the
// data, so that header and block go out in one write with no extra copy.
func (s *Store) AppendBlock(dst []byte, c cid.Cid) ([]byte, error) {
	if err := CheckCID(c); err != nil {
		return dst, err
	}
	f, err := os.Open(s.path(c))
	if errors.Is(err, os.ErrNotExist) {
		return dst, fmt.Errorf("%w: %s", ErrNotFound, c)
	}
	if err != nil {
		return dst, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return dst, err
	}
	if st.Size() > MaxBlockSize {
		return dst, fmt.Errorf("%w: %s", ErrTooLarge, c)
	}
	n := int(st.Size())
	dst = slices.Grow(dst, n)
	if _, err := io.ReadFull(f, dst[len(dst):len(dst)+n]); err != nil {
		return dst, fmt.Errorf("store: read %s: %w", c, err)
	}
	return dst[:len(dst)+n], nil
}

// PutBlock verifies data against c and stores it. Storing a block that is
// already there does nothing. The block is durable after the next Sync.
func (s *Store) PutBlock(c cid.Cid, data []byte) error {
	if err := Verify(c, data); err != nil {
		return err
	}
	return s.putVerified(c, data)
}

// PutVerifiedBlock stores a block whose data the caller has already checked
// against c with Verify (a transfer hashes blocks as they stream in).
func (s *Store) PutVerifiedBlock(c cid.Cid, data []byte) error {
	if err := CheckCID(c); err != nil {
		return err
	}
	return s.putVerified(c, data)
}

// putVerified writes a block whose hash was checked: temporary file, then
// rename into place; Sync makes it durable.
func (s *Store) putVerified(c cid.Cid, data []byte) error {
	if s.isClosed() {
		return ErrClosed
	}
	dst := s.path(c)
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blk-*")
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		startWriteback(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: write %s: %w", c, err)
	}
	s.mu.Lock()
	s.pending[dst] = true
	s.mu.Unlock()
	return nil
}

// Sync makes every block written since the last Sync durable (fsync of the
// files, then of their directories). Put, PutBytes, PutFile, PutDir and
// PutRecipe call it before returning; callers of PutBlock (transfers) call
// it when a unit of content is complete. Batching the fsyncs matters: one
// per 1 MiB block would bound throughput by the disk's sync latency. The
// fsyncs run syncWorkers at a time, so that the file system can commit
// them together (ext4 joins concurrent fsyncs into one journal commit),
// and each block's writeback was started when it was written.
//
// One Sync runs at a time: a block written before a Sync that another Sync
// already took is durable only once that one is done, so the second waits
// for it rather than return at once with nothing left to do.
func (s *Store) Sync() error {
	s.syncing <- struct{}{}
	defer func() { <-s.syncing }()
	s.mu.Lock()
	paths := s.pending
	s.pending = map[string]bool{}
	s.mu.Unlock()
	files := make([]string, 0, len(paths))
	dirs := map[string]bool{}
	for p := range paths {
		files = append(files, p)
		dirs[filepath.Dir(p)] = true
	}
	errs := syncAll(files, true)
	errs = append(errs, syncAll(slices.Collect(maps.Keys(dirs)), false)...)
	if len(errs) > 0 {
		return fmt.Errorf("store: sync: %w", errors.Join(errs...))
	}
	return nil
}

// syncWorkers bounds the fsyncs in flight.
const syncWorkers = 16

// syncAll fsyncs paths, syncWorkers at a time; a file removed meanwhile
// (a damaged block dropped) is no error when missingOK.
func syncAll(paths []string, missingOK bool) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		next = make(chan string)
	)
	for range min(syncWorkers, len(paths)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := syncFile(p); err != nil && !(missingOK && errors.Is(err, os.ErrNotExist)) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
	return errs
}

// syncFile fsyncs one path (a variable for tests).
var syncFile = syncPath

func syncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// PutRaw stores data as one raw block and returns its CID (durable after Sync).
func (s *Store) PutRaw(data []byte) (cid.Cid, error) {
	c := recipes.CIDOf(cid.Raw, data)
	return c, s.putVerified(c, data)
}

// PutRecipe stores the recipe's canonical encoding (its CID is the
// recipe's) and records it in the recipe list.
func (s *Store) PutRecipe(r *recipes.Recipe) (cid.Cid, error) {
	data := r.Canonical()
	c := recipes.CIDOf(cid.DagCBOR, data)
	if len(data) > MaxBlockSize {
		return cid.Undef, ErrTooLarge
	}
	if err := s.putVerified(c, data); err != nil {
		return cid.Undef, err
	}
	if err := s.markRecipe(c); err != nil {
		return cid.Undef, err
	}
	return c, s.Sync()
}

func (s *Store) markRecipe(c cid.Cid) error {
	p := filepath.Join(s.dir, "recipes", c.String())
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Recipe returns the recipe c from the store (and records it in the list
// when it came from a transfer).
func (s *Store) Recipe(c cid.Cid) (*recipes.Recipe, error) {
	if c.Prefix().Codec != cid.DagCBOR {
		return nil, fmt.Errorf("%w: %s is not a recipe CID (codec must be dag-cbor)", ErrBadCID, c)
	}
	b, err := s.Block(c)
	if err != nil {
		return nil, err
	}
	r, err := recipes.DecodeCanonical(b)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", c, err)
	}
	// Only a recipe whose artifacts are all here joins the list (which is
	// announced, see Roots): a fetch cut after the recipe's own block
	// leaves a recipe this node cannot serve.
	if _, err := os.Stat(filepath.Join(s.dir, "recipes", c.String())); err != nil && s.Has(c) {
		_ = s.markRecipe(c)
	}
	return r, nil
}

// MarkRoot records c as content this node announces (a published recipe,
// an artifact, a batch result, something fetched): Roots lists them for
// re-announcing.
func (s *Store) MarkRoot(c cid.Cid) error {
	if err := CheckCID(c); err != nil {
		return err
	}
	p := filepath.Join(s.dir, "roots", c.String())
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// Roots lists the CIDs recorded with MarkRoot and the recipes, sorted.
func (s *Store) Roots() ([]cid.Cid, error) {
	seen := map[cid.Cid]bool{}
	var out []cid.Cid
	for _, d := range []string{"roots", "recipes"} {
		ents, err := os.ReadDir(filepath.Join(s.dir, d))
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		for _, e := range ents {
			if c, err := cid.Decode(e.Name()); err == nil && !seen[c] && s.HasBlock(c) {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// Recipes lists the CIDs of the recipes in the store, sorted.
func (s *Store) Recipes() ([]cid.Cid, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, "recipes"))
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	var out []cid.Cid
	for _, e := range ents {
		if c, err := cid.Decode(e.Name()); err == nil && s.HasBlock(c) {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// Put stores a blob read from r: one raw block when it fits in a chunk,
// else raw chunks plus a file manifest. It returns the blob's CID.
func (s *Store) Put(r io.Reader) (cid.Cid, error) {
	buf := make([]byte, ChunkSize)
	var chunks [][]byte
	var size int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			c, perr := s.PutRaw(buf[:n])
			if perr != nil {
				return cid.Undef, perr
			}
			chunks = append(chunks, c.Bytes())
			size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return cid.Undef, fmt.Errorf("store: read: %w", err)
		}
	}
	var c cid.Cid
	var err error
	switch len(chunks) {
	case 0:
		c, err = s.PutRaw(nil)
	case 1:
		c, err = cid.Cast(chunks[0])
	default:
		c, err = s.putManifest(&manifest{Kind: kindFile, Size: size, Chunks: chunks})
	}
	if err != nil {
		return cid.Undef, err
	}
	return c, s.Sync()
}

// PutBytes is Put of b.
func (s *Store) PutBytes(b []byte) (cid.Cid, error) { return s.Put(bytes.NewReader(b)) }

// PutFile is Put of the file at path.
func (s *Store) PutFile(path string) (cid.Cid, error) {
	f, err := os.Open(path)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	return s.Put(f)
}

func (s *Store) putManifest(m *manifest) (cid.Cid, error) {
	data, err := encMode.Marshal(m)
	if err != nil {
		return cid.Undef, fmt.Errorf("store: encode manifest: %w", err)
	}
	if len(data) > MaxBlockSize {
		return cid.Undef, fmt.Errorf("%w: manifest of %d bytes", ErrTooLarge, len(data))
	}
	c := recipes.CIDOf(cid.DagCBOR, data)
	return c, s.putVerified(c, data)
}

// Has reports whether the whole content c (the block and every block it
// links to, recursively) is in the store.
func (s *Store) Has(c cid.Cid) bool {
	miss, err := s.Missing(c)
	return err == nil && len(miss) == 0
}

// Missing walks the content c and returns the blocks that are not in the
// store and whose parents are (so a fetch can ask exactly for them).
func (s *Store) Missing(c cid.Cid) ([]cid.Cid, error) {
	var miss []cid.Cid
	seen := map[cid.Cid]bool{}
	stack := []cid.Cid{c}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[n] {
			continue
		}
		seen[n] = true
		if err := CheckCID(n); err != nil {
			return nil, err
		}
		if n.Prefix().Codec == cid.Raw {
			if !s.HasBlock(n) {
				miss = append(miss, n)
			}
			continue
		}
		b, err := s.Block(n)
		if errors.Is(err, ErrNotFound) {
			miss = append(miss, n)
			continue
		}
		if err != nil {
			return nil, err
		}
		links, err := Links(n, b)
		if err != nil {
			return nil, err
		}
		// In link order: a file's chunks are listed first to last.
		for i := len(links) - 1; i >= 0; i-- {
			stack = append(stack, links[i])
		}
	}
	return miss, nil
}

// Open returns a reader of the blob c and its size. The whole blob must be
// in the store (see Has).
func (s *Store) Open(c cid.Cid) (io.ReadCloser, int64, error) {
	if err := CheckCID(c); err != nil {
		return nil, 0, err
	}
	if c.Prefix().Codec == cid.Raw {
		size, err := s.BlockSize(c)
		if err != nil {
			return nil, 0, err
		}
		return &chunkReader{s: s, chunks: []cid.Cid{c}, left: size}, size, nil
	}
	b, err := s.Block(c)
	if err != nil {
		return nil, 0, err
	}
	m, err := decodeManifest(b)
	if err != nil || m.Kind != kindFile {
		return nil, 0, fmt.Errorf("%w: %s is not a blob", ErrBadBlock, c)
	}
	chunks, err := m.chunkCIDs()
	if err != nil {
		return nil, 0, err
	}
	return &chunkReader{s: s, chunks: chunks, left: m.Size}, m.Size, nil
}

// Get returns the whole blob c (at most max bytes; 0 means MaxBlockSize).
func (s *Store) Get(c cid.Cid, max int64) ([]byte, error) {
	if max <= 0 {
		max = MaxBlockSize
	}
	rc, size, err := s.Open(c)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > max {
		return nil, fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrTooLarge, c, size, max)
	}
	return io.ReadAll(io.LimitReader(rc, max))
}

// chunkReader reads a chunked blob chunk by chunk, each checked against
// its hash (Block), so damaged content fails instead of reading short. It
// yields exactly the size the manifest gives, or fails: chunks that add up
// to more (the same chunk listed over and over) are not read past it, and
// chunks that add up to less end in an error, not a short blob.
type chunkReader struct {
	s      *Store
	chunks []cid.Cid
	cur    []byte
	left   int64 // bytes the manifest says remain after cur
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if len(r.chunks) == 0 {
			if r.left != 0 {
				return 0, fmt.Errorf("%w: chunks end %d bytes before the size the manifest gives", ErrBadBlock, r.left)
			}
			return 0, io.EOF
		}
		b, err := r.s.Block(r.chunks[0])
		if err != nil {
			return 0, err
		}
		if int64(len(b)) > r.left {
			return 0, fmt.Errorf("%w: chunks add up to more than the size the manifest gives", ErrBadBlock)
		}
		r.chunks = r.chunks[1:]
		r.cur = b
		r.left -= int64(len(b))
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *chunkReader) Close() error { r.cur, r.chunks = nil, nil; return nil }

// Kind of a block, as far as the store knows.
type Kind int

// Block kinds.
const (
	KindUnknown Kind = iota
	KindChunk
	KindFile
	KindDir
	KindRecipe
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindChunk:
		return "chunk"
	case KindFile:
		return "file"
	case KindDir:
		return "dir"
	case KindRecipe:
		return "recipe"
	}
	return "unknown"
}

// KindOf tells what block data (with CID c) is.
func KindOf(c cid.Cid, data []byte) Kind {
	if c.Prefix().Codec == cid.Raw {
		return KindChunk
	}
	if m, err := decodeManifest(data); err == nil {
		if m.Kind == kindDir {
			return KindDir
		}
		return KindFile
	}
	if _, err := recipes.DecodeCanonical(data); err == nil {
		return KindRecipe
	}
	return KindUnknown
}

// Links returns the CIDs block data (with CID c) refers to: a manifest's
// chunks, a recipe's artifacts; none for a raw chunk. An unknown dag-cbor
// block is ErrBadBlock.
func Links(c cid.Cid, data []byte) ([]cid.Cid, error) {
	if c.Prefix().Codec == cid.Raw {
		return nil, nil
	}
	if m, err := decodeManifest(data); err == nil {
		return m.links()
	}
	if r, err := recipes.DecodeCanonical(data); err == nil {
		return r.ArtifactCIDs(), nil
	}
	return nil, fmt.Errorf("%w: %s is neither a manifest nor a recipe", ErrBadBlock, c)
}

// ctxErr returns ctx's error, if any, for long loops.
func ctxErr(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

// safeJoin joins a manifest path under root, refusing paths that leave it.
func safeJoin(root, p string) (string, error) {
	if p == "" || filepath.IsAbs(p) || strings.Contains(p, "\\") {
		return "", fmt.Errorf("%w: bad path %q", ErrBadBlock, p)
	}
	clean := filepath.Clean(p)
	if clean == "." || clean == ".." || strings.HasPrefix(clean, "../") || clean != p {
		return "", fmt.Errorf("%w: bad path %q", ErrBadBlock, p)
	}
	return filepath.Join(root, clean), nil
}
