package store

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
)

func TestServingReadsMatchTheBlock(t *testing.T) {
	s := newStore(t)
	for _, data := range [][]byte{nil, []byte("small"), randBytes(ChunkSize)} {
		c, err := s.PutRaw(data)
		if err != nil {
			t.Fatal(err)
		}
		m, release, err := s.MapBlock(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m, data) {
			t.Fatalf("MapBlock of %d bytes returned %d different bytes", len(data), len(m))
		}
		release()
		got, err := s.AppendBlock([]byte("hdr"), c)
		if err != nil || string(got[:3]) != "hdr" || !bytes.Equal(got[3:], data) {
			t.Fatalf("AppendBlock of %d bytes: %d bytes, %v", len(data), len(got), err)
		}
		d, err := Digest(c)
		if sum := sha256.Sum256(data); err != nil || !bytes.Equal(d, sum[:]) {
			t.Fatalf("Digest = %x, %v; want the data's sha2-256", d, err)
		}
	}
	absent := recipes.CIDOf(cid.Raw, []byte("absent"))
	if _, _, err := s.MapBlock(absent); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MapBlock of an absent block: %v", err)
	}
	if _, err := s.AppendBlock(nil, absent); !errors.Is(err, ErrNotFound) {
		t.Fatalf("AppendBlock of an absent block: %v", err)
	}
	v0 := cid.NewCidV0(recipes.CIDOf(cid.DagProtobuf, []byte("x")).Hash())
	if _, err := Digest(v0); !errors.Is(err, ErrBadCID) {
		t.Fatalf("Digest of a CIDv0: %v", err)
	}
}

func TestSyncAfterManyBlocks(t *testing.T) {
	s := newStore(t)
	var cids []cid.Cid
	for i := range 40 { // more blocks than syncWorkers, over many directories
		c, err := s.PutRaw([]byte{byte(i), byte(i >> 8), 'b'})
		if err != nil {
			t.Fatal(err)
		}
		cids = append(cids, c)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if len(s.pending) != 0 {
		t.Fatalf("%d blocks still pending after Sync", len(s.pending))
	}
	for _, c := range cids {
		if _, err := s.Block(c); err != nil {
			t.Fatal(err)
		}
	}
}
