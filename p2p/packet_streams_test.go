package p2p_test

import (
	"context"
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/p2p/p2ptest"
)

// TestPacketStreamsBoundedPerPeer: memberlist packets ride one long-lived
// stream per peer and direction. A peer opening many packet streams, each
// announcing a maximum-size packet and sending nothing more, gets only a
// few of them read (the rest are reset at once): it cannot hold a reader
// and a packet's buffer per stream, for ever, without bound.
func TestPacketStreamsBoundedPerPeer(t *testing.T) {
	n := p2ptest.NewNode(t)
	attacker, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := attacker.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Host().Addrs()}); err != nil {
		t.Fatal(err)
	}
	const streams = 32
	var reset atomic.Int32
	for range streams {
		s, err := attacker.NewStream(ctx, n.ID(), protocol.ID(string(n.ProtocolPrefix())+"/memberlist/packet/1"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Reset()
		var hdr [4]byte
		binary.BigEndian.PutUint32(hdr[:], 256<<10)
		_, _ = s.Write(hdr[:])
		go func(s network.Stream) {
			var b [1]byte
			if _, err := s.Read(b[:]); err != nil {
				reset.Add(1) // the node reset it (it never writes on a packet stream)
			}
		}(s)
	}
	deadline := time.Now().Add(20 * time.Second)
	for reset.Load() < streams-8 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d packet streams of one peer were refused; the node holds the rest open", reset.Load(), streams)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
