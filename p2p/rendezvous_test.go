package p2p_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

// Two nodes whose only bootstrap is a plain DHT server — a libp2p peer that
// is not a member of the grid, like a public bootstrap node — find each
// other through the DHT rendezvous and join one membership.
func TestDHTRendezvousDiscovery(t *testing.T) {
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/weft/"+p2p.PublicGrid),
		dht.QueryFilter(func(_ any, _ peer.AddrInfo) bool { return true }),
		dht.RoutingTableFilter(func(_ any, _ peer.ID) bool { return true }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var boot []string
	for _, a := range h.Addrs() {
		boot = append(boot, fmt.Sprintf("%s/p2p/%s", a, h.ID()))
	}
	viaDHT := func(c *p2p.Config) {
		c.Bootstrap = boot
		c.DHTDiscovery = true
		c.DiscoveryInterval = 300 * time.Millisecond
	}
	a := p2ptest.NewNode(t, viaDHT)
	b := p2ptest.NewNode(t, viaDHT)
	if got := a.ProtocolPrefix(); string(got) != "/weft/"+p2p.PublicGrid {
		t.Fatalf("the DHT server's prefix %q is not the node's %q", "/weft/"+p2p.PublicGrid, got)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if sees(a, b.ID()) && sees(b, a.ID()) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not joined through the rendezvous within 30s: a sees %d members, b %d", len(a.Members()), len(b.Members()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sees reports whether n holds p as an alive member.
func sees(n *p2p.Node, p peer.ID) bool {
	for _, m := range n.Members() {
		if m.ID == p && m.State == p2p.StateAlive {
			return true
		}
	}
	return false
}
