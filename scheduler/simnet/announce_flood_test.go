package simnet_test

import (
	"crypto/rand"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// announcement is a valid announcement by s, open for a minute (the most
// an announcement may ask).
func announcement(s *scheduler.Signer, i int) scheduler.Signed {
	id := make([]byte, scheduler.AuctionIDLen)
	_, _ = rand.Read(id)
	now := time.Now()
	name := "flood"
	return s.Sign(scheduler.KindAnnounce, &scheduler.Announcement{
		AuctionID: id, Instance: scheduler.NewInstanceID(s.ID(), name), Requester: s.ID(), Name: name,
		Generation: 1, Epoch: uint64(i + 1), RecipeCID: recipeCID,
		Resources: scheduler.Resources{CPUMillis: 100, MemoryBytes: 1 << 20, DiskBytes: 1 << 20},
		Issued:    now.UnixNano(), Expires: now.Add(scheduler.MaxWindow).UnixNano(),
	})
}

// TestAnnouncementFloodBounded: every announcement a node answers leaves
// state behind for a minute and more (to check the award that may
// follow). A member flooding valid announcements gets at most
// MaxBidsPerAuctioneer of them answered; peers that are no members of the
// grid get at most MaxBidsForStrangers answered together (keys are free:
// the bound per auctioneer alone would not hold many of them); and the
// node still bids for an honest requester.
func TestAnnouncementFloodBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 3, nil)
		req, bidder := nodes[0], nodes[1]
		rogue, err := net.AddRogue(t.Context(), func(*simnet.Rogue, scheduler.Inbound) {})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // virtual: the markets learn of the rogue member
		const flood = scheduler.MaxBidsPerAuctioneer + 300
		for i := range flood {
			rogue.Send(bidder.ID, announcement(rogue.Signer, i).Encode())
		}
		waitFor(t, "the flood handled", 60*time.Second, func() bool { return bidder.Market.Stats().Received >= flood })
		time.Sleep(time.Second)
		if got := rogue.Handled.Load(); got > scheduler.MaxBidsPerAuctioneer {
			t.Errorf("the bidder answered %d of %d announcements of one auctioneer (bound %d)", got, flood, scheduler.MaxBidsPerAuctioneer)
		}

		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		outsider, err := scheduler.NewSigner(key)
		if err != nil {
			t.Fatal(err)
		}
		sent, received := bidder.Market.Stats().Sent, bidder.Market.Stats().Received
		const strangers = scheduler.MaxBidsForStrangers + 200
		for i := range strangers {
			if i%100 == 0 { // fresh keys cost nothing
				key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
				outsider, _ = scheduler.NewSigner(key)
			}
			for !net.Inject(outsider.ID(), bidder.ID, announcement(outsider, i).Encode()) {
				time.Sleep(time.Millisecond) // virtual: the inbox is full
			}
		}
		waitFor(t, "the outsiders' announcements handled", 60*time.Second, func() bool { return bidder.Market.Stats().Received >= received+strangers })
		time.Sleep(time.Second)
		if got := bidder.Market.Stats().Sent - sent; got > scheduler.MaxBidsForStrangers+5 {
			t.Errorf("the bidder sent %d messages after %d announcements by peers that are no members (bound %d)", got, strangers, scheduler.MaxBidsForStrangers)
		}

		v := placed(t, req.Market, spec("web", "node="+bidder.ID.String()))
		if v.Node != bidder.ID.String() {
			t.Fatalf("placed on %s, want the bidder", v.Node)
		}
	})
}
