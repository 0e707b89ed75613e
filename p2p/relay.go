package p2p

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
)

// Reachability says how a node decides whether other peers can dial it.
type Reachability int

const (
	// ReachabilityAuto lets AutoNAT find out (the default). On the
	// internet, a node with a public address then serves relays, and one
	// behind NAT reserves relay slots (AutoRelay) and punches holes.
	ReachabilityAuto Reachability = iota
	// ReachabilityPublic: the node is reachable; it serves circuit relays
	// on whatever addresses it has, private ones included.
	ReachabilityPublic
	// ReachabilityPrivate: the node is behind NAT; it reserves relay slots
	// with the grid's public members (and the configured relays) and
	// advertises its /p2p-circuit addresses through them.
	ReachabilityPrivate
)

// String returns "auto", "public" or "private".
func (r Reachability) String() string {
	switch r {
	case ReachabilityAuto:
		return "auto"
	case ReachabilityPublic:
		return "public"
	case ReachabilityPrivate:
		return "private"
	}
	return fmt.Sprintf("reachability(%d)", int(r))
}

// ParseReachability parses "auto", "public" or "private" ("" is auto).
func ParseReachability(s string) (Reachability, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return ReachabilityAuto, nil
	case "public":
		return ReachabilityPublic, nil
	case "private":
		return ReachabilityPrivate, nil
	}
	return 0, fmt.Errorf("%w: reachability %q (want auto, public or private)", ErrConfig, s)
}

// RelayResources are the limits of the circuit relay a reachable node
// serves, sized for weft's control traffic (membership probes, market
// messages, ledger sync, small recipes) between members behind NAT, not for
// bulk data: each relayed connection lasts at most an hour and carries at
// most 64 MiB each way before the relay resets it (the peers then open a
// new one, or a direct one once a hole is punched).
func RelayResources() relayv2.Resources {
	r := relayv2.DefaultResources()
	r.Limit = &relayv2.RelayLimit{Duration: time.Hour, Data: 64 << 20}
	r.ReservationTTL = 30 * time.Minute
	r.MaxReservations = 128
	r.MaxCircuits = 32
	r.BufferSize = 16 << 10
	r.MaxReservationsPerIP = 32
	return r
}

// relayACL lets only the grid's members reserve a slot with the node's
// relay: the relay is there for members behind NAT, and a circuit can only
// reach a peer holding a slot, so two strangers cannot carry their own
// traffic through it. Anyone may open a circuit to a member (that is how a
// peer reaches a member behind NAT). A member's slot is refused while the
// relay has not yet learnt of it (a join gossiped a moment later); the
// member's relay keeper asks again every 2 s.
type relayACL struct{ n *Node }

// AllowReserve implements relayv2.ACLFilter.
func (a relayACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.n.IsMember(p) }

// AllowConnect implements relayv2.ACLFilter.
func (a relayACL) AllowConnect(peer.ID, ma.Multiaddr, peer.ID) bool { return true }

// IsMember says whether p is a member the membership does not consider
// dead (false before membership starts). Cheap: one map lookup.
func (n *Node) IsMember(p peer.ID) bool {
	t := n.tableFor.Load()
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	m := t.members[p]
	return m != nil && m.State != StateDead
}

// maxReservations is how many relays a private node keeps a slot with.
const maxReservations = 2

// relayKeeper keeps relay reservations for a node told it is private: with
// the configured relays first, then with connected members that serve the
// relay protocol over a direct connection. go-libp2p's AutoRelay does this
// on the internet, but it drops relays whose addresses are private (a lab,
// a campus network behind a second NAT), so weft keeps its own slots and
// builds the circuit addresses from what each relay vouches for.
type relayKeeper struct {
	n      *Node
	static []peer.AddrInfo

	mu    sync.Mutex
	rsvp  map[peer.ID]*client.Reservation
	addrs []ma.Multiaddr // circuit addresses, sorted
}

func newRelayKeeper(n *Node, static []peer.AddrInfo) *relayKeeper {
	return &relayKeeper{n: n, static: static, rsvp: map[peer.ID]*client.Reservation{}}
}

// circuitAddrs returns the node's /p2p-circuit addresses (through the
// relays it holds a slot with).
func (k *relayKeeper) circuitAddrs() []ma.Multiaddr {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.addrs)
}

// relays returns the relays the node holds a slot with.
func (k *relayKeeper) relays() []peer.ID {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]peer.ID, 0, len(k.rsvp))
	for p := range k.rsvp {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (k *relayKeeper) run(ctx context.Context) {
	defer k.n.wg.Done()
	tk := time.NewTicker(2 * time.Second)
	defer tk.Stop()
	for {
		if k.refresh(ctx) {
			k.n.addrsChanged()
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

// refresh drops slots that expired or whose relay is gone, renews those
// near their end and reserves new ones up to maxReservations. It reports
// whether the circuit addresses changed.
func (k *relayKeeper) refresh(ctx context.Context) bool {
	h := k.n.host
	now := time.Now()
	k.mu.Lock()
	held := map[peer.ID]*client.Reservation{}
	for p, r := range k.rsvp {
		if r.Expiration.After(now) && h.Network().Connectedness(p) == network.Connected {
			held[p] = r
		}
	}
	k.mu.Unlock()
	var cands []peer.AddrInfo
	seen := map[peer.ID]bool{k.n.id: true}
	for _, ai := range k.static {
		if !seen[ai.ID] {
			seen[ai.ID] = true
			cands = append(cands, ai)
		}
	}
	for _, p := range h.Network().Peers() {
		if seen[p] || !k.n.gater.allowed(p, true) {
			continue
		}
		seen[p] = true
		if ok, _ := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop); len(ok) == 0 || !hasDirectConn(h.Network().ConnsToPeer(p)) {
			continue
		}
		cands = append(cands, peer.AddrInfo{ID: p})
	}
	for _, ai := range cands {
		r := held[ai.ID]
		renew := r != nil && time.Until(r.Expiration) < 5*time.Minute
		if (r != nil && !renew) || (r == nil && len(held) >= maxReservations) {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		nr, err := client.Reserve(rctx, h, ai)
		cancel()
		if err != nil {
			k.n.log.Debug("relay reservation failed", "relay", ai.ID.String(), "err", err)
			continue
		}
		held[ai.ID] = nr
	}
	var addrs []ma.Multiaddr
	for p, r := range held {
		circuit, err := ma.NewMultiaddr("/p2p/" + p.String() + "/p2p-circuit")
		if err != nil {
			continue
		}
		// Loopback addresses only when the relay has nothing else (a
		// grid on one machine): elsewhere they name the dialer itself.
		onlyLoopback := !slices.ContainsFunc(r.Addrs, func(a ma.Multiaddr) bool { return !manet.IsIPLoopback(a) })
		for _, a := range r.Addrs {
			relayAddr, id := peer.SplitAddr(a)
			if relayAddr == nil || (id != "" && id != p) || (manet.IsIPLoopback(relayAddr) && !onlyLoopback) || isCircuit(relayAddr) {
				continue
			}
			addrs = append(addrs, relayAddr.Encapsulate(circuit))
		}
	}
	slices.SortFunc(addrs, ma.Multiaddr.Compare)
	addrs = slices.CompactFunc(addrs, ma.Multiaddr.Equal)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rsvp = held
	changed := !slices.EqualFunc(addrs, k.addrs, ma.Multiaddr.Equal)
	k.addrs = addrs
	if changed {
		k.n.log.Info("relay addresses", "addrs", addrs)
	}
	return changed
}

func hasDirectConn(conns []network.Conn) bool {
	return slices.ContainsFunc(conns, func(c network.Conn) bool { return !c.Stat().Limited })
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Reach is how a node reaches a peer now.
type Reach string

// Reaches.
const (
	// ReachDirect: a direct connection (on the LAN, to a public address,
	// or through a punched hole).
	ReachDirect Reach = "direct"
	// ReachRelayed: only through a circuit relay (limited).
	ReachRelayed Reach = "relayed"
	// ReachNone: no connection now (the next stream dials one).
	ReachNone Reach = "none"
)

// ReachOf returns how the node is connected to p now.
func (n *Node) ReachOf(p peer.ID) Reach {
	if p == n.id {
		return ReachDirect
	}
	conns := n.host.Network().ConnsToPeer(p)
	switch {
	case hasDirectConn(conns):
		return ReachDirect
	case len(conns) > 0:
		return ReachRelayed
	}
	return ReachNone
}

// Reachability returns the reachability the node was configured with.
func (n *Node) Reachability() Reachability { return n.cfg.Reachability }

// RelayAddrs returns the node's /p2p-circuit addresses when it is told it
// is private (through the relays it holds a slot with).
func (n *Node) RelayAddrs() []ma.Multiaddr { return n.relay.circuitAddrs() }

// Relays returns the relays the node holds a slot with.
func (n *Node) Relays() []peer.ID { return n.relay.relays() }

// addrsFactory adds the circuit addresses to the host's own.
func (n *Node) addrsFactory(addrs []ma.Multiaddr) []ma.Multiaddr {
	return append(addrs, n.relay.circuitAddrs()...)
}

// addrsChanged republishes the node's addresses in its membership metadata
// (circuit addresses first: the metadata keeps four).
func (n *Node) addrsChanged() {
	if n.ml == nil {
		return
	}
	if err := n.setMeta(n.Advert(), false); err == nil {
		_ = n.ml.UpdateNode(n.mlConf.TCPTimeout)
	}
}

// parseRelays parses the configured static relays.
func parseRelays(addrs []string) ([]peer.AddrInfo, error) {
	var out []peer.AddrInfo
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: relay %q: %w", ErrConfig, s, err)
		}
		ai, err := peer.AddrInfoFromP2pAddr(a)
		if err != nil {
			return nil, fmt.Errorf("%w: relay %q must end in /p2p/<id>: %w", ErrConfig, s, err)
		}
		out = append(out, *ai)
	}
	return out, nil
}
