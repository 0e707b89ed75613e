// Package schedtest builds valid market messages for tests of the packages
// that consume them (the ledger's contract check, the daemon, the CLI).
package schedtest

import (
	"bytes"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
)

// RecipeCID is a syntactically valid recipe CID for test requests.
const RecipeCID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"

// Contract returns a verified contract: requester asks for instance name,
// and awards (itself, as auctioneer) provider's bid at epoch, issued at
// issued; the provider accepts. Prices: 1000 micro-credits per core-hour.
func Contract(requester, provider *scheduler.Signer, name string, epoch uint64, issued time.Time) (*scheduler.Contract, error) {
	return SlicedContract(requester, provider, name, epoch, issued, 0)
}

// SlicedContract is Contract with the billing slice (nanoseconds; 0: none)
// signed into the bid and the award.
func SlicedContract(requester, provider *scheduler.Signer, name string, epoch uint64, issued time.Time, slice int64) (*scheduler.Contract, error) {
	req := &scheduler.Request{Requester: requester.ID(), Name: name, Instance: scheduler.NewInstanceID(requester.ID(), name),
		Generation: 1, Timestamp: issued.UnixNano(), RecipeCID: RecipeCID,
		Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: 1 << 28}, State: scheduler.StateStarted}
	auction := bytes.Repeat([]byte{byte(epoch)}, scheduler.AuctionIDLen)
	prices := scheduler.PriceList{PerCoreHour: 1000}
	bid := provider.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: auction, Prices: prices, Total: prices.Cost(req.Resources),
		Fit: 500, Expires: issued.Add(10 * time.Second).UnixNano(), Slice: slice})
	award := requester.Sign(scheduler.KindAward, &scheduler.Award{AuctionID: auction, Request: requester.Sign(scheduler.KindRequest, req),
		Bid: bid, Epoch: epoch, Issued: issued.UnixNano(), Slice: slice})
	accept := provider.Sign(scheduler.KindAccept, &scheduler.Accept{AuctionID: auction, Award: award.Digest(), Issued: issued.UnixNano()})
	c := &scheduler.Contract{Award: award, Accept: accept}
	if err := scheduler.OpenContract(c); err != nil {
		return nil, err
	}
	return c, nil
}

// GuardianContract is Contract awarded by guardian, which the requester's
// signed request names in its delegation (a re-placement while the
// requester is offline).
func GuardianContract(requester, guardian, provider *scheduler.Signer, name string, epoch uint64, issued time.Time) (*scheduler.Contract, error) {
	req := &scheduler.Request{Requester: requester.ID(), Name: name, Instance: scheduler.NewInstanceID(requester.ID(), name),
		Generation: 1, Timestamp: issued.UnixNano(), RecipeCID: RecipeCID,
		Resources: scheduler.Resources{CPUMillis: 500, MemoryBytes: 1 << 28}, State: scheduler.StateStarted,
		Delegation: scheduler.Delegation{Guardians: []peer.ID{guardian.ID()}}}
	auction := bytes.Repeat([]byte{byte(epoch)}, scheduler.AuctionIDLen)
	prices := scheduler.PriceList{PerCoreHour: 1000}
	bid := provider.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: auction, Prices: prices, Total: prices.Cost(req.Resources),
		Fit: 500, Expires: issued.Add(10 * time.Second).UnixNano()})
	award := guardian.Sign(scheduler.KindAward, &scheduler.Award{AuctionID: auction, Request: requester.Sign(scheduler.KindRequest, req),
		Bid: bid, Epoch: epoch, Issued: issued.UnixNano()})
	accept := provider.Sign(scheduler.KindAccept, &scheduler.Accept{AuctionID: auction, Award: award.Digest(), Issued: issued.UnixNano()})
	c := &scheduler.Contract{Award: award, Accept: accept}
	if err := scheduler.OpenContract(c); err != nil {
		return nil, err
	}
	return c, nil
}
