package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/weftgrid/weft/recipes"
)

// fileManifest stores a file manifest that says size but lists chunks.
func fileManifest(t *testing.T, s *Store, size int64, chunks ...cid.Cid) cid.Cid {
	t.Helper()
	m := &manifest{Kind: kindFile, Size: size}
	for _, c := range chunks {
		m.Chunks = append(m.Chunks, c.Bytes())
	}
	c, err := s.putManifest(m)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A manifest whose chunks add up to more than its size: Open must not
// hand out more bytes than the size it returns, nor Get a silently cut
// blob.
func TestOpenChunksLongerThanSize(t *testing.T) {
	s := newStore(t)
	a, _ := s.PutRaw(bytes.Repeat([]byte{'a'}, 10))
	c := fileManifest(t, s, 1, a, a, a)
	rc, size, err := s.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	if err == nil {
		t.Fatalf("Open read %d bytes of a blob whose size is %d, no error", len(got), size)
	}
	if b, err := s.Get(c, 5); err == nil {
		t.Fatalf("Get returned %q (%d bytes) of a blob of size 1, no error", b, len(b))
	}
}

// A manifest whose chunks add up to less than its size: the blob must not
// read short without an error.
func TestOpenChunksShorterThanSize(t *testing.T) {
	s := newStore(t)
	a, _ := s.PutRaw(bytes.Repeat([]byte{'a'}, 10))
	c := fileManifest(t, s, 15, a)
	if b, err := s.Get(c, 0); err == nil {
		t.Fatalf("Get returned %d bytes of a blob of size 15, no error", len(b))
	}
}

// A size no list of chunks could reach is refused up front.
func TestManifestSizeBeyondChunks(t *testing.T) {
	s := newStore(t)
	a, _ := s.PutRaw([]byte("a"))
	c := fileManifest(t, s, 1<<62, a)
	if _, size, err := s.Open(c); err == nil {
		t.Fatalf("Open of a 1-chunk blob announcing %d bytes succeeded", size)
	}
}

// GetDir writes no more than an entry's size: the same chunk listed many
// times under a small size must not fill the disk before the check.
func TestGetDirStopsAtEntrySize(t *testing.T) {
	s := newStore(t)
	big, _ := s.PutRaw(bytes.Repeat([]byte{'z'}, ChunkSize))
	e := entry{Path: "f", Mode: 0o644, Size: 1}
	for range 64 {
		e.Chunks = append(e.Chunks, big.Bytes())
	}
	c, err := s.putManifest(&manifest{Kind: kindDir, Entries: []entry{e}})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.GetDir(context.Background(), c, out); !errors.Is(err, ErrBadBlock) {
		t.Fatalf("GetDir: %v, want ErrBadBlock", err)
	}
	if st, err := os.Stat(filepath.Join(out, "f")); err == nil && st.Size() > e.Size {
		t.Fatalf("GetDir wrote %d bytes of an entry of %d", st.Size(), e.Size)
	}
}

// A recipe whose block arrived without its artifacts (a cut fetch) is not
// listed (and so not announced) when it is read.
func TestRecipeWithoutArtifactsNotListed(t *testing.T) {
	s := newStore(t)
	b, err := os.ReadFile("../examples/webserver.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipes.Parse("webserver.toml", b)
	if err != nil {
		t.Fatal(err)
	}
	absent := recipes.CIDOf(cid.Raw, []byte("an artifact not fetched yet"))
	r.Files = append(r.Files, recipes.File{Path: "artifact.bin", CID: absent.String(), Mode: 0o644})
	data := r.Canonical()
	c := recipes.CIDOf(cid.DagCBOR, data)
	if err := s.PutBlock(c, data); err != nil { // as a transfer stores it
		t.Fatal(err)
	}
	if _, err := s.Recipe(c); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Recipes(); len(list) != 0 {
		t.Fatalf("Recipes = %v; the recipe's artifact %s is missing", list, absent)
	}
	if roots, _ := s.Roots(); len(roots) != 0 {
		t.Fatalf("Roots = %v; the recipe's artifact %s is missing", roots, absent)
	}
	if _, err := s.PutRaw([]byte("an artifact not fetched yet")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recipe(c); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.Recipes(); len(list) != 1 || list[0] != c {
		t.Fatalf("Recipes = %v once complete, want [%s]", list, c)
	}
}

// A sha2-256 multihash with a truncated digest names no block the store
// can hold.
func TestCheckCIDTruncatedDigest(t *testing.T) {
	d := sha256.Sum256([]byte("x"))
	h, err := multihash.Encode(d[:20], multihash.SHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.Raw, h)
	if err := CheckCID(c); !errors.Is(err, ErrBadCID) {
		t.Fatalf("CheckCID(%s) = %v, want ErrBadCID", c, err)
	}
	m := &manifest{Kind: kindFile, Size: 1, Chunks: [][]byte{c.Bytes(), c.Bytes()}}
	if _, err := m.chunkCIDs(); err == nil {
		t.Fatal("a manifest listing a truncated sha2-256 chunk was accepted")
	}
}
