package schedp2p

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/p2p/p2ptest"
	"github.com/weftgrid/weft/scheduler"
)

// TestFlooderDoesNotCrowdOutHealthyPeers: a peer that sends direct
// messages faster than the market's loop takes them (here: while nobody
// reads) fills only its own share of the inbound queue; a healthy peer's
// message sent afterwards is still delivered, and what the flooder
// queued stays within the per-peer bound.
func TestFlooderDoesNotCrowdOutHealthyPeers(t *testing.T) {
	c := p2ptest.NewCluster(t, 3)
	c.WaitConverged(t, 20*time.Second)
	flooder, healthy, b := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	ctx := context.Background()
	tf, err := New(ctx, flooder, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	th, err := New(ctx, healthy, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer th.Close()
	tb, err := New(ctx, b, p2ptest.Logger())
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()

	// More messages than the whole inbound queue holds.
	const flood = InboundQueue + 200
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				// An error is a stream refused over the per-peer
				// bound: counted as handled by the receiver too.
				_ = tf.Send(ctx, b.ID(), []byte{1, byte(i), byte(i >> 8)})
			}
		}()
	}
	for i := range flood {
		work <- i
	}
	close(work)
	wg.Wait()
	// Every stream was read (Send returns once written; wait until the
	// receiver handled them all: delivered, dropped or refused).
	waitFor(t, func() bool { return tb.handled.Load() >= flood })

	msg := []byte("from a healthy peer")
	if err := th.Send(ctx, b.ID(), msg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return tb.handled.Load() >= flood+1 })
	fromFlooder, gotHealthy := 0, false
	timeout := time.After(20 * time.Second)
	for !gotHealthy {
		select {
		case in := <-tb.Inbound():
			switch {
			case in.From == healthy.ID() && bytes.Equal(in.Data, msg):
				gotHealthy = true
			case in.From == flooder.ID():
				fromFlooder++
			}
		case <-timeout:
			t.Fatalf("the healthy peer's message was dropped (%d of the flooder's were queued)", fromFlooder)
		}
	}
	for quiet := false; !quiet; {
		select {
		case <-tb.Inbound():
			fromFlooder++
		case <-time.After(300 * time.Millisecond):
			quiet = true
		}
	}
	if fromFlooder > PeerInbound+1 { // +1: the one handed to the loop next
		t.Errorf("the flooder had %d messages queued, over the per-peer bound %d", fromFlooder, PeerInbound)
	}
}

// waitFor waits until cond holds, at most 30 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestInboxFairUnderACrowd: when many flooding sources fill the inbox in
// all, a quiet source's message still gets in (the largest source loses
// its oldest), and the sources are taken in turn.
func TestInboxFairUnderACrowd(t *testing.T) {
	var dropped atomic.Uint64
	b := newInbox(&dropped)
	b.totalMsgs, b.peerMsgs = 40, 30
	msg := func(i int) scheduler.Inbound { return scheduler.Inbound{Data: []byte{byte(i)}} }
	for i := range 30 {
		b.put("flood/a", msg(i))
		b.put("flood/b", msg(i))
	}
	b.put("quiet", msg(99))
	if b.msgs > b.totalMsgs {
		t.Fatalf("%d messages held, over the bound %d", b.msgs, b.totalMsgs)
	}
	var order []string
	for {
		in, ok := b.next()
		if !ok {
			break
		}
		if in.Data[0] == 99 {
			order = append(order, "quiet")
		} else {
			order = append(order, "flood")
		}
	}
	if i := slices.Index(order, "quiet"); i < 0 || i > 2 {
		t.Fatalf("the quiet source's message came at %d of %v", i, order)
	}
	if got := dropped.Load(); got != 61-40 {
		t.Fatalf("%d dropped, want %d", got, 61-40)
	}
}

// TestAnnouncementRateOnTopic: a member's valid announcements beyond its
// burst are ignored (not delivered, not relayed) until its allowance
// refills; auctioneers that are no members share one allowance however
// many keys they use; this node's own are never held back.
func TestAnnouncementRateOnTopic(t *testing.T) {
	now := time.Unix(1000, 0)
	member := p2ptest.NewNode(t)
	self := p2ptest.NewNode(t)
	g := &announceGate{self: self.ID(), member: func(p peer.ID) bool { return p == member.ID() }, lim: newRateLimiter(AnnounceRate, AnnounceBurst)}
	g.lim.now = func() time.Time { return now }
	msg := func(key crypto.PrivKey) *pubsub.Message {
		return &pubsub.Message{Message: &pb.Message{Data: signedAnnouncement(t, key)}}
	}
	accepted := func(n int, key func() crypto.PrivKey) int {
		ok := 0
		for range n {
			if g.validate(context.Background(), "", msg(key())) == pubsub.ValidationAccept {
				ok++
			}
		}
		return ok
	}
	fixed := func(k crypto.PrivKey) func() crypto.PrivKey { return func() crypto.PrivKey { return k } }
	if got := accepted(AnnounceBurst+50, fixed(member.PrivKey())); got != AnnounceBurst {
		t.Fatalf("a member flooding: %d accepted, want the burst %d", got, AnnounceBurst)
	}
	now = now.Add(time.Second)
	if got := accepted(AnnounceRate+10, fixed(member.PrivKey())); got != AnnounceRate {
		t.Fatalf("a second later: %d accepted, want %d", got, AnnounceRate)
	}
	fresh := func() crypto.PrivKey {
		k, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if got := accepted(AnnounceBurst+50, fresh); got != AnnounceBurst {
		t.Fatalf("strangers with fresh keys: %d accepted, want the shared burst %d", got, AnnounceBurst)
	}
	if got := accepted(AnnounceBurst+50, fixed(self.PrivKey())); got != AnnounceBurst+50 {
		t.Fatalf("own announcements: %d accepted, want all", got)
	}
}
