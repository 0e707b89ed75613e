package ledger

import (
	"context"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
)

// BillingGrace is how long after a slice ends its receipt may take: a slice
// of a contract's billable span with no receipt counts as unbilled once it
// ended more than BillingGrace ago, and a receipt entered more than
// BillingGrace after its slice ended counts as late. It is a constant, the
// same on every node, so every replica counts the same: a provider bills a
// slice at its next billing tick (at most a quarter of the slice, and at
// most MaxBillingTick) after an anti-entropy exchange begun after the slice
// ended (every anti-entropy interval, 1 s by default), which stays well
// inside it on a healthy grid.
const BillingGrace = 30 * time.Second

// MaxClockSkew is the clock-skew bound of a grid, the same as the market's:
// a receipt may be entered at most this long before its period ends by the
// author's clock, and a requester refuses a receipt whose period ends more
// than this after its own clock.
const MaxClockSkew = 30 * time.Second

// Span is the billable span of an agreement: its contract's start to the
// earliest of its end (an End by its requester or provider), the start of
// a newer epoch's contract for the same instance, or now while neither
// happened.
type Span struct {
	// Contract is the CID of the agreement's contract record the span was
	// computed from (the lowest CID among identical records).
	Contract cid.Cid
	// StartNanos is the contract's start.
	StartNanos int64
	// EndNanos is when the span ended (0: still open).
	EndNanos int64
	// EndedBy says what ended it: an End state, "fenced", or "" while open.
	EndedBy string
}

// records returns every record of ce's agreement (contract entries with
// the same body), ce first.
func records(s *Set, ce *Entry) []*Entry {
	out := []*Entry{ce}
	c := ce.Value().(Contract)
	for _, oe := range s.instance(c.InstanceID).bodies[string(ce.Body)] {
		if oe != ce {
			out = append(out, oe)
		}
	}
	return out
}

// endOf returns the earliest End of ce's agreement written by its requester
// or provider, or nil.
func endOf(s *Set, ce *Entry) *Entry {
	c := ce.Value().(Contract)
	var first *Entry
	for _, re := range records(s, ce) {
		for _, ee := range s.ends[re.id] {
			if ee.Author != c.Requester && ee.Author != c.Provider {
				continue
			}
			if first == nil || ee.Value().(End).AtNanos < first.Value().(End).AtNanos {
				first = ee
			}
		}
	}
	return first
}

// endAgainst is endOf for judging receipt re: an End its requester wrote
// after acknowledging re (later in its log) does not count against re. A
// requester cannot take back an acknowledgement with an end dated before
// the slice, which would make an honest provider's receipt after_end.
func endAgainst(s *Set, ce, re *Entry) *Entry {
	c := ce.Value().(Contract)
	var ackSeq uint64
	for _, a := range s.acks[re.id] {
		if a.Author == c.Requester && (ackSeq == 0 || a.Seq < ackSeq) {
			ackSeq = a.Seq
		}
	}
	var first *Entry
	for _, rec := range records(s, ce) {
		for _, ee := range s.ends[rec.id] {
			if ee.Author != c.Requester && ee.Author != c.Provider {
				continue
			}
			if ee.Author == c.Requester && ee.Author != c.Provider && ackSeq != 0 && ee.Seq > ackSeq {
				continue
			}
			if first == nil || ee.Value().(End).AtNanos < first.Value().(End).AtNanos {
				first = ee
			}
		}
	}
	return first
}

// SpanOf returns the billable span of contract entry ce.
func SpanOf(s *Set, ce *Entry) Span {
	c := ce.Value().(Contract)
	sp := Span{Contract: ce.id, StartNanos: c.StartNanos}
	if ee := endOf(s, ce); ee != nil {
		e := ee.Value().(End)
		sp.EndNanos, sp.EndedBy = max(e.AtNanos, c.StartNanos), e.State
	}
	if f := fenceOf(s, c); f != 0 && (sp.EndNanos == 0 || f < sp.EndNanos) {
		sp.EndNanos, sp.EndedBy = max(f, c.StartNanos), "fenced"
	}
	return sp
}

// Ended reports whether the billing of contract entry ce is over before
// slice i: the span ended at or before the slice's start.
func (sp Span) Ended(c Contract, i uint64) bool {
	start, _ := c.SliceBounds(i)
	return sp.EndNanos != 0 && start >= sp.EndNanos
}

// Unbilled is one agreement's unbilled slices (see Report.Unbilled).
type Unbilled struct {
	// Contract is the CID of the agreement's contract (lowest CID of its
	// records).
	Contract string `json:"contract"`
	// InstanceID is the contract's instance.
	InstanceID string `json:"instance_id"`
	// Epoch is the contract's epoch.
	Epoch uint64 `json:"epoch"`
	// Slices is how many slices are unbilled; First is the lowest of them.
	Slices int64  `json:"slices"`
	First  uint64 `json:"first"`
}

// dueSlices is how many slices of c's span sp ended at or before t: the
// slices i with end ≤ t and start < the span's end (the last, partial
// slice included).
func dueSlices(c Contract, sp Span, t int64) int64 {
	if c.SliceNanos <= 0 || t <= c.StartNanos || c.StartNanos <= 0 {
		return 0
	}
	n := (t - c.StartNanos) / c.SliceNanos // slices whose end ≤ t
	if sp.EndNanos != 0 {
		d := sp.EndNanos - c.StartNanos
		m := (d + c.SliceNanos - 1) / c.SliceNanos // slices starting before the end
		if d <= 0 {
			m = 0
		}
		n = min(n, m)
	}
	return n
}

// billTally is what unbilled counted: due slices (of agreed contracts with
// no contract problem, in their billable span, ended more than grace before
// now), those with exactly one receipt by the provider, and the unbilled
// ones (none).
type billTally struct {
	due, once, unbilled int64
}

// unbilled counts, for every agreed contract with no contract problem, the
// slices of its billable span that ended more than grace before now and have
// no receipt by its provider. bad holds the CIDs of contract entries with
// problems. It returns the tally and the agreements with unbilled slices,
// sorted by contract CID.
func unbilled(s *Set, now time.Time, grace time.Duration, bad map[cid.Cid]bool) (billTally, []Unbilled) {
	var tally billTally
	if now.IsZero() {
		return tally, []Unbilled{}
	}
	t := now.UnixNano() - int64(grace)
	out := []Unbilled{}
	seen := map[string]bool{}
	ids := make([]cid.Cid, 0, len(s.contracts))
	for id := range s.contracts {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].KeyString() < ids[j].KeyString() })
	for _, id := range ids {
		ce := s.contracts[id]
		if seen[string(ce.Body)] || bad[id] || s.ContractErr(ce) != nil {
			continue
		}
		seen[string(ce.Body)] = true
		c := ce.Value().(Contract)
		sp := SpanOf(s, ce)
		due := dueSlices(c, sp, t)
		if due <= 0 {
			continue
		}
		billed := map[uint64]int{}
		for _, re := range records(s, ce) {
			for _, r := range s.receipts[re.id] {
				if r.Author == c.Provider {
					if i := r.Value().(Receipt).Slice; i < uint64(due) {
						billed[i]++
					}
				}
			}
		}
		tally.due += due
		for _, k := range billed {
			if k == 1 {
				tally.once++
			}
		}
		n := due - int64(len(billed))
		if n <= 0 {
			continue
		}
		first := uint64(0)
		for billed[first] > 0 {
			first++
		}
		tally.unbilled += n
		out = append(out, Unbilled{Contract: id.String(), InstanceID: c.InstanceID, Epoch: c.Epoch, Slices: n, First: first})
	}
	return tally, out
}

// isLate reports whether receipt entry re was entered more than grace after
// its period ended.
func isLate(re *Entry, r Receipt, grace time.Duration) bool {
	return re.TimeNanos-r.ToNanos > int64(grace)
}

// EndSpan ends the billable span of this node's contract for instance at
// epoch (as its requester or provider) at time at, with state (EndDestroyed,
// EndFailed, EndDone, EndStopped) and reason, unless it has ended already
// at or before at (a requester's end is a bound, settle.StopAllowance after
// it asked for the stop: the host's end at the moment it stopped the
// instance comes earlier, and counts). It reports whether it appended an
// End; with no such contract it does nothing.
func (l *Ledger) EndSpan(ctx context.Context, instance string, epoch uint64, at time.Time, state, reason string) (bool, error) {
	me := l.ID()
	if me == "" {
		return false, nil
	}
	if len(reason) > MaxEndReason {
		reason = reason[:MaxEndReason]
	}
	var target *Entry
	l.View(func(s *Set) {
		var cands []*Entry
		for _, ce := range s.byInstance[instance] {
			c := ce.Value().(Contract)
			if c.Epoch == epoch && (c.Provider == me || c.Requester == me) && s.ContractErr(ce) == nil {
				cands = append(cands, ce)
			}
		}
		if len(cands) == 0 {
			return
		}
		sort.Slice(cands, func(i, j int) bool {
			if (cands[i].Author == me) != (cands[j].Author == me) {
				return cands[i].Author == me
			}
			return cands[i].id.KeyString() < cands[j].id.KeyString()
		})
		if ee := endOf(s, cands[0]); ee == nil || ee.Value().(End).AtNanos > at.UnixNano() {
			target = cands[0]
		}
	})
	if target == nil {
		return false, nil
	}
	if _, err := l.Append(ctx, End{Contract: target.id, AtNanos: at.UnixNano(), State: state, Reason: reason}); err != nil {
		return false, err
	}
	return true, nil
}

// Ended reports whether this node's contract for instance at epoch (as its
// requester or provider) is in the ledger with an End at or before at.
func (l *Ledger) Ended(instance string, epoch uint64, at time.Time) bool {
	me := l.ID()
	ended := false
	l.View(func(s *Set) {
		for _, ce := range s.byInstance[instance] {
			c := ce.Value().(Contract)
			if c.Epoch != epoch || (c.Provider != me && c.Requester != me) || s.ContractErr(ce) != nil {
				continue // (a contract naming this node that it never agreed to ends nothing of its own)
			}
			if ee := endOf(s, ce); ee != nil && ee.Value().(End).AtNanos <= at.UnixNano() {
				ended = true
				return
			}
		}
	})
	return ended
}

// EndedByRequester reports whether a contract this node provides for
// instance at epoch has an End by its requester at or before at: the
// requester stopped paying (it asked for a stop or a destruction, or it
// simply says so), and the host owes it no more service. A node hosting its
// own request is never told so by its own ends.
func (l *Ledger) EndedByRequester(instance string, epoch uint64, at time.Time) bool {
	me := l.ID()
	ended := false
	l.View(func(s *Set) {
		for _, ce := range s.byInstance[instance] {
			c := ce.Value().(Contract)
			if c.Epoch != epoch || c.Provider != me || s.ContractErr(ce) != nil {
				continue
			}
			for _, re := range records(s, ce) {
				for _, ee := range s.ends[re.id] {
					if ee.Author == c.Requester && ee.Author != c.Provider && ee.Value().(End).AtNanos <= at.UnixNano() {
						ended = true
						return
					}
				}
			}
		}
	})
	return ended
}
