package scheduler

import (
	"errors"
	"math"
	"testing"
	"time"
)

// Cost documents that it saturates instead of overflowing; two saturated
// terms wrapped the uint64 sum round to (almost) zero, so a bid with absurd
// prices had a total of 0: it ranked cheapest, passed the auctioneer's
// max_price check, and the ledger then billed its price list.
func TestPriceCostSaturatesAcrossTerms(t *testing.T) {
	p := PriceList{PerCoreHour: 1 << 62, PerGiBHour: 1 << 62}
	r := Resources{CPUMillis: 3000, MemoryBytes: 3 << 30}
	if c := p.Cost(r); c != 1<<62 {
		t.Fatalf("cost of two saturated terms = %s, want the saturation value %d", c, int64(1<<62))
	}
	// And such a bid, totalled at the wrapped value, must not verify.
	s := testSigner(t, 3)
	env := s.Sign(KindBid, &Bid{AuctionID: make([]byte, AuctionIDLen), Prices: p, Total: 0, Fit: 1, Expires: t0.UnixNano()})
	if _, err := OpenBid(&env, r); err == nil {
		t.Fatal("bid with huge prices and total 0 accepted")
	}
}

// Expires-Issued overflowed int64 for an Issued far in the past and an
// Expires far in the future: the window check passed and the announcement
// stayed current (and in the bidder's bidding and seen sets) until 2262.
func TestAnnouncementWindowOverflow(t *testing.T) {
	s := testSigner(t, 1)
	ann := testAnnouncement(testRequest(s.ID(), "web"), 1)
	ann.Issued = -(1 << 62)
	ann.Expires = math.MaxInt64 - int64(time.Hour)
	env := s.Sign(KindAnnounce, ann)
	if a, err := OpenAnnouncement(&env, t0.Add(100*365*24*time.Hour)); err == nil {
		t.Fatalf("announcement valid until %s accepted", time.Unix(0, a.Expires).UTC())
	} else if !errors.Is(err, ErrMalformed) {
		t.Fatalf("want ErrMalformed, got %v", err)
	}
}
