package scheduler

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Policy is a node's bidding policy (from its config file).
type Policy struct {
	// Prices is the node's price list.
	Prices PriceList
	// MaxLoad is the fraction (0..1] of each resource the node lets
	// instances use; a request that would push any resource above it is
	// declined. 0 means 1.
	MaxLoad float64
	// Labels are what the node advertises (region=eu, arch=arm64, ...).
	Labels map[string]string
	// Allow, if not empty, lists the only requesters served.
	Allow []peer.ID
	// Deny lists requesters never served.
	Deny []peer.ID
	// CreditLimit, if CheckCredit, is how far below zero a requester's
	// balance may be for the node to bid.
	CreditLimit Amount
	CheckCredit bool
	// Slice is the node's billing slice: it announces and awards with it,
	// and bids on and accepts only contracts with it (0: states none and
	// takes any, as nodes before slices were signed).
	Slice time.Duration
}

// NodeState is what the node knows about itself when deciding.
type NodeState struct {
	Self peer.ID
	// Capacity is the node's total; Free is what is left.
	Capacity       Resources
	Free           Resources
	FreePartitions int
	// RTT to the requester, when measured.
	RTT      time.Duration
	RTTKnown bool
	// Balance of the requester in the ledger, when known.
	Balance      Amount
	BalanceKnown bool
}

// Decision is the outcome of Decide: a bid (Code == DeclineNone) or a decline.
type Decision struct {
	Code DeclineCode
	Text string
	// Total and Fit are set for bids.
	Total Amount
	Fit   int
}

// Bids reports whether the decision is a bid.
func (d Decision) Bids() bool { return d.Code == DeclineNone }

// Decide is the bidder's pure decision: whether a node in state st under
// policy p bids on the announcement, and at what price and fit.
func Decide(a *Announcement, st NodeState, p *Policy) Decision {
	decline := func(c DeclineCode, text string) Decision { return Decision{Code: c, Text: text} }
	if slices.Contains(p.Deny, a.Requester) || (len(p.Allow) > 0 && !slices.Contains(p.Allow, a.Requester)) {
		return decline(DeclineRequester, "requester not allowed")
	}
	if c, t := a.Filter.CheckNode(st.Self, p.Labels); c != DeclineNone {
		return decline(c, t)
	}
	if p.Slice > 0 && a.Slice != 0 && a.Slice != int64(p.Slice) {
		// One slice per contract, agreed by both sides: a contract billed
		// in two slice lengths would be recorded twice, differently.
		return decline(DeclineSlice, fmt.Sprintf("slice %s differs from this node's %s", time.Duration(a.Slice), p.Slice))
	}
	r := a.Resources
	switch {
	case r.CPUMillis > st.Free.CPUMillis:
		return decline(DeclineCPU, "lacked cpu")
	case r.MemoryBytes > st.Free.MemoryBytes:
		return decline(DeclineMemory, "lacked memory")
	case r.DiskBytes > st.Free.DiskBytes:
		return decline(DeclineDisk, "lacked disk")
	case st.FreePartitions <= 0:
		return decline(DeclinePartitions, "no free partition")
	}
	maxLoad := p.MaxLoad
	if maxLoad <= 0 || maxLoad > 1 {
		maxLoad = 1
	}
	after := st.Capacity.Sub(st.Free).Add(r)
	load := maxRatio(after, st.Capacity)
	if load > maxLoad+1e-9 {
		return decline(DeclineMaxLoad, fmt.Sprintf("over max load %.0f%%", maxLoad*100))
	}
	total := p.Prices.Cost(r)
	if a.Filter.MaxPrice > 0 && total > a.Filter.MaxPrice {
		return decline(DeclineMaxPrice, "over max price")
	}
	if a.Filter.MaxRTT > 0 && (!st.RTTKnown || st.RTT > a.Filter.MaxRTT) {
		return decline(DeclineMaxRTT, "over max rtt "+a.Filter.MaxRTT.String())
	}
	if p.CheckCredit && st.BalanceKnown && st.Balance < -p.CreditLimit {
		return decline(DeclineCredit, "requester over credit limit")
	}
	fit := int((1 - load) * 1000)
	fit = max(0, min(1000, fit))
	return Decision{Total: total, Fit: fit}
}

// maxRatio is the largest used/capacity ratio over the three resources
// (resources with zero capacity count only if used).
func maxRatio(used, capacity Resources) float64 {
	ratio := func(u, c int64) float64 {
		if c <= 0 {
			if u > 0 {
				return 2
			}
			return 0
		}
		return float64(u) / float64(c)
	}
	return max(ratio(used.CPUMillis, capacity.CPUMillis), ratio(used.MemoryBytes, capacity.MemoryBytes), ratio(used.DiskBytes, capacity.DiskBytes))
}

// Advert is what a node advertises through the membership: capacity, what
// is free, and its labels.
type Advert struct {
	Capacity       Resources
	Free           Resources
	FreePartitions int
	Labels         map[string]string
	// NoBids: the member does not bid (requester-only or draining); it is
	// not a bidder of any auction.
	NoBids bool
}

// Prefilter is the auctioneer's side of Decide over an advert, used to
// pick a bounded bidder set: it returns the decline a node would give
// based on what it advertises (DeclineNone if it may fit).
func Prefilter(a *Announcement, id peer.ID, ad Advert) (DeclineCode, string) {
	if c, t := a.Filter.CheckNode(id, ad.Labels); c != DeclineNone {
		return c, t
	}
	r := a.Resources
	switch {
	case r.CPUMillis > ad.Free.CPUMillis:
		return DeclineCPU, "lacked cpu"
	case r.MemoryBytes > ad.Free.MemoryBytes:
		return DeclineMemory, "lacked memory"
	case r.DiskBytes > ad.Free.DiskBytes:
		return DeclineDisk, "lacked disk"
	case ad.FreePartitions <= 0:
		return DeclinePartitions, "no free partition"
	}
	return DeclineNone, ""
}

func copyLabels(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return maps.Clone(m)
}
