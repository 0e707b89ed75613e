package scheduler

import (
	"crypto/ed25519"
	"testing"
	"time"
)

// BenchmarkVerifyBaseline is raw Ed25519 verification: the baseline for
// the cost of the signature checks a placement needs.
func BenchmarkVerifyBaseline(b *testing.B) {
	s := testSigner(b, 1)
	msg := make([]byte, 300)
	sig := ed25519.Sign(s.priv, msg)
	pub, _ := PublicKey(s.ID())
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkOpenBid is decoding and verifying one bid.
func BenchmarkOpenBid(b *testing.B) {
	s := testSigner(b, 1)
	ann := testAnnouncement(testRequest(s.ID(), "web"), 1)
	data := s.Sign(KindBid, &Bid{AuctionID: ann.AuctionID, Fit: 1, Expires: 1}).Encode()
	for b.Loop() {
		env, err := DecodeSigned(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := OpenBid(&env, ann.Resources); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide is the bidder's pure decision.
func BenchmarkDecide(b *testing.B) {
	self := testSigner(b, 1).ID()
	ann := testAnnouncement(testRequest(testSigner(b, 2).ID(), "web"), 1)
	ann.Filter.Labels = map[string]string{"region": "eu"}
	st := NodeState{Self: self, Capacity: Resources{4000, 8 << 30, 1 << 40}, Free: Resources{4000, 8 << 30, 1 << 40}, FreePartitions: 2}
	p := &Policy{Prices: PriceList{PerCoreHour: 1000}, Labels: map[string]string{"region": "eu"}}
	for b.Loop() {
		if !Decide(ann, st, p).Bids() {
			b.Fatal("declined")
		}
	}
}

// BenchmarkAuction50Bids is the pure auction over 50 bids, to the award.
func BenchmarkAuction50Bids(b *testing.B) {
	var entries []*BidEntry
	ann := testAnnouncement(testRequest(testSigner(b, 1).ID(), "web"), 1)
	for i := range 50 {
		s := testSigner(b, byte(i))
		bid := &Bid{AuctionID: ann.AuctionID, Total: Amount(1000 - i%7), Fit: i % 10, Expires: t0.Add(time.Hour).UnixNano()}
		entries = append(entries, &BidEntry{Bidder: s.ID(), Bid: bid})
	}
	for b.Loop() {
		a := NewAuction(DefaultAuctionConfig(), ann, nil, nil, t0)
		for _, e := range entries {
			if _, err := a.AddBid(t0, e); err != nil {
				b.Fatal(err)
			}
		}
		if acts := a.Tick(t0.Add(time.Second)); len(acts) != 1 || acts[0].Award == nil {
			b.Fatal("no award")
		}
	}
}
