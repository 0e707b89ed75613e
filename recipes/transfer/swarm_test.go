package transfer_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// slowProvider serves requests from st honestly (walk honoured, end frame),
// except that after the first chunk of a stream it sends no other chunk
// until gate is closed. lie, when defined, is sent with a byte flipped.
type slowProvider struct {
	st     *store.Store
	gate   chan struct{}
	lie    cid.Cid
	chunks atomic.Int64 // chunks sent
}

func (p *slowProvider) handle(s network.Stream) {
	want, walk, err := transfer.ReadRequest(bufio.NewReader(s))
	if err != nil {
		s.Reset()
		return
	}
	w := bufio.NewWriter(s)
	defer s.Close()
	queue, sent := want, 0
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		b, err := p.st.Block(c)
		if err != nil {
			return
		}
		if walk {
			links, _ := store.Links(c, b)
			queue = append(queue, links...)
		}
		if c.Prefix().Codec == cid.Raw {
			if sent > 0 {
				if w.Flush() != nil {
					return
				}
				<-p.gate
			}
			sent++
			p.chunks.Add(1)
		}
		if c == p.lie {
			b = append([]byte(nil), b...)
			b[len(b)/2] ^= 1
		}
		if transfer.WriteBlock(w, c, b) != nil {
			return
		}
	}
	_ = transfer.WriteEnd(w)
	_ = w.Flush()
}

// publishArtifact stores an artifact of n chunks on st and returns its
// CID and bytes.
func publishArtifact(t *testing.T, st *store.Store, n int) (cid.Cid, []byte) {
	t.Helper()
	art := randBytes(n * store.ChunkSize)
	c, err := st.PutBytes(art)
	if err != nil {
		t.Fatal(err)
	}
	return c, art
}

func checkArtifact(t *testing.T, st *store.Store, c cid.Cid, want []byte) {
	t.Helper()
	r, _, err := st.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("fetched artifact differs from the published one (%d of %d bytes, %v)", len(got), len(want), err)
	}
}

// A fetch takes chunks from several providers at once: while the first one
// is slow, the others take over what it has not sent yet, and its stream
// is stopped where their shares begin. No chunk is fetched twice.
func TestFetchFromSeveralProviders(t *testing.T) {
	slow, b, c, f := newNode(t, nil), newNode(t, nil), newNode(t, nil), newNode(t, nil)
	for _, n := range []*node{slow, b, c} {
		connect(t, f.h, n.h)
	}
	const chunks = 12
	root, art := publishArtifact(t, b.st, chunks)
	copyContent(t, b.st, c.st, root)
	copyContent(t, b.st, slow.st, root)
	sp := &slowProvider{st: slow.st, gate: make(chan struct{})}
	var open sync.Once
	release := func() { open.Do(func() { close(sp.gate) }) }
	t.Cleanup(release)
	slow.h.SetStreamHandler(slow.svc.Protocol(), sp.handle)

	done := make(chan error, 1)
	go func() { done <- f.svc.Fetch(context.Background(), root, slow.h.ID(), b.h.ID(), c.h.ID()) }()
	waitFor(t, "both other providers to serve chunks", func() bool {
		return b.svc.Stats().BytesServed > 0 && c.svc.Stats().BytesServed > 0
	})
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkArtifact(t, f.st, root, art)
	if n := sp.chunks.Load(); n >= chunks {
		t.Fatalf("the slow provider sent %d chunks: it was not stopped where the others' shares began", n)
	}
	if got := f.svc.Stats().BytesFetched; got != int64(len(art))+manifestLen(t, b.st, root) {
		t.Fatalf("fetched %d bytes for an artifact of %d (+ its manifest): some came twice", got, len(art))
	}
	if f.svc.Stats().FailedAttempts != 0 {
		t.Fatalf("failed attempts = %d, want 0", f.svc.Stats().FailedAttempts)
	}
}

// A provider that lies while others are fetching from too is dropped, and
// the chunks it was to send come from the others.
func TestFetchFromSeveralProvidersOneLies(t *testing.T) {
	liar, b, c, f := newNode(t, nil), newNode(t, nil), newNode(t, nil), newNode(t, nil)
	for _, n := range []*node{liar, b, c} {
		connect(t, f.h, n.h)
	}
	const chunks = 8
	root, art := publishArtifact(t, b.st, chunks)
	copyContent(t, b.st, c.st, root)
	copyContent(t, b.st, liar.st, root)
	m, _ := b.st.Block(root)
	links, err := store.Links(root, m)
	if err != nil {
		t.Fatal(err)
	}
	// The liar is asked first and lies about the first chunk, which stays
	// in its share whoever joins.
	lp := &slowProvider{st: liar.st, gate: make(chan struct{}), lie: links[0]}
	close(lp.gate)
	liar.h.SetStreamHandler(liar.svc.Protocol(), lp.handle)

	if err := f.svc.Fetch(context.Background(), root, liar.h.ID(), b.h.ID(), c.h.ID()); err != nil {
		t.Fatal(err)
	}
	checkArtifact(t, f.st, root, art)
	if n := f.svc.Stats().FailedAttempts; n != 1 {
		t.Fatalf("failed attempts = %d, want the liar's one (liar sent %d chunks, b %d bytes, c %d)", n, lp.chunks.Load(), b.svc.Stats().BytesServed, c.svc.Stats().BytesServed)
	}
}

func manifestLen(t *testing.T, st *store.Store, root cid.Cid) int64 {
	t.Helper()
	b, err := st.Block(root)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(b))
}

// The idle timeout is a bound on silence: a provider on a thin uplink that
// takes longer than it to send one chunk, but never pauses that long, is
// not dropped.
func TestSlowProviderIsNotIdle(t *testing.T) {
	p := newNode(t, nil)
	f := newNodeWith(t, nil, func(c *transfer.Config) { c.IdleTimeout = time.Second })
	connect(t, f.h, p.h)
	root, art := publishArtifact(t, p.st, 1) // one raw chunk
	p.h.SetStreamHandler(p.svc.Protocol(), func(s network.Stream) {
		want, _, err := transfer.ReadRequest(bufio.NewReader(s))
		if err != nil || len(want) != 1 {
			s.Reset()
			return
		}
		defer s.Close()
		b, _ := p.st.Block(want[0])
		var hb [transfer.MaxBlockHeader]byte
		_, _ = s.Write(transfer.AppendBlockHeader(hb[:0], want[0], len(b)))
		// 1.5 s for the chunk, never more than 50 ms without data.
		const pieces = 30
		for i := range pieces {
			if _, err := s.Write(b[i*len(b)/pieces : (i+1)*len(b)/pieces]); err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, _ = s.Write([]byte{transfer.FrameEnd})
	})
	if err := f.svc.Fetch(context.Background(), root, p.h.ID()); err != nil {
		t.Fatalf("a provider that never paused for the idle timeout was dropped: %v", err)
	}
	checkArtifact(t, f.st, root, art)
}
