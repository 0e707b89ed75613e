package scheduler

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// AuctionConfig tunes auctions.
type AuctionConfig struct {
	// Window is how long an auction stays open at most. Default 500ms.
	Window time.Duration
	// EnoughBids closes the auction early once this many bids are in
	// (0: close early only when every expected bidder answered). Default 0.
	EnoughBids int
	// MaxBids bounds the bids kept per auction; beyond it only bids better
	// than the worst kept one displace it. Default 64.
	MaxBids int
	// AwardTimeout is how long the provider has to accept an award before
	// the next bid is awarded. Default 2s.
	AwardTimeout time.Duration
}

// DefaultAuctionConfig returns the defaults.
func DefaultAuctionConfig() AuctionConfig {
	return AuctionConfig{Window: 500 * time.Millisecond, MaxBids: 64, AwardTimeout: 2 * time.Second}
}

func (c *AuctionConfig) validate() error {
	if c.Window <= 0 || c.Window > MaxWindow || c.MaxBids <= 0 || c.EnoughBids < 0 || c.AwardTimeout <= 0 {
		return fmt.Errorf("%w: auction config out of range", ErrInvalidRequest)
	}
	return nil
}

// AuctionPhase is where an auction is.
type AuctionPhase uint8

// Auction phases.
const (
	// PhaseOpen: collecting bids.
	PhaseOpen AuctionPhase = iota
	// PhaseAwarding: a bid was awarded; waiting for the provider to accept.
	PhaseAwarding
	// PhaseWon: the provider accepted; the contract is formed.
	PhaseWon
	// PhaseFailed: nobody placed it; see Explanation.
	PhaseFailed
)

// String returns the phase's name.
func (p AuctionPhase) String() string {
	switch p {
	case PhaseOpen:
		return "open"
	case PhaseAwarding:
		return "awarding"
	case PhaseWon:
		return "won"
	case PhaseFailed:
		return "failed"
	}
	return fmt.Sprintf("phase(%d)", uint8(p))
}

// BidEntry is a verified bid kept by an auction.
type BidEntry struct {
	Bidder peer.ID
	Bid    *Bid
	// Env is the signed bid, embedded in the award.
	Env Signed
	// RTT is the RTT used for ranking and the max-RTT rule: the larger of
	// the bidder's claim and the auctioneer's own measurement.
	RTT time.Duration
}

// DeclineEntry is one reason a node gave (or was given) for not placing.
type DeclineEntry struct {
	Node peer.ID
	Code DeclineCode
	Text string
}

// Action is an output of an auction step.
type Action struct {
	// Award, if set: send an award for this bid, at Epoch.
	Award *BidEntry
	Epoch uint64
	// Expired, if set: this award timed out; it must never become a
	// contract (a late accept is answered with a withdrawal).
	Expired *BidEntry
	// Failed, if set: the auction ended without a contract; Explanation says why.
	Failed      bool
	Explanation string
}

// Auction is the requester side of one auction as a pure state machine:
// inputs are bids, declines, accepts, refusals and the time; outputs are
// Actions. It does no I/O and reads no clock.
type Auction struct {
	ID   []byte
	Ann  *Announcement
	cfg  AuctionConfig
	name string

	Opened   time.Time
	Deadline time.Time
	Closed   time.Time
	Phase    AuctionPhase

	expected  map[peer.ID]bool
	responded map[peer.ID]bool
	bids      []*BidEntry
	declines  []DeclineEntry
	tried     map[peer.ID]bool

	awarded       *BidEntry
	awardDeadline time.Time
	// awards counts the awards made: the k-th is made at epoch Ann.Epoch+k.
	awards int
	// Winner is the provider once the phase is PhaseWon.
	Winner peer.ID
	// Explanation is set once the phase is PhaseFailed.
	Explanation string
	// Dropped counts bids dropped as duplicates or over the queue bound.
	Dropped int
}

// NewAuction opens an auction at now. expected is the bidder set asked
// (nil when the announcement was broadcast to an unknown set); prefiltered
// are nodes the auctioneer excluded from its advert before asking, counted
// in the explanation.
func NewAuction(cfg AuctionConfig, ann *Announcement, expected []peer.ID, prefiltered []DeclineEntry, now time.Time) *Auction {
	a := &Auction{
		ID: ann.AuctionID, Ann: ann, cfg: cfg, name: ann.Name,
		Opened: now, Deadline: now.Add(cfg.Window),
		responded: map[peer.ID]bool{}, tried: map[peer.ID]bool{},
		declines: slices.Clone(prefiltered),
	}
	if expected != nil {
		a.expected = make(map[peer.ID]bool, len(expected))
		for _, id := range expected {
			a.expected[id] = true
		}
	}
	return a
}

// Bids returns the bids kept, best first.
func (a *Auction) Bids() []*BidEntry {
	b := slices.Clone(a.bids)
	slices.SortFunc(b, a.compare)
	return b
}

// Declines returns the declines received (and prefiltered).
func (a *Auction) Declines() []DeclineEntry { return slices.Clone(a.declines) }

// Awarded returns the bid currently awarded (PhaseAwarding or PhaseWon).
func (a *Auction) Awarded() *BidEntry { return a.awarded }

func (a *Auction) compare(x, y *BidEntry) int {
	if c := cmp.Compare(x.Bid.Total, y.Bid.Total); c != 0 {
		return c
	}
	if c := cmp.Compare(y.Bid.Fit, x.Bid.Fit); c != 0 {
		return c
	}
	if c := cmp.Compare(x.RTT, y.RTT); c != 0 {
		return c
	}
	return cmp.Compare(tieBreak(a.ID, x.Bidder), tieBreak(a.ID, y.Bidder))
}

// AddBid offers a verified bid. It returns an error (and keeps nothing)
// for a second answer from the same bidder, a bid that breaks the
// announcement's price or RTT bounds (recorded as that bidder's decline), or
// a bid that loses to every kept bid when the queue is full. Bids that
// arrive while an award is pending are kept as fallbacks.
func (a *Auction) AddBid(now time.Time, e *BidEntry) ([]Action, error) {
	if a.Phase == PhaseWon || a.Phase == PhaseFailed {
		return nil, fmt.Errorf("%w: auction closed", ErrReplay)
	}
	if a.responded[e.Bidder] {
		a.Dropped++
		return nil, fmt.Errorf("%w: second answer from %s", ErrReplay, e.Bidder)
	}
	a.responded[e.Bidder] = true
	f := &a.Ann.Filter
	switch {
	case f.Node != "" && e.Bidder != f.Node, slices.Contains(f.ExcludeNodes, e.Bidder):
		// Bidders check the filter themselves, but the pin and the
		// exclusions name peers: the auctioneer enforces them too, so a
		// bidder that ignores them cannot take the instance.
		code, text := f.CheckNode(e.Bidder, nil)
		a.declines = append(a.declines, DeclineEntry{e.Bidder, code, text})
		return a.Tick(now), fmt.Errorf("%w: bid from a node the filter rules out (%s)", ErrUnauthorized, text)
	case f.MaxPrice > 0 && e.Bid.Total > f.MaxPrice:
		a.declines = append(a.declines, DeclineEntry{e.Bidder, DeclineMaxPrice, "over max price"})
		return a.Tick(now), fmt.Errorf("%w: bid over max price", ErrMalformed)
	case f.MaxRTT > 0 && e.RTT > f.MaxRTT:
		a.declines = append(a.declines, DeclineEntry{e.Bidder, DeclineMaxRTT, "over max rtt " + f.MaxRTT.String()})
		return a.Tick(now), fmt.Errorf("%w: bid over max rtt", ErrMalformed)
	case e.Bid.Slice != 0 && e.Bid.Slice != a.Ann.Slice:
		// The award takes the bid's slice, and the contract bills in it:
		// the requester's slice is the only one it agreed to (a bid
		// stating none comes from a node older than slices).
		a.declines = append(a.declines, DeclineEntry{e.Bidder, DeclineSlice, DeclineSlice.String()})
		return a.Tick(now), fmt.Errorf("%w: bid slice %s, announced %s", ErrMalformed, time.Duration(e.Bid.Slice), time.Duration(a.Ann.Slice))
	}
	if len(a.bids) >= a.cfg.MaxBids {
		worst := slices.MaxFunc(a.bids, a.compare)
		if a.compare(e, worst) >= 0 {
			a.Dropped++
			return a.Tick(now), fmt.Errorf("%w: bid queue full", ErrTooLarge)
		}
		a.bids = slices.DeleteFunc(a.bids, func(b *BidEntry) bool { return b == worst })
		a.Dropped++
	}
	a.bids = append(a.bids, e)
	return a.Tick(now), nil
}

// AddDecline records a decline. A node's first answer counts; later ones
// are ignored. A decline by the awarded provider is a refusal of the award.
func (a *Auction) AddDecline(now time.Time, d DeclineEntry) []Action {
	if a.Phase == PhaseAwarding && a.awarded != nil && d.Node == a.awarded.Bidder {
		a.declines = append(a.declines, DeclineEntry{d.Node, DeclineAwardInvalid, "refused the award: " + d.Text})
		return a.next(now)
	}
	if a.responded[d.Node] || a.Phase == PhaseWon || a.Phase == PhaseFailed {
		return nil
	}
	a.responded[d.Node] = true
	a.declines = append(a.declines, d)
	return a.Tick(now)
}

// Accepted records the awarded provider's acceptance. It reports whether
// the auction is won by it now.
func (a *Auction) Accepted(now time.Time, from peer.ID) bool {
	if a.Phase != PhaseAwarding || a.awarded == nil || a.awarded.Bidder != from {
		return false
	}
	a.Phase = PhaseWon
	a.Winner = from
	a.Closed = now
	return true
}

// Tick advances the auction to now: closes it when enough bids are in,
// everyone expected answered or the window ended; moves to the next bid
// when an award timed out.
func (a *Auction) Tick(now time.Time) []Action {
	switch a.Phase {
	case PhaseOpen:
		if a.shouldClose(now) {
			return a.next(now)
		}
	case PhaseAwarding:
		if !now.Before(a.awardDeadline) {
			expired := a.awarded
			a.declines = append(a.declines, DeclineEntry{expired.Bidder, DeclineNoAnswer, "did not accept the award"})
			return append([]Action{{Expired: expired}}, a.next(now)...)
		}
	}
	return nil
}

func (a *Auction) shouldClose(now time.Time) bool {
	if !now.Before(a.Deadline) {
		return true
	}
	if a.cfg.EnoughBids > 0 && len(a.bids) >= a.cfg.EnoughBids {
		return true
	}
	if a.expected != nil {
		for id := range a.expected {
			if !a.responded[id] {
				return false
			}
		}
		return true
	}
	return false
}

// AwardEpoch returns the epoch of the current (or last) award.
func (a *Auction) AwardEpoch() uint64 { return a.Ann.Epoch + uint64(max(a.awards-1, 0)) }

// next awards the best untried, unexpired bid at the next epoch, or fails.
func (a *Auction) next(now time.Time) []Action {
	var best *BidEntry
	for _, b := range a.bids {
		if a.awards >= MaxAwards {
			break
		}
		if a.tried[b.Bidder] || now.UnixNano() > b.Bid.Expires {
			continue
		}
		if best == nil || a.compare(b, best) < 0 {
			best = b
		}
	}
	if best == nil {
		a.Phase = PhaseFailed
		a.Closed = now
		a.awarded = nil
		a.Explanation = a.explain()
		return []Action{{Failed: true, Explanation: a.Explanation}}
	}
	if a.Phase == PhaseOpen {
		a.Closed = now
	}
	a.tried[best.Bidder] = true
	a.awarded = best
	a.awardDeadline = now.Add(a.cfg.AwardTimeout)
	a.Phase = PhaseAwarding
	a.awards++
	return []Action{{Award: best, Epoch: a.AwardEpoch()}}
}

// explain aggregates the declines: "no node placed web: 12 lacked memory,
// 3 excluded by region=eu, 1 over max price".
func (a *Auction) explain() string {
	counts := map[string]int{}
	for _, d := range a.declines {
		t := d.Text
		if t == "" {
			t = d.Code.String()
		}
		counts[t]++
	}
	if a.expected != nil {
		silent := 0
		for id := range a.expected {
			if !a.responded[id] {
				silent++
			}
		}
		if silent > 0 {
			counts["did not answer"] += silent
		}
	}
	for _, b := range a.bids {
		if !a.tried[b.Bidder] {
			counts["bid expired"]++
		}
	}
	if len(counts) == 0 {
		return "no node placed " + a.name + ": no node answered"
	}
	keys := slices.Collect(maps.Keys(counts))
	slices.SortFunc(keys, func(x, y string) int {
		if c := cmp.Compare(counts[y], counts[x]); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return "no node placed " + a.name + ": " + strings.Join(parts, ", ")
}
