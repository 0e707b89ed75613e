package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func TestBlobRoundTrip(t *testing.T) {
	s := newStore(t)
	for _, n := range []int{0, 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		data := randBytes(n)
		c, err := s.PutBytes(data)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Has(c) {
			t.Fatalf("%d bytes: Has false after Put", n)
		}
		wantCodec := uint64(cid.Raw)
		if n > ChunkSize {
			wantCodec = cid.DagCBOR
		}
		if c.Prefix().Codec != wantCodec {
			t.Errorf("%d bytes: codec %x", n, c.Prefix().Codec)
		}
		got, err := s.Get(c, 0)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: Get = %d bytes, %v", n, len(got), err)
		}
		rc, size, err := s.Open(c)
		if err != nil || size != int64(n) {
			t.Fatalf("Open: %d %v", size, err)
		}
		got, _ = io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: Open read differs", n)
		}
		again, _ := s.PutBytes(data)
		if again != c {
			t.Fatal("same bytes, different CID")
		}
	}
}

func TestPutBlockVerifies(t *testing.T) {
	s := newStore(t)
	data := []byte("hello")
	c := recipes.CIDOf(cid.Raw, data)
	if err := s.PutBlock(c, []byte("hellO")); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("mismatch accepted: %v", err)
	}
	if s.HasBlock(c) {
		t.Fatal("rejected block stored")
	}
	if err := s.PutBlock(c, data); err != nil {
		t.Fatal(err)
	}
	v0 := cid.NewCidV0(c.Hash())
	if err := s.PutBlock(v0, data); !errors.Is(err, ErrBadCID) {
		t.Fatalf("CIDv0 accepted: %v", err)
	}
	if _, err := s.Block(recipes.CIDOf(cid.Raw, []byte("other"))); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing block: %v", err)
	}
}

func writeTree(t *testing.T, root string) {
	t.Helper()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "sub", "deeper"), 0o755))
	must(os.WriteFile(filepath.Join(root, "count.txt"), []byte("9592\n"), 0o644))
	must(os.WriteFile(filepath.Join(root, "sub", "run.sh"), []byte("#!/bin/sh\n"), 0o755))
	must(os.WriteFile(filepath.Join(root, "sub", "deeper", "big"), randBytes(2*ChunkSize+5), 0o600))
	must(os.WriteFile(filepath.Join(root, "empty"), nil, 0o644))
	must(os.Symlink("sub/run.sh", filepath.Join(root, "link")))
}

func TestDirRoundTrip(t *testing.T) {
	s := newStore(t)
	src := t.TempDir()
	writeTree(t, src)
	c, err := s.PutDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if c2, _ := s.PutDir(src); c2 != c {
		t.Fatal("same tree, different CID")
	}
	out := filepath.Join(t.TempDir(), "out")
	if err := s.GetDir(context.Background(), c, out); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"count.txt", "sub/run.sh", "sub/deeper/big", "empty"} {
		a, _ := os.ReadFile(filepath.Join(src, p))
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs: %v", p, err)
		}
		sa, _ := os.Stat(filepath.Join(src, p))
		sb, _ := os.Stat(filepath.Join(out, p))
		if sa.Mode() != sb.Mode() {
			t.Errorf("%s: mode %v, want %v", p, sb.Mode(), sa.Mode())
		}
	}
	if l, err := os.Readlink(filepath.Join(out, "link")); err != nil || l != "sub/run.sh" {
		t.Errorf("link = %q, %v", l, err)
	}
	// Reading it back gives the same tree, hence the same CID.
	if c3, _ := s.PutDir(out); c3 != c {
		t.Fatal("tree changed through GetDir")
	}
	ents, err := s.ListDir(c)
	if err != nil || len(ents) != 7 {
		t.Fatalf("ListDir: %d entries, %v", len(ents), err)
	}
}

func TestMissingAndHas(t *testing.T) {
	s := newStore(t)
	src := t.TempDir()
	writeTree(t, src)
	c, _ := s.PutDir(src)
	b, _ := s.Block(c)
	links, err := Links(c, b)
	if err != nil || len(links) == 0 {
		t.Fatalf("links: %v", err)
	}
	other := newStore(t)
	if err := other.PutBlock(c, b); err != nil {
		t.Fatal(err)
	}
	miss, err := other.Missing(c)
	if err != nil || len(miss) != len(links) {
		t.Fatalf("missing %d, want %d (%v)", len(miss), len(links), err)
	}
	if other.Has(c) {
		t.Fatal("Has true with missing chunks")
	}
	if err := other.GetDir(context.Background(), c, filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetDir with missing chunks: %v", err)
	}
}

func TestGetDirRefusesEscapingPaths(t *testing.T) {
	s := newStore(t)
	chunk, _ := s.PutRaw([]byte("x"))
	for _, e := range []entry{
		{Path: "../evil", Mode: 0o644, Size: 1, Chunks: [][]byte{chunk.Bytes()}},
		{Path: "/abs", Mode: 0o644, Size: 1, Chunks: [][]byte{chunk.Bytes()}},
		{Path: "a/../../b", Mode: 0o644, Size: 1, Chunks: [][]byte{chunk.Bytes()}},
		{Path: "l", Link: "../../etc"},
	} {
		c, err := s.putManifest(&manifest{Kind: kindDir, Entries: []entry{e}})
		if err != nil {
			t.Fatal(err)
		}
		base := t.TempDir()
		if err := s.GetDir(context.Background(), c, filepath.Join(base, "out")); err == nil {
			t.Errorf("entry %+v accepted", e)
		}
	}
}

func TestRecipes(t *testing.T) {
	s := newStore(t)
	b, err := os.ReadFile("../examples/webserver.toml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := recipes.Parse("webserver.toml", b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.PutRecipe(r)
	if err != nil || c != r.CID() {
		t.Fatalf("PutRecipe: %s %v (want %s)", c, err, r.CID())
	}
	got, err := s.Recipe(c)
	if err != nil || got.CID() != c {
		t.Fatalf("Recipe: %v", err)
	}
	list, _ := s.Recipes()
	if len(list) != 1 || list[0] != c {
		t.Fatalf("Recipes = %v", list)
	}
	if k := KindOf(c, r.Canonical()); k != KindRecipe {
		t.Fatalf("kind %s", k)
	}
}

func TestOpenCleansTmp(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // its process ended (a crashed one holds no lock either)
	junk := filepath.Join(dir, "tmp", "blk-123")
	_ = os.WriteFile(junk, []byte("half"), 0o600)
	if _, err := Open(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(junk); !os.IsNotExist(err) {
		t.Fatal("interrupted write left behind")
	}
}

func TestDamagedBlockIsDroppedAndMissing(t *testing.T) {
	s := newStore(t)
	data := randBytes(3 * ChunkSize)
	c, err := s.PutBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Block(c)
	links, _ := Links(c, b)
	// A crash before Sync can leave a renamed but empty block file.
	if err := os.WriteFile(s.path(links[1]), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(c, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of damaged content: %v", err)
	}
	if _, err := s.Block(links[1]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("damaged block: %v", err)
	}
	miss, err := s.Missing(c)
	if err != nil || len(miss) != 1 || miss[0] != links[1] {
		t.Fatalf("missing = %v, %v; want the damaged chunk", miss, err)
	}
}
