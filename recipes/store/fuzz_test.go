package store

import (
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/weftgrid/weft/recipes"
)

// FuzzLinks decodes blocks as they arrive from peers: manifests and recipes
// (dag-cbor). It must never panic, and what it accepts must only link to
// CIDs the store accepts.
func FuzzLinks(f *testing.F) {
	s, err := Open(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	big := make([]byte, 2*ChunkSize+3)
	c, _ := s.PutBytes(big)
	b, _ := s.Block(c)
	f.Add(b)
	d, _ := s.putManifest(&manifest{Kind: kindDir, Entries: []entry{{Path: "a", Mode: 0o644, Size: 1, Chunks: [][]byte{c.Bytes()}}, {Path: "d", Dir: true}}})
	b, _ = s.Block(d)
	f.Add(b)
	f.Add([]byte{0xa1, 0x64, 'w', 'e', 'f', 't', 0x67, 'f', 'i', 'l', 'e', '/', 'v', '1'})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := recipes.CIDOf(cid.DagCBOR, data)
		links, err := Links(c, data)
		if err != nil {
			return
		}
		for _, l := range links {
			if CheckCID(l) != nil {
				t.Fatalf("accepted a link to an unsupported CID %s", l)
			}
		}
		_ = KindOf(c, data)
	})
}
