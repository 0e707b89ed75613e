package schedp2p

import (
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/scheduler"
)

// Membership is the market's scheduler.Membership over the p2p node's
// memberlist: alive members with their adverts, and libp2p's measured RTTs.
type Membership struct{ Node *p2p.Node }

var _ scheduler.Membership = Membership{}

// Members returns the alive members (self included) with their adverts,
// marking those this node cannot reach by stream (p2p.Member's
// Unreachable): nothing the market sends them arrives, so they are no
// candidates, and a host among them counts as lost.
func (m Membership) Members() []scheduler.Member {
	ms := m.Node.Members()
	out := make([]scheduler.Member, 0, len(ms))
	for _, mem := range ms {
		if mem.State != p2p.StateAlive {
			continue
		}
		out = append(out, scheduler.Member{ID: mem.ID, Advert: schedAdvert(mem.Advert), Unreachable: mem.Unreachable, UnreachableSince: mem.UnreachableSince})
	}
	return out
}

// RTT returns libp2p's moving average of the round trip to id.
func (m Membership) RTT(id peer.ID) (time.Duration, bool) {
	if id == m.Node.ID() {
		return 0, true
	}
	d := m.Node.RTT(id)
	return d, d > 0
}

// schedAdvert maps a p2p advert (what the node offers now) to the market's.
func schedAdvert(a p2p.Advert) scheduler.Advert {
	r := scheduler.Resources{CPUMillis: a.CPUMillis, MemoryBytes: a.MemoryBytes, DiskBytes: a.DiskBytes}
	return scheduler.Advert{Capacity: r, Free: r, FreePartitions: a.FreePartitions, Labels: a.Labels, NoBids: a.NoBids}
}
