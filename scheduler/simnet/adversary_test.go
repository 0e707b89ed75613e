package simnet_test

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// A rogue member answers every announcement with a flood: hundreds of
// duplicate valid bids, forged bids, garbage and oversized messages; and
// it never accepts the award it may win. The auction must still place the
// instance on an honest node, and the rogue must end up ignored.
func TestBidFlooderDoesNotStallAuction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 8, nil)
		req := nodes[0]
		rogue, err := net.AddRogue(t.Context(), func(r *simnet.Rogue, in scheduler.Inbound) {
			env, err := scheduler.DecodeSigned(in.Data)
			if err != nil || env.Kind != scheduler.KindAnnounce {
				return
			}
			ann, err := scheduler.OpenAnnouncement(&env, time.Now())
			if err != nil {
				return
			}
			bid := r.Signer.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: ann.AuctionID, Fit: 1000,
				Expires: time.Now().Add(time.Minute).UnixNano()})
			forged := bid
			forged.Sig = bytes.Repeat([]byte{1}, 64)
			for range 300 {
				r.Send(env.Signer, bid.Encode())
				r.Send(env.Signer, forged.Encode())
				r.Send(env.Signer, []byte("garbage"))
			}
			r.Send(env.Signer, make([]byte, scheduler.MaxMessageBytes+1))
		})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		v := placed(t, req.Market, spec("web"))
		if v.Node == rogue.ID.String() {
			t.Fatal("placed on the rogue")
		}
		// At most the window plus one award timeout (if the rogue won the award).
		if el := time.Since(start); el > scheduler.DefaultAuctionConfig().Window+scheduler.DefaultAuctionConfig().AwardTimeout+time.Second {
			t.Fatalf("placement took %s of virtual time", el)
		}
		if st := req.Market.Stats(); st.Dropped < 100 {
			t.Fatalf("requester dropped only %d messages", st.Dropped)
		}
		// A second placement: the rogue is penalized, so its flood is
		// dropped before any signature check.
		placed(t, req.Market, spec("web2"))
	})
}

// Forged, replayed and stale messages injected at a host change nothing.
func TestForgedAndReplayedMessagesRejectedByHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 6, nil)
		req := nodes[0]
		v := placed(t, req.Market, spec("web", "grace=0s"))
		host := net.Node(mustDecode(t, v.Node))
		c1 := req.Market.Contract(v.InstanceID)
		if c1 == nil {
			t.Fatal("no contract")
		}
		mallory, err := net.AddRogue(t.Context(), func(*simnet.Rogue, scheduler.Inbound) {})
		if err != nil {
			t.Fatal(err)
		}
		before := host.Market.Stats().Dropped

		// A request update forged by mallory (destroy the instance).
		info := c1.Info()
		fake := *info.Request
		fake.State, fake.Generation = scheduler.StateDestroyed, fake.Generation+1
		net.Inject(mallory.ID, host.ID, mallory.Signer.Sign(scheduler.KindRequest, &fake).Encode())
		// The genuine request replayed (same generation).
		net.Inject(mallory.ID, host.ID, info.Award.Request.Encode())
		// A contract notice forged by mallory with a higher epoch.
		forgedAward := mallory.Signer.Sign(scheduler.KindAward, &scheduler.Award{AuctionID: info.Award.AuctionID,
			Request: info.Award.Request, Bid: info.Award.Bid, Epoch: 99, Issued: time.Now().UnixNano()})
		notice := mallory.Signer.Sign(scheduler.KindContract, &scheduler.ContractNotice{Contract: scheduler.Contract{Award: forgedAward, Accept: c1.Accept}})
		net.Inject(mallory.ID, host.ID, notice.Encode())
		// The award replayed.
		net.Inject(mallory.ID, host.ID, c1.Award.Encode())

		waitFor(t, "host rejects the forgeries", 5*time.Second, func() bool { return host.Market.Stats().Dropped >= before+3 })
		time.Sleep(3 * time.Second) // virtual: let statuses flow
		if s := net.Serving(v.InstanceID); len(s) != 1 || s[0] != host.ID {
			t.Fatalf("serving %v after forgeries", s)
		}
		if h := host.Market.Hosted(); len(h) != 1 || h[0].Fenced || h[0].Epoch != 1 {
			t.Fatalf("hosted %+v", h)
		}

		// After a re-placement, the old award replayed to the old host does
		// not bring its copy back.
		host.Down()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if _, err := req.Market.Wait(ctx, "web", func(v scheduler.InstanceView) bool { return v.Epoch == 2 && v.State == scheduler.StateStarted }); err != nil {
			t.Fatal(err)
		}
		host.Up()
		waitFor(t, "old copy fenced", 30*time.Second, func() bool { return len(net.Serving(v.InstanceID)) == 1 })
		net.Inject(mallory.ID, host.ID, c1.Award.Encode())
		time.Sleep(3 * time.Second)
		if s := net.Serving(v.InstanceID); len(s) != 1 || s[0] == host.ID {
			t.Fatalf("serving %v after the old award was replayed", s)
		}
	})
}
