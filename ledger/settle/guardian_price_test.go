package settle

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

// A guardian awards under the requester's delegation, not in its place: a
// guardian (or the provider it colludes with) must not bind the requester
// to a bid above the max price the requester's signed request sets. Such
// an award is no contract: its provider gets no evidence that bills the
// requester.
func TestGuardianCannotAwardAboveTheRequestsMaxPrice(t *testing.T) {
	alice, guard, bob := newParty(t), newParty(t), newParty(t)
	issued := time.Now().Add(-time.Hour).Truncate(time.Minute)
	contract := func(perCoreHour scheduler.Amount) (*scheduler.Contract, error) {
		req := &scheduler.Request{Requester: alice.market.ID(), Name: "web", Instance: scheduler.NewInstanceID(alice.market.ID(), "web"),
			Generation: 1, Timestamp: issued.UnixNano(), RecipeCID: schedtest.RecipeCID,
			Resources: scheduler.Resources{CPUMillis: 1000, MemoryBytes: 1 << 28}, State: scheduler.StateStarted,
			Constraints: scheduler.Constraints{MaxPrice: 5000},
			Delegation:  scheduler.Delegation{Guardians: []peer.ID{guard.market.ID()}}}
		auction := bytes.Repeat([]byte{7}, scheduler.AuctionIDLen)
		prices := scheduler.PriceList{PerCoreHour: perCoreHour}
		bid := bob.market.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: auction, Prices: prices, Total: prices.Cost(req.Resources),
			Fit: 500, Expires: issued.Add(10 * time.Second).UnixNano()})
		award := guard.market.Sign(scheduler.KindAward, &scheduler.Award{AuctionID: auction, Request: alice.market.Sign(scheduler.KindRequest, req),
			Bid: bid, Epoch: 2, Issued: issued.UnixNano()})
		accept := bob.market.Sign(scheduler.KindAccept, &scheduler.Accept{AuctionID: auction, Award: award.Digest(), Issued: issued.UnixNano()})
		c := &scheduler.Contract{Award: award, Accept: accept}
		return c, scheduler.OpenContract(c)
	}
	if _, err := contract(1000); err != nil {
		t.Fatalf("a guardian's award within the max price: %v", err)
	}
	c, err := contract(1_000_000_000)
	if err == nil {
		err = CheckContract(Contract(c, time.Minute))
	}
	if err == nil {
		t.Fatal("a guardian's award at 200,000× the requester's max price is valid contract evidence")
	}
}
