package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
)

// tmpEntries lists what is left in the store's tmp/.
func tmpEntries(t *testing.T, s *Store) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestBlockWriterJoinsTheStoreOnlyOnCommit(t *testing.T) {
	s := newStore(t)
	data := randBytes(ChunkSize + 1234)
	c := recipes.CIDOf(cid.Raw, data)
	w, err := s.NewBlockWriter(c)
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100_000 {
		if _, err := w.Write(data[off:min(off+100_000, len(data))]); err != nil {
			t.Fatal(err)
		}
		if s.HasBlock(c) {
			t.Fatal("a block being received is visible before Commit")
		}
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := s.Block(c)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Block after Commit: %d bytes, %v", len(got), err)
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Fatalf("tmp/ keeps %v after Commit", left)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	w.Abort() // after Commit: nothing happens
	if !s.HasBlock(c) {
		t.Fatal("Abort after Commit removed the block")
	}

	// Writing a block that is already stored changes nothing.
	w, err = s.NewBlockWriter(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("other bytes")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Block(c); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("an existing block changed: %d bytes, %v", len(got), err)
	}
}

func TestBlockWriterAbortLeavesNothing(t *testing.T) {
	s := newStore(t)
	data := []byte("a block that fails its check")
	c := recipes.CIDOf(cid.Raw, data)
	w, err := s.NewBlockWriter(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:10]); err != nil {
		t.Fatal(err)
	}
	w.Abort()
	w.Abort()
	if s.HasBlock(c) {
		t.Fatal("an aborted block is in the store")
	}
	if left := tmpEntries(t, s); len(left) != 0 {
		t.Fatalf("tmp/ keeps %v after Abort", left)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
}

func TestBlockWriterLimits(t *testing.T) {
	s := newStore(t)
	if _, err := s.NewBlockWriter(cid.NewCidV0(recipes.CIDOf(cid.Raw, nil).Hash())); !errors.Is(err, ErrBadCID) {
		t.Fatalf("NewBlockWriter of a CIDv0: %v", err)
	}
	c := recipes.CIDOf(cid.Raw, []byte("x"))
	w, err := s.NewBlockWriter(c)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(make([]byte, MaxBlockSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("writing more than MaxBlockSize: %v", err)
	}
}
