package schedp2p

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/weftgrid/weft/p2p/p2ptest"
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
				if err := tf.Send(ctx, b.ID(), []byte{1, byte(i), byte(i >> 8)}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	for i := range flood {
		work <- i
	}
	close(work)
	wg.Wait()
	// Every stream was read (Send returns once written; wait until the
	// receiver handled them all: delivered or dropped).
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
	if fromFlooder > PeerInbound {
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
