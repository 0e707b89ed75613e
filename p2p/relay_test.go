package p2p_test

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/p2ptest"
)

func reach(r p2p.Reachability) p2ptest.Option {
	return func(c *p2p.Config) { c.Reachability = r }
}

// A node told it is public serves relays on its (loopback, here: not
// public) addresses; a node told it is private reserves a slot with it,
// advertises a /p2p-circuit address in its membership metadata, and a
// peer that knows only that address reaches it through the relay, over a
// limited connection.
func TestForcedReachabilityRelaysOnPrivateAddresses(t *testing.T) {
	pub := p2ptest.NewNode(t, reach(p2p.ReachabilityPublic))
	home := p2ptest.NewNode(t, reach(p2p.ReachabilityPrivate), p2ptest.Bootstrap(pub))
	waitRelay(t, "a relay slot", 30*time.Second, func() bool { return len(home.RelayAddrs()) > 0 })
	if got := home.Relays(); !slices.Equal(got, []peer.ID{pub.ID()}) {
		t.Fatalf("relays %v, want the public node", got)
	}
	waitRelay(t, "the circuit address in the membership", 30*time.Second, func() bool {
		for _, m := range pub.Members() {
			if m.ID == home.ID() && slices.ContainsFunc(m.Addrs, func(a ma.Multiaddr) bool { return a.Equal(home.RelayAddrs()[0]) }) {
				return true
			}
		}
		return false
	})

	const proto = "/weft-test/echo/1"
	home.Host().SetStreamHandler(proto, func(s network.Stream) {
		defer s.Close()
		_, _ = io.Copy(s, io.LimitReader(s, 5))
	})
	stranger, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.EnableRelay())
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := stranger.Connect(ctx, peer.AddrInfo{ID: home.ID(), Addrs: home.RelayAddrs()}); err != nil {
		t.Fatalf("connect through the relay: %v", err)
	}
	s, err := stranger.NewStream(network.WithAllowLimitedConn(ctx, "test"), home.ID(), proto)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Conn().Stat().Limited {
		t.Fatal("the connection is not the relay's")
	}
	_, _ = s.Write([]byte("hello"))
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello" {
		t.Fatalf("echo %q, %v", got, err)
	}
	if r := home.ReachOf(stranger.ID()); r != p2p.ReachRelayed {
		t.Fatalf("home reaches the stranger %s, want relayed", r)
	}
}

func TestParseReachability(t *testing.T) {
	for s, want := range map[string]p2p.Reachability{"": p2p.ReachabilityAuto, "auto": p2p.ReachabilityAuto, "Public": p2p.ReachabilityPublic, "private": p2p.ReachabilityPrivate} {
		if got, err := p2p.ParseReachability(s); err != nil || got != want {
			t.Errorf("%q: %v, %v", s, got, err)
		}
	}
	if _, err := p2p.ParseReachability("sometimes"); err == nil {
		t.Error("accepted a bad reachability")
	}
}

func waitRelay(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRelayServesMembersOnly: a weft node's relay is for its grid's
// members behind NAT. Two strangers (peers that never joined the grid)
// cannot use it to carry their own traffic: the one that wants to be
// reached is refused a reservation, so no circuit reaches it.
func TestRelayServesMembersOnly(t *testing.T) {
	pub := p2ptest.NewNode(t, reach(p2p.ReachabilityPublic))
	newStranger := func() host.Host {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.EnableRelay())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	a, b := newStranger(), newStranger()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	relay := peer.AddrInfo{ID: pub.ID(), Addrs: pub.Host().Addrs()}
	if err := a.Connect(ctx, relay); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Reserve(ctx, a, relay); err == nil {
		// Show what the reservation buys: a circuit between strangers.
		circuit, _ := ma.NewMultiaddr("/p2p/" + pub.ID().String() + "/p2p-circuit")
		err := b.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: []ma.Multiaddr{relay.Addrs[0].Encapsulate(circuit)}})
		t.Fatalf("a stranger got a relay slot (a second stranger reaches it through the relay: %v)", err)
	}
}
