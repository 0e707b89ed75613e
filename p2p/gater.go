package p2p

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftgrid/weft/p2p/grid"
)

// gater refuses connections from banned peers and, on a private grid, from
// peers absent from the founder's signed member list.
type gater struct {
	n *Node

	mu     sync.RWMutex
	banned map[peer.ID]time.Time
	list   grid.MemberList
	listB  []byte // signed encoding of list; nil before any list is known

	// secured, if set, is called after InterceptSecured admits a peer
	// (tests: to change the list between the gater's check and the
	// connection's registration).
	secured atomic.Pointer[func(peer.ID)]
}

func newGater(n *Node) *gater { return &gater{n: n, banned: map[peer.ID]time.Time{}} }

// allowed reports whether p may connect; outbound is true for our own dials.
func (g *gater) allowed(p peer.ID, outbound bool) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if until, ok := g.banned[p]; ok && time.Now().Before(until) {
		return false
	}
	f := g.n.grid
	if f == nil {
		return true
	}
	if g.list.Contains(f.Founder, p) {
		return true
	}
	// A member that has not yet received any list may dial out to find the
	// founder's list; inbound strangers are always refused.
	return outbound && g.listB == nil
}

func (g *gater) ban(p peer.ID, until time.Time) {
	g.mu.Lock()
	if len(g.banned) >= maxPenaltyRecords {
		now := time.Now()
		for q, u := range g.banned {
			if !now.Before(u) {
				delete(g.banned, q)
			}
		}
	}
	g.banned[p] = until
	g.mu.Unlock()
}

func (g *gater) InterceptPeerDial(p peer.ID) bool { return g.allowed(p, true) }

func (g *gater) InterceptAddrDial(peer.ID, ma.Multiaddr) bool { return true }

func (g *gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

func (g *gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	ok := g.allowed(p, dir == network.DirOutbound)
	if !ok {
		g.n.met.gated.Inc()
	} else if f := g.secured.Load(); f != nil {
		(*f)(p)
	}
	return ok
}

func (g *gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
