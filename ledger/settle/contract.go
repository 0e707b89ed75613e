package settle

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"reflect"
	"time"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// Contract converts a verified market contract to a ledger contract billed
// in slices of length slice — or, when the award states one (signed by the
// auctioneer, repeated by the winning bid and accepted by the provider),
// in the award's slice, whatever slice is given. Prices are the market's hourly list
// (micro-credits per core-hour, per GiB-hour of memory and of disk).
func Contract(c *scheduler.Contract, slice time.Duration) ledger.Contract {
	info := c.Info()
	req, bid := info.Request, info.Bid
	if s := info.Award.Slice; s > 0 {
		slice = time.Duration(s)
	}
	lc := ledger.Contract{
		InstanceID: string(req.Instance), Request: req.Name, Requester: req.Requester, Provider: info.Provider,
		Epoch: c.Epoch(), Price: Price(bid.Prices), Caps: Caps(req.Resources, slice), StartNanos: info.Award.Issued, SliceNanos: int64(slice),
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
	if c.Info().Award.Slice == 0 && lc.Caps == (ledger.Usage{}) {
		// An award that states no slice was made by a node older than
		// caps: its requester agreed to none, and such a node recorded the
		// contract without them (zero: no cap).
		want.Caps = ledger.Usage{}
	}
	if !reflect.DeepEqual(want, lc) {
		return errors.New("the contract does not say what its evidence says")
	}
	return nil
}

// Caps is the most an instance with the signed request's resources may use
// in one slice of length slice: CPU-seconds of its CPU share
// (CPUMillis × slice), its memory held the whole slice (memory byte-seconds,
// and peak), its disk quota held the whole slice (disk byte-seconds). The
// partition enforces the CPU and memory limits, and the biller clamps every
// receipt to the caps; a resource the request leaves at 0 has no cap.
// Network bytes have no cap: a request declares no network resource and
// the price list has no network price, so they bill nothing. Arithmetic
// saturates at 2^64-1 (no cap in practice) rather than wrapping.
func Caps(r scheduler.Resources, slice time.Duration) ledger.Usage {
	if slice <= 0 {
		return ledger.Usage{}
	}
	ns := uint64(slice)
	mulDiv := func(a int64, b, d uint64) uint64 {
		if a <= 0 {
			return 0
		}
		hi, lo := bits.Mul64(uint64(a), b)
		if hi >= d {
			return math.MaxUint64
		}
		q, _ := bits.Div64(hi, lo, d)
		return q
	}
	return ledger.Usage{
		CPUMicros:       mulDiv(r.CPUMillis, ns, 1_000_000), // millicores × ns / 1e6 = core-µs
		MemByteSeconds:  mulDiv(r.MemoryBytes, ns, 1_000_000_000),
		MemPeakBytes:    mulDiv(r.MemoryBytes, 1, 1),
		DiskByteSeconds: mulDiv(r.DiskBytes, ns, 1_000_000_000),
	}
}
