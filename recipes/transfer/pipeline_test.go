package transfer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// streamingLiar serves the walk from st in one stream, as the real provider
// does, but lies about the block lie: with cut it
// sends the block's header and half its data, then ends the stream; else
// it sends the data with one byte flipped and goes on streaming the rest
// honestly, with the end frame, so the lie sits in the middle of a
// pipelined transfer.
func streamingLiar(st *store.Store, lie cid.Cid, cut bool) network.StreamHandler {
	return func(s network.Stream) {
		want, walk, err := transfer.ReadRequest(bufio.NewReader(s))
		if err != nil {
			s.Reset()
			return
		}
		w := bufio.NewWriter(s)
		defer s.Close()
		defer w.Flush()
		queue := want
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			b, err := st.Block(c)
			if err != nil {
				return
			}
			if walk {
				links, _ := store.Links(c, b)
				queue = append(queue, links...)
			}
			if c == lie {
				if cut {
					var hb [transfer.MaxBlockHeader]byte
					_, _ = w.Write(transfer.AppendBlockHeader(hb[:0], c, len(b)))
					_, _ = w.Write(b[:len(b)/2])
					return
				}
				b = append([]byte(nil), b...)
				b[len(b)/3] ^= 0x01
			}
			_ = transfer.WriteBlock(w, c, b)
		}
		_ = transfer.WriteEnd(w)
	}
}

// walkOrder lists the blocks of root in the order a provider sends them.
func walkOrder(t *testing.T, st *store.Store, root cid.Cid) []cid.Cid {
	t.Helper()
	var out []cid.Cid
	queue := []cid.Cid{root}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		b, err := st.Block(c)
		if err != nil {
			t.Fatal(err)
		}
		links, _ := store.Links(c, b)
		queue = append(queue, links...)
		out = append(out, c)
	}
	return out
}

func TestPipelinedLieMidStreamIsRejectedAndRetried(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  bool
		want error
	}{
		{"corrupted chunk, stream goes on", false, store.ErrHashMismatch},
		{"stream cut inside a chunk", true, transfer.ErrTruncated},
	} {
		for _, batched := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, batched=%v", tc.name, batched), func(t *testing.T) {
				defer transfer.SetBatchHash(batched)()
				testLieMidStream(t, tc.cut, tc.want)
			})
		}
	}
}

// testLieMidStream fetches from a provider that lies about the second
// chunk (cut: ends the stream inside it; else: flips a byte and streams on
// to the end frame), then from an honest one.
func testLieMidStream(t *testing.T, cut bool, want error) {
	liar, honest, f := newNode(t, nil), newNode(t, nil), newSequentialNode(t)
	connect(t, f.h, liar.h)
	connect(t, f.h, honest.h)
	_, rc, art := publishRecipe(t, honest)
	copyContent(t, honest.st, liar.st, rc)
	order := walkOrder(t, honest.st, rc) // recipe, manifest, 4 chunks
	const lieAt = 3                      // the second chunk
	liar.h.SetStreamHandler(liar.svc.Protocol(), streamingLiar(liar.st, order[lieAt], cut))

	err := f.svc.Fetch(context.Background(), rc, liar.h.ID())
	if !errors.Is(err, transfer.ErrNoProvider) || !errors.Is(err, want) {
		t.Fatalf("want %v from the only provider, got %v", want, err)
	}
	for i, c := range order {
		if got := f.st.HasBlock(c); got != (i < lieAt) {
			t.Fatalf("block %d of %d stored = %v: only the blocks verified before the lie may be kept", i, len(order), got)
		}
	}
	// The lie was received into a temporary file: dropped with it.
	if left, err := os.ReadDir(filepath.Join(f.st.Dir(), "tmp")); err != nil || len(left) != 0 {
		t.Fatalf("the fetcher's tmp/ keeps %d files after the lie (%v)", len(left), err)
	}

	before := honest.svc.Stats().BytesServed
	if err := f.svc.Fetch(context.Background(), rc, liar.h.ID(), honest.h.ID()); err != nil {
		t.Fatalf("retry with another provider: %v", err)
	}
	if !f.st.Has(rc) {
		t.Fatal("content incomplete after the retry")
	}
	rd, _, err := f.st.Open(mustArtifact(t, f.st, rc))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := make([]byte, len(art)+1)
	n, _ := readFull(rd, got)
	if n != len(art) || string(got[:n]) != string(art) {
		t.Fatalf("fetched artifact differs from the published one (%d of %d bytes)", n, len(art))
	}
	if served := honest.svc.Stats().BytesServed - before; served >= int64(len(art)) {
		t.Fatalf("honest provider served %d bytes: the blocks verified before the lie were thrown away", served)
	}
	if f.svc.Stats().FailedAttempts != 2 {
		t.Fatalf("failed attempts = %d, want the liar's two", f.svc.Stats().FailedAttempts)
	}
}

func mustArtifact(t *testing.T, st *store.Store, rc cid.Cid) cid.Cid {
	t.Helper()
	r, err := st.Recipe(rc)
	if err != nil {
		t.Fatal(err)
	}
	return r.ArtifactCIDs()[0]
}

func readFull(r interface{ Read([]byte) (int, error) }, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
