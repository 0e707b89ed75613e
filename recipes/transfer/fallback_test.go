package transfer_test

import (
	"bufio"
	"context"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// busyOnceHandler serves st honestly, except that the first request for
// raw chunks reaching any of the handlers sharing refused is answered
// "busy", as a provider at its max_serving answers.
func busyOnceHandler(st *store.Store, refused *atomic.Bool) network.StreamHandler {
	return func(s network.Stream) {
		want, walk, err := transfer.ReadRequest(bufio.NewReader(s))
		if err != nil {
			s.Reset()
			return
		}
		w := bufio.NewWriter(s)
		defer s.Close()
		if want[0].Prefix().Codec == cid.Raw && refused.CompareAndSwap(false, true) {
			_ = transfer.WriteError(w, "busy: too many transfers; try another provider")
			_ = w.Flush()
			return
		}
		for queue := want; len(queue) > 0; queue = queue[1:] {
			b, err := st.Block(queue[0])
			if err != nil {
				return
			}
			if walk {
				links, _ := store.Links(queue[0], b)
				queue = append(queue, links...)
			}
			if transfer.WriteBlock(w, queue[0], b) != nil {
				return
			}
		}
		_ = transfer.WriteEnd(w)
		_ = w.Flush()
	}
}

// A young grid: no provider record, two connected peers hold the content.
// The first one asked delivers the manifest, then is busy when the chunks
// are asked for: the other connected peer must take over (as it did
// before chunks came from several providers), not be skipped because a
// provider "was known".
func TestFetchFromConnectedPeersSurvivesTheFirstFailing(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	f := newNodeAsking(t, nil, 4)
	connect(t, f.h, a.h)
	connect(t, f.h, b.h)
	root, art := publishArtifact(t, a.st, 4)
	copyContent(t, a.st, b.st, root)
	var refused atomic.Bool
	for _, n := range []*node{a, b} {
		n.h.SetStreamHandler(n.svc.Protocol(), busyOnceHandler(n.st, &refused))
	}
	if err := f.svc.Fetch(context.Background(), root); err != nil {
		t.Fatalf("the other connected peer was not asked after the first failed: %v", err)
	}
	checkArtifact(t, f.st, root, art)
	if n := f.svc.Stats().FailedAttempts; n != 1 {
		t.Fatalf("failed attempts = %d, want the busy peer's one", n)
	}
}

// The same with a hinted provider that fails on the chunks and a connected
// peer that holds them: AskConnected's connected peers are asked when the
// providers found did not deliver.
func TestFetchAsksConnectedPeerAfterHintedProviderFails(t *testing.T) {
	a, b := newNode(t, nil), newNode(t, nil)
	f := newNodeAsking(t, nil, 4)
	connect(t, f.h, a.h)
	connect(t, f.h, b.h)
	root, art := publishArtifact(t, a.st, 4)
	copyContent(t, a.st, b.st, root)
	var refused atomic.Bool
	a.h.SetStreamHandler(a.svc.Protocol(), busyOnceHandler(a.st, &refused))
	if err := f.svc.Fetch(context.Background(), root, a.h.ID()); err != nil {
		t.Fatalf("the connected peer was not asked after the hinted provider failed: %v", err)
	}
	checkArtifact(t, f.st, root, art)
}
