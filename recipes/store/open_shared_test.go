package store

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
)

// A Store may be used by several processes at once (the CLI writes into the
// node's store): opening the directory again must not remove the writes in
// progress of a store that is open on it.
func TestOpenKeepsWritesInProgressOfAnotherStore(t *testing.T) {
	dir := t.TempDir()
	s1, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	data := randBytes(ChunkSize)
	c := recipes.CIDOf(cid.Raw, data)
	w, err := s1.NewBlockWriter(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir) // another process (or store) opens the directory
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := w.Commit(); err != nil {
		t.Fatalf("a block being written when the store was opened again was lost: %v", err)
	}
	if b, err := s2.Block(c); err != nil || len(b) != len(data) {
		t.Fatalf("Block: %d bytes, %v", len(b), err)
	}
}
