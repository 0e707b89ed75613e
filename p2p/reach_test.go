package p2p_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

// memberOf returns id as n sees it.
func memberOf(n *p2p.Node, id peer.ID) (p2p.Member, bool) {
	for _, m := range n.Members() {
		if m.ID == id {
			return m, true
		}
	}
	return p2p.Member{}, false
}

// A member that answers memberlist (directly and through the others) but
// whose streams of the probe protocol fail is shown unreachable, still
// alive; once its streams work again it is reachable again, with a
// measured round trip.
func TestUnreachableByStreamMember(t *testing.T) {
	c := p2ptest.NewCluster(t, 3)
	c.WaitConverged(t, 15*time.Second)
	a, far := c.Nodes[0], c.Nodes[2]
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		if st, ok := a.ReachState(far.ID()); !ok || st.LastOK.IsZero() || a.RTT(far.ID()) <= 0 {
			return fmt.Errorf("not probed yet: %v %v", st, ok)
		}
		return nil
	})
	far.Host().RemoveStreamHandler(ping.ID)
	_ = far.Host().Network().ClosePeer(a.ID()) // ends the probe stream in use
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		m, ok := memberOf(a, far.ID())
		if !ok || !m.Unreachable {
			return fmt.Errorf("member %v unreachable %v", ok, m.Unreachable)
		}
		if m.State == p2p.StateDead {
			return fmt.Errorf("the membership declared it dead")
		}
		return nil
	})
	ping.NewPingService(far.Host())
	p2ptest.WaitFor(t, 10*time.Second, func() error {
		if m, ok := memberOf(a, far.ID()); !ok || m.Unreachable || m.State != p2p.StateAlive {
			return fmt.Errorf("member %v unreachable %v state %v", ok, m.Unreachable, m.State)
		}
		return nil
	})
}
