package scheduler

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

func bidders(t *testing.T, n int) []*Signer {
	out := make([]*Signer, n)
	for i := range out {
		out[i] = testSigner(t, byte(100+i))
	}
	return out
}

func entry(s *Signer, ann *Announcement, total Amount, fit int) *BidEntry {
	b := &Bid{AuctionID: ann.AuctionID, Total: total, Fit: fit, Expires: t0.Add(time.Minute).UnixNano()}
	return &BidEntry{Bidder: s.ID(), Bid: b, Env: s.Sign(KindBid, b)}
}

func ids(ss []*Signer) []peer.ID {
	out := make([]peer.ID, len(ss))
	for i, s := range ss {
		out[i] = s.ID()
	}
	return out
}

func TestAuctionClosesWhenAllAnsweredAndAwardsCheapest(t *testing.T) {
	bs := bidders(t, 4)
	ann := testAnnouncement(testRequest(bs[0].ID(), "web"), 1)
	a := NewAuction(DefaultAuctionConfig(), ann, ids(bs), nil, t0)
	for i, b := range bs[:3] {
		acts, err := a.AddBid(t0, entry(b, ann, Amount(300-100*i), 500))
		if err != nil || len(acts) != 0 {
			t.Fatalf("bid %d: %v %v", i, err, acts)
		}
	}
	acts := a.AddDecline(t0, DeclineEntry{bs[3].ID(), DeclineMemory, "lacked memory"})
	if len(acts) != 1 || acts[0].Award == nil || acts[0].Award.Bidder != bs[2].ID() {
		t.Fatalf("want award to the cheapest (2), got %+v", acts)
	}
	if !a.Accepted(t0, bs[2].ID()) || a.Phase != PhaseWon || a.Winner != bs[2].ID() {
		t.Fatalf("phase %s", a.Phase)
	}
}

func TestAuctionTieBreakIsDeterministic(t *testing.T) {
	bs := bidders(t, 5)
	ann := testAnnouncement(testRequest(bs[0].ID(), "web"), 1)
	winner := func(order []int) peer.ID {
		a := NewAuction(DefaultAuctionConfig(), ann, nil, nil, t0)
		for _, i := range order {
			a.AddBid(t0, entry(bs[i], ann, 100, 500))
		}
		acts := a.Tick(t0.Add(time.Second))
		return acts[0].Award.Bidder
	}
	if w1, w2 := winner([]int{0, 1, 2, 3, 4}), winner([]int{4, 2, 0, 3, 1}); w1 != w2 {
		t.Fatalf("arrival order changed the winner: %s vs %s", w1, w2)
	}
}

func TestAuctionWindowEndAndNextBidOnRefusalOrTimeout(t *testing.T) {
	bs := bidders(t, 3)
	ann := testAnnouncement(testRequest(bs[0].ID(), "web"), 1)
	cfg := DefaultAuctionConfig()
	a := NewAuction(cfg, ann, nil, nil, t0)
	a.AddBid(t0, entry(bs[0], ann, 1, 500))
	a.AddBid(t0, entry(bs[1], ann, 2, 500))
	a.AddBid(t0, entry(bs[2], ann, 3, 500))
	if acts := a.Tick(t0.Add(cfg.Window / 2)); len(acts) != 0 {
		t.Fatalf("closed before the window ended: %+v", acts)
	}
	acts := a.Tick(t0.Add(cfg.Window))
	if acts[0].Award.Bidder != bs[0].ID() || acts[0].Epoch != ann.Epoch {
		t.Fatalf("first award not to the cheapest at the announced epoch: %+v", acts)
	}
	// The provider refuses: next bid, at the next epoch.
	acts = a.AddDecline(t0.Add(cfg.Window), DeclineEntry{bs[0].ID(), DeclineAwardInvalid, "capacity taken"})
	if len(acts) != 1 || acts[0].Award.Bidder != bs[1].ID() || acts[0].Epoch != ann.Epoch+1 {
		t.Fatalf("after refusal: %+v", acts)
	}
	// The next one never answers: after the award timeout, its award
	// expires and the third gets one, at a new epoch again.
	acts = a.Tick(t0.Add(cfg.Window + cfg.AwardTimeout))
	if len(acts) != 2 || acts[0].Expired == nil || acts[0].Expired.Bidder != bs[1].ID() ||
		acts[1].Award.Bidder != bs[2].ID() || acts[1].Epoch != ann.Epoch+2 {
		t.Fatalf("after timeout: %+v", acts)
	}
	// An accept from someone not awarded changes nothing.
	if a.Accepted(t0, bs[0].ID()) {
		t.Fatal("accept by a non-awarded bidder won")
	}
	acts = a.AddDecline(t0.Add(cfg.Window+cfg.AwardTimeout), DeclineEntry{bs[2].ID(), DeclineAwardInvalid, "no"})
	if len(acts) != 1 || !acts[0].Failed || !strings.Contains(acts[0].Explanation, "did not accept the award") {
		t.Fatalf("after every bid failed: %+v", acts)
	}
}

func TestAuctionEnoughBidsClosesEarly(t *testing.T) {
	bs := bidders(t, 3)
	ann := testAnnouncement(testRequest(bs[0].ID(), "web"), 1)
	cfg := DefaultAuctionConfig()
	cfg.EnoughBids = 2
	a := NewAuction(cfg, ann, ids(bs), nil, t0)
	a.AddBid(t0, entry(bs[0], ann, 5, 500))
	acts, _ := a.AddBid(t0, entry(bs[1], ann, 4, 500))
	if len(acts) != 1 || acts[0].Award.Bidder != bs[1].ID() {
		t.Fatalf("want early close with 2 bids: %+v", acts)
	}
}

func TestAuctionFloodBounded(t *testing.T) {
	bs := bidders(t, 2)
	ann := testAnnouncement(testRequest(bs[0].ID(), "web"), 1)
	cfg := DefaultAuctionConfig()
	cfg.MaxBids = 4
	a := NewAuction(cfg, ann, nil, nil, t0)
	if _, err := a.AddBid(t0, entry(bs[0], ann, 10, 500)); err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		if _, err := a.AddBid(t0, entry(bs[0], ann, 0, 1000)); !errors.Is(err, ErrReplay) {
			t.Fatalf("duplicate bid: %v", err)
		}
	}
	// Many distinct bidders: the queue stays bounded and keeps the best.
	for i := range 50 {
		s := testSigner(t, byte(i))
		a.AddBid(t0, entry(s, ann, Amount(100+i), 500))
	}
	if len(a.bids) != cfg.MaxBids {
		t.Fatalf("kept %d bids", len(a.bids))
	}
	if a.Bids()[0].Bidder != bs[0].ID() {
		t.Fatal("best bid lost to the flood")
	}
}

func TestAuctionBoundsAndExplanation(t *testing.T) {
	bs := bidders(t, 6)
	req := testRequest(bs[0].ID(), "web")
	ann := testAnnouncement(req, 1)
	ann.Filter.MaxPrice = 50
	pre := []DeclineEntry{{bs[5].ID(), DeclineLabel, "excluded by region=eu"}}
	a := NewAuction(DefaultAuctionConfig(), ann, ids(bs[:5]), pre, t0)
	if _, err := a.AddBid(t0, entry(bs[0], ann, 60, 500)); err == nil {
		t.Fatal("bid over max price kept")
	}
	a.AddDecline(t0, DeclineEntry{bs[1].ID(), DeclineMemory, "lacked memory"})
	a.AddDecline(t0, DeclineEntry{bs[2].ID(), DeclineMemory, "lacked memory"})
	a.AddDecline(t0, DeclineEntry{bs[3].ID(), DeclineLabel, "excluded by region=eu"})
	acts := a.Tick(t0.Add(time.Hour))
	want := "no node placed web: 2 excluded by region=eu, 2 lacked memory, 1 did not answer, 1 over max price"
	if len(acts) != 1 || !acts[0].Failed || acts[0].Explanation != want {
		t.Fatalf("got %+v\nwant %q", acts, want)
	}
}

func TestDecide(t *testing.T) {
	self := testSigner(t, 1).ID()
	req := testRequest(testSigner(t, 2).ID(), "web")
	ann := testAnnouncement(req, 1)
	st := NodeState{Self: self, Capacity: Resources{4000, 8 << 30, 1 << 40}, Free: Resources{4000, 8 << 30, 1 << 40}, FreePartitions: 2, RTT: 5 * time.Millisecond, RTTKnown: true}
	p := &Policy{Prices: PriceList{PerCoreHour: 1000}, Labels: map[string]string{"region": "eu"}}
	if d := Decide(ann, st, p); !d.Bids() || d.Total != 500 || d.Fit <= 0 {
		t.Fatalf("plain bid: %+v", d)
	}
	cases := []struct {
		name string
		mod  func(a *Announcement, s *NodeState, p *Policy)
		code DeclineCode
	}{
		{"memory", func(a *Announcement, s *NodeState, p *Policy) { s.Free.MemoryBytes = 1 }, DeclineMemory},
		{"cpu", func(a *Announcement, s *NodeState, p *Policy) { s.Free.CPUMillis = 1 }, DeclineCPU},
		{"partitions", func(a *Announcement, s *NodeState, p *Policy) { s.FreePartitions = 0 }, DeclinePartitions},
		{"label", func(a *Announcement, s *NodeState, p *Policy) { a.Filter.Labels = map[string]string{"region": "us"} }, DeclineLabel},
		{"pin", func(a *Announcement, s *NodeState, p *Policy) { a.Filter.Node = a.Requester }, DeclineNotPinned},
		{"excluded", func(a *Announcement, s *NodeState, p *Policy) { a.Filter.ExcludeNodes = []peer.ID{self} }, DeclineExcluded},
		{"label value", func(a *Announcement, s *NodeState, p *Policy) {
			a.Filter.ExcludeLabel, a.Filter.ExcludeValues = "region", []string{"eu"}
		}, DeclineExcluded},
		{"price", func(a *Announcement, s *NodeState, p *Policy) { a.Filter.MaxPrice = 10 }, DeclineMaxPrice},
		{"rtt", func(a *Announcement, s *NodeState, p *Policy) { a.Filter.MaxRTT = time.Millisecond }, DeclineMaxRTT},
		{"deny", func(a *Announcement, s *NodeState, p *Policy) { p.Deny = []peer.ID{a.Requester} }, DeclineRequester},
		{"allow", func(a *Announcement, s *NodeState, p *Policy) { p.Allow = []peer.ID{self} }, DeclineRequester},
		{"load", func(a *Announcement, s *NodeState, p *Policy) { p.MaxLoad = 0.1 }, DeclineMaxLoad},
		{"credit", func(a *Announcement, s *NodeState, p *Policy) {
			p.CheckCredit, p.CreditLimit, s.Balance, s.BalanceKnown = true, 100, -101, true
		}, DeclineCredit},
	}
	for _, c := range cases {
		a2, st2, p2 := *ann, st, *p
		c.mod(&a2, &st2, &p2)
		if d := Decide(&a2, st2, &p2); d.Code != c.code || d.Text == "" {
			t.Errorf("%s: got %v %q, want %v", c.name, d.Code, d.Text, c.code)
		}
	}
}

func TestFencingOrder(t *testing.T) {
	alice, b1, b2, guard := testSigner(t, 1), testSigner(t, 2), testSigner(t, 3), testSigner(t, 4)
	req := testRequest(alice.ID(), "web", guard.ID())
	c1 := contractFor(t, alice, alice, b1, req, 1)
	c2 := contractFor(t, alice, alice, b2, req, 2)
	c2g := contractFor(t, guard, alice, b1, req, 2)
	if !Wins(c2, c1) || Wins(c1, c2) {
		t.Fatal("higher epoch must win")
	}
	if Wins(c2, c2g) == Wins(c2g, c2) {
		t.Fatal("same-epoch contracts must be totally ordered")
	}
	if !ShouldStop(b1.ID(), c1, c2) || ShouldStop(b2.ID(), c2, c1) || ShouldStop(b1.ID(), c1, c1) {
		t.Fatal("ShouldStop wrong")
	}
	// Same provider at a newer epoch: keep the copy (it is re-awarded).
	c3 := contractFor(t, alice, alice, b2, req, 3)
	if ShouldStop(b2.ID(), c2, c3) {
		t.Fatal("a host re-awarded its own instance must not stop")
	}
}

func TestGuardiansAndBidderSetDeterministic(t *testing.T) {
	var members []peer.ID
	for i := range 30 {
		members = append(members, testSigner(t, byte(i)).ID())
	}
	id := NewInstanceID(members[0], "web")
	g1 := Guardians(id, members, members[:1], 3)
	rev := append([]peer.ID(nil), members...)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	g2 := Guardians(id, rev, members[:1], 3)
	if fmt.Sprint(g1) != fmt.Sprint(g2) || len(g1) != 3 {
		t.Fatalf("guardians depend on order: %v vs %v", g1, g2)
	}
	for _, g := range g1 {
		if g == members[0] {
			t.Fatal("requester chosen as its own guardian")
		}
	}
	// Removing a non-guardian member does not change the guardians.
	var fewer []peer.ID
	for _, m := range members {
		if m != members[29] || contains(g1, m) {
			fewer = append(fewer, m)
		}
	}
	if fmt.Sprint(Guardians(id, fewer, members[:1], 3)) != fmt.Sprint(g1) {
		t.Fatal("guardians changed when an unrelated member left")
	}
	alive := func(p peer.ID) bool { return p != g1[0] }
	if ActingGuardian(g1, alive) != g1[1] {
		t.Fatal("acting guardian must be the first live one")
	}
	bs := BidderSet(id, members, 8)
	if len(bs) != 8 || fmt.Sprint(bs) != fmt.Sprint(BidderSet(id, rev, 8)) {
		t.Fatalf("bidder set %v", bs)
	}
}

func contains(s []peer.ID, id peer.ID) bool {
	for _, x := range s {
		if x == id {
			return true
		}
	}
	return false
}

func TestApplySLA(t *testing.T) {
	node := testSigner(t, 5).ID()
	var s RequestSpec
	err := ApplySLA(&s, []string{"node=" + node.String(), "region=eu", "label.gpu=a100", "colocate=db", "anti_affinity=set",
		"anti_affinity_scope=zone", "max_price=0.25", "max_rtt=20ms", "wait_for_capacity=true", "grace=5s", "guardians=0"})
	if err != nil {
		t.Fatal(err)
	}
	c := s.Constraints
	if c.Node != node || c.Labels["region"] != "eu" || c.Labels["gpu"] != "a100" || c.CoLocate != "db" || c.AntiAffinity != "set" ||
		c.AntiAffinityScope != "zone" || c.MaxPrice != 250000 || c.MaxRTT != 20*time.Millisecond || !s.WaitForCapacity ||
		s.Grace != 5*time.Second || s.Guardians != -1 {
		t.Fatalf("parsed %+v %+v", c, s)
	}
	for _, bad := range []string{"node=xyz", "max_price=-1", "max_rtt=fast", "noequals", "grace=1y", "colocate=a b"} {
		if err := ApplySLA(&RequestSpec{}, []string{bad}); !errors.Is(err, ErrBadConstraint) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestShouldReplace(t *testing.T) {
	alice, g1, g2, other := testSigner(t, 1).ID(), testSigner(t, 2).ID(), testSigner(t, 3).ID(), testSigner(t, 4).ID()
	req := testRequest(alice, "web", g1, g2)
	req.Grace = 5 * time.Second
	up := map[peer.ID]bool{alice: true, g1: true, g2: true, other: true}
	alive := func(id peer.ID) bool { return up[id] }
	if ShouldReplace(alice, req, 4*time.Second, alive, t0) {
		t.Fatal("re-placed before the grace ended")
	}
	if !ShouldReplace(alice, req, 5*time.Second, alive, t0) {
		t.Fatal("requester must re-place after the grace")
	}
	if ShouldReplace(g1, req, time.Minute, alive, t0) {
		t.Fatal("a guardian acted while the requester is alive")
	}
	up[alice] = false
	if !ShouldReplace(g1, req, time.Minute, alive, t0) || ShouldReplace(g2, req, time.Minute, alive, t0) || ShouldReplace(other, req, time.Minute, alive, t0) {
		t.Fatal("only the first live guardian acts")
	}
	up[g1] = false
	if !ShouldReplace(g2, req, time.Minute, alive, t0) {
		t.Fatal("the next guardian must act when the first is gone")
	}
	req.Delegation.Expires = t0.UnixNano()
	if ShouldReplace(g2, req, time.Minute, alive, t0) {
		t.Fatal("acted under an expired delegation")
	}
}

// TestAuctionRefusesBidInAnotherSlice: the award takes the winning bid's
// slice (it becomes the contract's billing slice), so a bid stating a
// slice other than the announcement's is declined, however cheap: a
// provider cannot impose 100 ms slices (ten receipts a second in every
// ledger) or 24 h ones on the requester. A bid stating none (a node older
// than slices) still counts.
func TestAuctionRefusesBidInAnotherSlice(t *testing.T) {
	bs := bidders(t, 3)
	ann := testAnnouncement(testRequest(bs[0].ID(), "web"), 1)
	ann.Slice = int64(time.Minute)
	a := NewAuction(DefaultAuctionConfig(), ann, ids(bs), nil, t0)
	cheat := entry(bs[0], ann, 1, 500)
	cheat.Bid.Slice = int64(100 * time.Millisecond)
	if _, err := a.AddBid(t0, cheat); !errors.Is(err, ErrMalformed) {
		t.Fatalf("a bid in another slice: %v", err)
	}
	honest := entry(bs[1], ann, 50, 500)
	honest.Bid.Slice = ann.Slice
	if _, err := a.AddBid(t0, honest); err != nil {
		t.Fatal(err)
	}
	older := entry(bs[2], ann, 100, 500)
	acts, err := a.AddBid(t0, older)
	if err != nil {
		t.Fatalf("a bid stating no slice: %v", err)
	}
	if len(acts) != 1 || acts[0].Award == nil || acts[0].Award.Bidder != bs[1].ID() {
		t.Fatalf("want the award to the cheapest bid in the announced slice, got %+v", acts)
	}
	if !strings.Contains(a.explain(), "different slice") {
		t.Errorf("explanation does not name the slice: %s", a.explain())
	}
}
