package p2p

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	dutil "github.com/libp2p/go-libp2p/p2p/discovery/util"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
)

// ParseBootstrap parses full multiaddrs ending in /p2p/<id>.
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, s := range addrs {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w: bootstrap %q: %w", ErrConfig, s, err)
		}
		mas = append(mas, a)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("%w: bootstrap: %w (each address must end in /p2p/<peer-id>)", ErrConfig, err)
	}
	return infos, nil
}

func (n *Node) rendezvous() string { return "weft/" + n.GridID() + "/members" }

// startDiscovery joins the bootstrap peers now, then keeps discovering
// through bootstrap retries, mDNS and DHT rendezvous until Close.
func (n *Node) startDiscovery(ctx context.Context) {
	boot, err := ParseBootstrap(n.cfg.Bootstrap)
	if err != nil {
		n.log.Warn("bad bootstrap address", "err", err)
	}
	n.bootstrap(ctx, boot)
	if n.cfg.MDNS {
		svc := mdns.NewMdnsService(n.host, "weft-"+n.GridID(), mdnsNotifee{n})
		if err := svc.Start(); err != nil {
			n.log.Warn("mdns", "err", err)
		} else {
			n.closers = append(n.closers, svc.Close)
		}
	}
	n.wg.Add(1)
	go n.discoveryLoop(boot)
	n.wg.Add(1)
	go n.rejoinLoop()
}

// bootstrap connects to the given peers and joins their membership.
func (n *Node) bootstrap(ctx context.Context, boot []peer.AddrInfo) {
	if len(boot) == 0 && n.cfg.Transport != TransportNet {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*n.mlConf.TCPTimeout+time.Second)
	defer cancel()
	var ok []peer.AddrInfo
	for _, ai := range boot {
		if ai.ID == n.id {
			continue
		}
		if err := n.host.Connect(ctx, ai); err != nil {
			n.log.Debug("bootstrap peer unreachable", "peer", ai.ID.String(), "err", err)
			continue
		}
		ok = append(ok, ai)
	}
	if len(ok) > 0 || n.cfg.Transport == TransportNet {
		if c, err := n.Join(ok...); err != nil {
			n.log.Debug("join", "answered", c, "err", err)
		}
	}
	if len(ok) > 0 {
		_ = n.dht.Bootstrap(n.ctx)
	}
}

func (n *Node) discoveryLoop(boot []peer.AddrInfo) {
	defer n.wg.Done()
	tk := time.NewTicker(n.cfg.DiscoveryInterval)
	defer tk.Stop()
	advertised := false
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tk.C:
		}
		if n.ml.NumMembers() <= 1 {
			n.bootstrap(n.ctx, boot)
		}
		n.reconnectOne()
		if !n.cfg.DHTDiscovery || len(n.host.Network().Peers()) == 0 {
			continue
		}
		if !advertised {
			dutil.Advertise(n.ctx, n.disc, n.rendezvous())
			advertised = true
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.DiscoveryInterval)
		ch, err := n.disc.FindPeers(ctx, n.rendezvous())
		if err == nil {
			for ai := range ch {
				n.found(ctx, ai)
			}
		}
		cancel()
	}
}

// found connects to a discovered peer and joins through it when it is not
// yet an alive member.
func (n *Node) found(ctx context.Context, ai peer.AddrInfo) {
	if ai.ID == n.id || n.IsMember(ai.ID) || !n.gater.allowed(ai.ID, true) {
		return
	}
	if err := n.connectFound(ctx, ai); err != nil {
		n.log.Debug("connect to discovered peer", "peer", ai.ID.String(), "addrs", ai.Addrs, "err", err)
		return
	}
	if _, err := n.Join(ai); err != nil {
		n.log.Debug("join discovered peer", "peer", ai.ID.String(), "err", err)
	}
}

// connectFound dials a discovered peer. Two nodes of a LAN hear each
// other's mDNS announcement at the same moment and, both listening and
// dialling from the same reused port, can meet in a TCP simultaneous open,
// where both sides act as the client and the security handshake fails. So
// the node with the greater peer ID lets the other dial first, and a
// failed dial is retried a few times after a random pause.
func (n *Node) connectFound(ctx context.Context, ai peer.AddrInfo) error {
	pause := func(lo, hi time.Duration) error {
		t := time.NewTimer(lo + rand.N(hi-lo))
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if n.id > ai.ID {
		if err := pause(200*time.Millisecond, 600*time.Millisecond); err != nil {
			return err
		}
	}
	var err error
	for attempt := range 4 {
		if n.host.Network().Connectedness(ai.ID) == network.Connected {
			return nil
		}
		if attempt > 0 {
			if perr := pause(100*time.Millisecond, time.Duration(attempt)*time.Second); perr != nil {
				return err
			}
			if sw, ok := n.host.Network().(*swarm.Swarm); ok {
				sw.Backoff().Clear(ai.ID) // the failed dial put the address on hold
			}
		}
		if err = n.host.Connect(ctx, ai); err == nil {
			return nil
		}
	}
	return err
}

type mdnsNotifee struct{ n *Node }

func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	n := m.n
	if n.ctx.Err() != nil {
		return
	}
	n.log.Debug("mdns: peer found", "peer", ai.ID.String(), "addrs", ai.Addrs)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		n.found(ctx, ai)
	}()
}

// onConnected runs for every new connection, once it is registered. The
// gater checked the peer when the connection was secured; a revocation or a
// ban since then swept only the connections registered at that time, so the
// check is repeated here, where no connection can slip between the two.
func (n *Node) onConnected(c network.Conn) {
	p := c.RemotePeer()
	if !n.gater.allowed(p, c.Stat().Direction == network.DirOutbound) {
		n.log.Info("closing a connection refused since its handshake", "peer", p.String())
		_ = c.Close() // safe inside a Connected notification
		return
	}
	if n.grid != nil {
		n.pushMemberListTo(p)
	}
}

// reconnectWindow is how long failed members are retried.
const reconnectWindow = 24 * time.Hour

// Fast rejoin: a member that failed recently (a cut cable plugged back, a
// healed split, a restarted node at the same addresses) is retried on its
// own schedule, 1 s after its failure and then at doubling intervals up to
// rejoinMax, for rejoinWindow; reconnectOne keeps trying the older ones,
// one at a time.
const (
	rejoinFirst  = time.Second
	rejoinMax    = 4 * time.Second
	rejoinWindow = time.Minute
)

// rejoinLoop retries recently failed members until the node closes.
func (n *Node) rejoinLoop() {
	defer n.wg.Done()
	if n.tr == nil {
		return
	}
	next := map[peer.ID]time.Time{}
	wait := map[peer.ID]time.Duration{}
	inflight := map[peer.ID]bool{}
	done := make(chan peer.ID, 16)
	tk := time.NewTicker(rejoinFirst / 4)
	defer tk.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case id := <-done:
			delete(inflight, id)
			continue
		case <-tk.C:
		}
		now := time.Now()
		recent := map[peer.ID]bool{}
		for _, m := range n.Members() {
			if m.State != StateDead || m.Left || now.Sub(m.Since) > rejoinWindow || !n.gater.allowed(m.ID, true) {
				continue
			}
			recent[m.ID] = true
			if _, ok := next[m.ID]; !ok {
				next[m.ID], wait[m.ID] = m.Since.Add(rejoinFirst), rejoinFirst
			}
			if inflight[m.ID] || now.Before(next[m.ID]) {
				continue
			}
			wait[m.ID] = min(2*wait[m.ID], rejoinMax)
			next[m.ID] = now.Add(wait[m.ID])
			inflight[m.ID] = true
			n.wg.Add(1)
			go func(m Member) {
				defer n.wg.Done()
				n.rejoin(m)
				select {
				case done <- m.ID:
				case <-n.ctx.Done():
				}
			}(m)
		}
		for id := range next {
			if !recent[id] {
				delete(next, id)
				delete(wait, id)
			}
		}
	}
}

// rejoin connects to failed member m and joins its membership.
func (n *Node) rejoin(m Member) {
	ctx, cancel := context.WithTimeout(n.ctx, min(n.mlConf.TCPTimeout, 2*time.Second))
	defer cancel()
	n.closeConnsBefore(m.ID, m.Since) // connections from before its failure are dead, its failed dials say nothing of now
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: m.ID, Addrs: m.Addrs}); err != nil {
		return
	}
	if _, err := n.joinPeers([]peer.ID{m.ID}); err == nil {
		n.log.Info("rejoined a failed member", "member", m.ID.String())
	}
}

// reconnectOne tries to rejoin one member that failed (not one that left),
// picked at random, as Serf does: memberlist never probes dead members, so
// without this two sides of a healed network partition would stay apart.
func (n *Node) reconnectOne() {
	if n.tr == nil {
		return
	}
	var cands []Member
	for _, m := range n.Members() {
		if m.State == StateDead && !m.Left && time.Since(m.Since) < reconnectWindow && n.gater.allowed(m.ID, true) {
			cands = append(cands, m)
		}
	}
	if len(cands) == 0 {
		return
	}
	m := cands[rand.IntN(len(cands))]
	ctx, cancel := context.WithTimeout(n.ctx, n.mlConf.TCPTimeout)
	defer cancel()
	if err := n.host.Connect(ctx, peer.AddrInfo{ID: m.ID, Addrs: m.Addrs}); err != nil {
		return
	}
	if _, err := n.joinPeers([]peer.ID{m.ID}); err == nil {
		n.log.Debug("reconnected to a failed member", "member", m.ID.String())
	}
}
