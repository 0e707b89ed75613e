package schedp2p

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p/p2ptest"
	"github.com/weftgrid/weft/scheduler"
)

// signedAnnouncement is a valid announcement signed by key.
func signedAnnouncement(t *testing.T, key crypto.PrivKey) []byte {
	t.Helper()
	s, err := scheduler.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ann := &scheduler.Announcement{
		AuctionID: bytes.Repeat([]byte{7}, scheduler.AuctionIDLen), Instance: scheduler.NewInstanceID(s.ID(), "web"),
		Requester: s.ID(), Name: "web", Generation: 1, Epoch: 1, RecipeCID: "bafyreiadshsgn4y4zhv3ij6fwi75bs47uuhexomxhnbl3ax7xt3g3dzbci",
		Issued: now.UnixNano(), Expires: now.Add(time.Second).UnixNano(),
	}
	return s.Sign(scheduler.KindAnnounce, ann).Encode()
}

func recv(t *testing.T, tr *Transport, from peer.ID, want []byte) {
	t.Helper()
	select {
	case in := <-tr.Inbound():
		if in.From != from || !bytes.Equal(in.Data, want) {
			t.Fatalf("received %d bytes from %s, want %d from %s", len(in.Data), in.From, len(want), from)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received")
	}
}

// TestLibp2pTransport sends direct messages and gossips announcements
// between real libp2p nodes on loopback; a forged announcement is not
// delivered (the topic validator rejects it) and an oversized direct
// message is refused.
func TestLibp2pTransport(t *testing.T) {
	c := p2ptest.NewCluster(t, 2)
	c.WaitConverged(t, 20*time.Second)
	a, b := c.Nodes[0], c.Nodes[1]
	ctx := context.Background()
	ta, err := New(ctx, a, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Close()
	tb, err := New(ctx, b, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()

	msg := []byte("a direct market message")
	if err := ta.Send(ctx, b.ID(), msg); err != nil {
		t.Fatal(err)
	}
	recv(t, tb, a.ID(), msg)
	if err := ta.Send(ctx, b.ID(), make([]byte, scheduler.MaxMessageBytes+1)); err == nil {
		t.Fatal("an oversized direct message was sent")
	}

	// Gossip: wait for the mesh, then a valid announcement arrives.
	good := signedAnnouncement(t, a.PrivKey())
	forged := bytes.Clone(good)
	forged[len(forged)-1] ^= 1 // breaks the signature
	if err := ta.Broadcast(ctx, forged); err == nil {
		t.Fatal("a forged announcement was published")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if err := ta.Broadcast(ctx, good); err != nil {
			t.Fatal(err)
		}
		select {
		case in := <-tb.Inbound():
			if !bytes.Equal(in.Data, good) {
				t.Fatalf("delivered %d bytes that are not the valid announcement", len(in.Data))
			}
			return
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the announcement never arrived")
		}
	}
}

func TestValidateAnnouncement(t *testing.T) {
	n := p2ptest.NewNode(t)
	good := signedAnnouncement(t, n.PrivKey())
	forged := bytes.Clone(good)
	forged[len(forged)-1] ^= 1
	s, _ := scheduler.NewSigner(n.PrivKey())
	bid := s.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: bytes.Repeat([]byte{1}, scheduler.AuctionIDLen), Expires: 1}).Encode()
	cases := map[string]struct {
		data []byte
		want pubsub.ValidationResult
	}{
		"valid":               {good, pubsub.ValidationAccept},
		"forged":              {forged, pubsub.ValidationReject},
		"not an announcement": {bid, pubsub.ValidationReject},
		"garbage":             {[]byte("garbage"), pubsub.ValidationReject},
		"oversized":           {make([]byte, scheduler.MaxMessageBytes+1), pubsub.ValidationReject},
	}
	for name, c := range cases {
		m := &pubsub.Message{Message: &pb.Message{Data: c.data}}
		if got := validateAnnouncement(context.Background(), "", m); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
}

func FuzzValidateAnnouncement(f *testing.F) {
	f.Add([]byte("garbage"))
	f.Add([]byte{0xa4, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &pubsub.Message{Message: &pb.Message{Data: data}}
		if validateAnnouncement(context.Background(), "", m) == pubsub.ValidationAccept {
			s, err := scheduler.DecodeSigned(data)
			if err != nil || s.Kind != scheduler.KindAnnounce || s.Verify() != nil {
				t.Fatalf("accepted an invalid message")
			}
		}
	})
}

// TestSendToPeerThatNeverReads: a peer that accepts market streams and
// never reads them holds a sender no longer than its context's deadline,
// and messages to a healthy peer go through meanwhile.
func TestSendToPeerThatNeverReads(t *testing.T) {
	c := p2ptest.NewCluster(t, 3)
	c.WaitConverged(t, 20*time.Second)
	a, stuck, b := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	ctx := context.Background()
	ta, err := New(ctx, a, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Close()
	tb, err := New(ctx, b, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	var mu sync.Mutex
	var held []network.Stream
	done := false
	stuck.Host().SetStreamHandler(stuck.ProtocolPrefix()+Protocol, func(s network.Stream) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			_ = s.Reset()
			return
		}
		held = append(held, s)
	})
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		done = true
		for _, s := range held {
			_ = s.Reset()
		}
	}()
	finished := make(chan error, 1)
	go func() {
		var last error
		for range 32 {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			last = ta.Send(sctx, stuck.ID(), bytes.Repeat([]byte{1}, scheduler.MaxMessageBytes))
			cancel()
		}
		finished <- last
	}()
	msg := []byte("to a healthy peer")
	if err := ta.Send(ctx, b.ID(), msg); err != nil {
		t.Fatal(err)
	}
	recv(t, tb, a.ID(), msg)
	select {
	case <-finished:
	case <-time.After(time.Minute):
		t.Fatal("sends to a peer that never reads did not end with their contexts")
	}
}
