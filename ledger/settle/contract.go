package settle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// Contract converts a verified market contract to a ledger contract billed
// in slices of length slice. Prices are the market's hourly list
// (micro-credits per core-hour, per GiB-hour of memory and of disk).
func Contract(c *scheduler.Contract, slice time.Duration) ledger.Contract {
	info := c.Info()
	req, bid := info.Request, info.Bid
	lc := ledger.Contract{
		InstanceID: string(req.Instance), Request: req.Name, Requester: req.Requester, Provider: info.Provider,
		Epoch: c.Epoch(), Price: Price(bid.Prices), StartNanos: info.Award.Issued, SliceNanos: int64(slice),
		RecipeCID: req.RecipeCID, Auction: hex.EncodeToString(info.Award.AuctionID), Evidence: c.Encode(),
	}
	if info.Auctioneer != req.Requester {
		// A guardian awarded under the request's delegation (OpenAward
		// checked it): it may write the contract, and the audit accepts
		// it as author because CheckContract re-derives this field.
		lc.Auctioneer = info.Auctioneer
	}
	return lc
}

// CheckContract verifies a ledger contract against its evidence: the
// market's award (signed by the requester, or by a guardian under the
// requester's signed delegation) and the provider's acceptance of it, which
// must say what the contract says. A ledger entry's own signature only
// proves who wrote it: without this, any peer could write a contract at a
// higher epoch for someone else's instance and fence its real provider.
func CheckContract(lc ledger.Contract) error {
	if len(lc.Evidence) == 0 {
		return errors.New("no evidence (the market's signed award and acceptance)")
	}
	c, err := scheduler.DecodeContract(lc.Evidence)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	want := Contract(c, time.Duration(lc.SliceNanos))
	want.Evidence = lc.Evidence
	if !reflect.DeepEqual(want, lc) {
		return errors.New("the contract does not say what its evidence says")
	}
	return nil
}
