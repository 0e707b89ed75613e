package transfer

import (
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func testCIDs(t *testing.T, n int) []cid.Cid {
	t.Helper()
	out := make([]cid.Cid, n)
	for i := range out {
		h, err := multihash.Sum(fmt.Appendf(nil, "chunk %d", i), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = cid.NewCidV1(cid.Raw, h)
	}
	return out
}

func TestSwarmSharesOut(t *testing.T) {
	cs := testCIDs(t, 10)
	sw := newSwarm(cs)
	a := sw.take()
	if a == nil || a.lo != 0 || a.end != 10 {
		t.Fatalf("first share = %+v, want all ten chunks", a)
	}
	if sw.reached(a, cs[0]) || a.next != 1 {
		t.Fatalf("chunk 0 begun: reached, or next = %d, want 1", a.next)
	}
	// The next provider takes the second half of what a has left.
	b := sw.take()
	if b == nil || b.lo != 6 || b.end != 10 || a.end != 6 {
		t.Fatalf("second share = %+v, first now %+v; want [6,10) and [0,6)", b, a)
	}
	if !sw.reached(a, cs[6]) {
		t.Fatal("a's stream reached a chunk b took, and was not stopped")
	}
	if sw.reached(b, cs[6]) || sw.reached(b, cs[7]) {
		t.Fatal("b stopped inside its share")
	}
	if sw.reached(a, testCIDs(t, 11)[10]) {
		t.Fatal("a chunk of no share stopped the stream (the request must reject it)")
	}
	// b has [8,10) left, a [1,6): a third provider takes a's [4,6).
	c := sw.take()
	if c == nil || c.lo != 4 || c.end != 6 || a.end != 4 {
		t.Fatalf("third share = %+v, first now %+v", c, a)
	}
	// A failed provider's share goes back whole, to the next to take.
	sw.abandon(c)
	if !sw.hasWork() {
		t.Fatal("no work after a share was abandoned")
	}
	d := sw.take()
	if d == nil || d.lo != 4 || d.end != 6 || d.next != 4 {
		t.Fatalf("taken after abandon = %+v, want [4,6)", d)
	}
	have := map[cid.Cid]bool{cs[4]: true}
	if m := sw.missing(d, func(c cid.Cid) bool { return have[c] }); len(m) != 1 || m[0] != cs[5] {
		t.Fatalf("missing of [4,6) with 4 stored = %v", m)
	}
	sw.finish(d)
	// Shares of one chunk left are not split.
	for _, sp := range []*share{a, b} {
		sp.next = sp.end - 1
	}
	if sw.hasWork() || sw.take() != nil {
		t.Fatal("work handed out with one chunk left per share")
	}
}
