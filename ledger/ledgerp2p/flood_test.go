package ledgerp2p

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/weftgrid/weft/ledger"
)

// TestSyncStreamsPerPeerAreBounded: a peer that opens many sync streams and
// then stalls (or streams junk in each for the 2-minute deadline) must not
// hold more than MaxSyncStreamsPerPeer exchanges of the node at once;
// the streams beyond are reset at once, and the node keeps syncing with
// others.
func TestSyncStreamsPerPeerAreBounded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	victim, honest := newReplica(t, ctx), newReplica(t, ctx)
	attacker := newTestNode(t, ctx)
	if err := attacker.h.Connect(ctx, peer.AddrInfo{ID: victim.n.h.ID(), Addrs: victim.n.h.Addrs()}); err != nil {
		t.Fatal(err)
	}
	const n = 3 * MaxSyncStreamsPerPeer
	var reset atomic.Int32
	for i := 0; i < n; i++ {
		s, err := attacker.h.NewStream(ctx, victim.n.h.ID(), protocol.ID("/weft-test"+ledger.SyncProtocol))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		go func() {
			_ = s.SetReadDeadline(time.Now().Add(time.Minute))
			if _, err := s.Read(make([]byte, 1)); err != nil {
				reset.Add(1) // refused (a served exchange waits for our hello)
			}
		}()
	}
	waitFor(t, "the streams beyond the bound to be refused", func() bool { return int(reset.Load()) >= n-MaxSyncStreamsPerPeer })
	// An honest peer still syncs.
	if _, err := honest.l.Append(ctx, ledger.Grant{To: honest.n.h.ID(), Amount: 1}); err != nil {
		t.Fatal(err)
	}
	connect(t, ctx, honest, victim)
	waitFor(t, "the honest peer's entry to reach the victim", func() bool { return victim.l.Len() == honest.l.Len() })
}
