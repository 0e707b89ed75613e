package transfer

import (
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/multiformats/go-multihash"

	"github.com/weftgrid/weft/recipes/store"
)

// windowStream is a provider's stream to a fetcher on a thin downlink:
// writes wait for the fetcher's window (block says how long the nth write
// waits), and each write notes how much of its deadline was left when it
// began.
type windowStream struct {
	network.Stream
	block    func(n int) time.Duration
	deadline time.Time
	writes   int
	left     []time.Duration // per write
}

func (s *windowStream) SetWriteDeadline(t time.Time) error { s.deadline = t; return nil }

func (s *windowStream) Write(p []byte) (int, error) {
	s.left = append(s.left, time.Until(s.deadline))
	d := s.block(s.writes)
	s.writes++
	time.Sleep(d) // waiting for the window
	return len(p), nil
}

// Each piece of a block may wait at least 7/8 of IdleTimeout for the
// fetcher's window, also the first after a header that itself waited.
func TestEachWrittenPieceGetsItsDeadline(t *testing.T) {
	const idle = time.Second
	s := &Service{cfg: Config{IdleTimeout: idle}}
	data := make([]byte, 2*wirePiece)
	c := cid.NewCidV1(cid.Raw, mustSum(t, data))
	st := &windowStream{block: func(n int) time.Duration {
		if n == 0 {
			return 3 * idle / 4 // the header waits for the window
		}
		return 0
	}}
	if _, err := s.sendBlock(st, c, data, false); err != nil {
		t.Fatal(err)
	}
	for i, left := range st.left {
		if left < idle/2 {
			t.Fatalf("write %d began with %v of its deadline left (of an idle timeout of %v): the header's wait was charged to it", i, left, idle)
		}
	}
}

// The end frame after a block whose last piece waited for the window gets
// a deadline of its own too.
func TestEndFrameGetsItsDeadline(t *testing.T) {
	const idle = time.Second
	st0, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1000)
	c := cid.NewCidV1(cid.Raw, mustSum(t, data))
	if err := st0.PutBlock(c, data); err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: Config{IdleTimeout: idle}, store: st0}
	st := &windowStream{block: func(n int) time.Duration {
		if n == 1 {
			return 3 * idle / 4 // the block's only piece waits for the window
		}
		return 0
	}}
	if err := s.serve(st, []cid.Cid{c}, false); err != nil {
		t.Fatal(err)
	}
	if len(st.left) != 3 {
		t.Fatalf("%d writes, want header, data, end", len(st.left))
	}
	if left := st.left[2]; left < idle/2 {
		t.Fatalf("the end frame began with %v of its deadline left (of an idle timeout of %v)", left, idle)
	}
}

func mustSum(t *testing.T, data []byte) []byte {
	t.Helper()
	h, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
