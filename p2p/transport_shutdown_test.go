package p2p

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

func newLoopbackHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func openStreams(h host.Host, proto protocol.ID) int {
	n := 0
	for _, c := range h.Network().Conns() {
		for _, s := range c.GetStreams() {
			if s.Protocol() == proto {
				n++
			}
		}
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not met: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Shutdown leaves no inbound memberlist stream open on a host that keeps
// running: neither the packet stream a peer keeps writing to nor streams
// queued for memberlist that it never accepted.
func TestStreamTransportShutdownClosesInboundStreams(t *testing.T) {
	ha, hb := newLoopbackHost(t), newLoopbackHost(t)
	if err := ha.Connect(t.Context(), peer.AddrInfo{ID: hb.ID(), Addrs: hb.Addrs()}); err != nil {
		t.Fatal(err)
	}
	ta := NewStreamTransport(ha, "/test", time.Second, nil)
	defer ta.Shutdown()
	tb := NewStreamTransport(hb, "/test", time.Second, nil)

	to := memberlist.Address{Name: hb.ID().String(), Addr: ta.placeholderAddr()}
	if _, err := ta.WriteToAddress([]byte("ping"), to); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-tb.PacketCh():
		if string(p.Buf) != "ping" {
			t.Fatalf("got %q", p.Buf)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no packet")
	}
	// A stream memberlist never takes from StreamCh (it stops reading at
	// shutdown).
	c, err := ta.DialAddressTimeout(to, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0}); err != nil { // the protocol is negotiated with the first write
		t.Fatal(err)
	}
	waitUntil(t, "inbound streams open", func() bool {
		return openStreams(hb, tb.packetProto) == 1 && openStreams(hb, tb.streamProto) == 1
	})

	if err := tb.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "inbound streams closed after Shutdown", func() bool {
		return openStreams(hb, tb.packetProto) == 0 && openStreams(hb, tb.streamProto) == 0
	})
}
