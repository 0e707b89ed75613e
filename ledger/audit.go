package ledger

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/weftgrid/weft/recipes/clock"
)

// Problem is one thing wrong with one entry.
type Problem struct {
	// CID names the entry.
	CID string `json:"cid"`
	// Kind is the entry's kind, when known.
	Kind string `json:"kind,omitempty"`
	// Author is the entry's author, when known.
	Author string `json:"author,omitempty"`
	// Code is a stable machine-readable name for the problem.
	Code string `json:"code"`
	// Problem says what is wrong.
	Problem string `json:"problem"`
}

// Problem codes.
const (
	CodeBadEntry         = "bad_entry"         // bytes that do not decode or verify
	CodeCIDMismatch      = "cid_mismatch"      // bytes that do not hash to their CID
	CodeMissingPrev      = "missing_prev"      // predecessor in the author's log not held
	CodeBrokenLink       = "broken_link"       // prev does not name the author's entry seq-1
	CodeEquivocation     = "equivocation"      // two entries with the same author and seq
	CodeBadContract      = "bad_contract"      // contract breaks a rule
	CodeUnknownContract  = "unknown_contract"  // receipt for a contract not in the ledger
	CodeBadReceipt       = "bad_receipt"       // receipt inconsistent with its contract
	CodeWrongAmount      = "wrong_amount"      // amount ≠ price × usage
	CodeOverCaps         = "over_caps"         // usage above the contract's caps
	CodeOverlap          = "overlap"           // slice billed twice / periods overlap
	CodeFenced           = "fenced"            // billed under an epoch after a newer one began
	CodeUnagreedContract = "unagreed_contract" // a contract whose evidence does not check out (Config.ContractCheck)
	CodeBadAck           = "bad_ack"           // ack or dispute inconsistent with its receipt
	CodeBadGrant         = "bad_grant"         // grant by an author not allowed to grant
	CodeBadCheckpoint    = "bad_checkpoint"    // checkpoint that is not a root or undercounts
	CodeRootMismatch     = "root_mismatch"     // export root ≠ root of its entries
	CodeNotEnded         = "not_ended"         // receipt entered (or answered) before its period ended, beyond the clock-skew bound
	CodeAfterEnd         = "after_end"         // receipt for a slice that began after the contract's span ended (stopped, destroyed, failed)
	CodeBadEnd           = "bad_end"           // end entry by neither party, or for an unknown contract
)

// Disputed is a receipt the requester refused.
type Disputed struct {
	// Receipt is the receipt's CID.
	Receipt string `json:"receipt"`
	// Dispute is the dispute's CID.
	Dispute string `json:"dispute"`
	// Reason is the requester's reason.
	Reason string `json:"reason"`
}

// Report is the result of an audit. JSON field names are a contract of the
// CLI (`weft ledger audit --json`).
type Report struct {
	// OK is true when there is no problem.
	OK bool `json:"ok"`
	// Entries is the number of entries audited.
	Entries int `json:"entries"`
	// Receipts is the number of receipts.
	Receipts int `json:"receipts"`
	// Contracts is the number of contracts.
	Contracts int `json:"contracts"`
	// Authors is the number of distinct authors.
	Authors int `json:"authors"`
	// Checkpoints is the number of checkpoint entries.
	Checkpoints int `json:"checkpoints"`
	// Root is the ledger's Merkle root, hex.
	Root string `json:"root"`
	// Problems lists what is wrong, each naming the entry.
	Problems []Problem `json:"problems"`
	// Unconfirmed lists receipts neither acknowledged nor disputed.
	Unconfirmed []string `json:"unconfirmed"`
	// Disputed lists disputed receipts.
	Disputed []Disputed `json:"disputed"`
	// Equivocations lists groups of CIDs sharing an author and seq.
	Equivocations [][]string `json:"equivocations"`
	// Acked is the number of acknowledged receipts; AckedAmount their sum
	// in pico-credits.
	Acked       int    `json:"acked"`
	AckedAmount uint64 `json:"acked_amount"`
	// Unbilled is the number of unbilled slices: slices of an agreed
	// contract's billable span (its start to the earliest of its end, the
	// start of a newer epoch, or now) that ended more than Grace before
	// AsOf and have no receipt by its provider. UnbilledContracts breaks it
	// down per contract.
	Unbilled          int64      `json:"unbilled"`
	UnbilledContracts []Unbilled `json:"unbilled_contracts"`
	// DueSlices is how many slices Unbilled was counted among: the slices
	// of agreed contracts' billable spans that ended more than Grace
	// before AsOf. BilledOnce is how many of them carry exactly one
	// receipt by the provider; BilledOnce / DueSlices is the billing
	// completeness.
	DueSlices  int64 `json:"due_slices"`
	BilledOnce int64 `json:"billed_once"`
	// Late is the number of receipts entered more than Grace after their
	// period ended (billed, but late).
	Late int `json:"late"`
	// UnauthorizedGrants lists the grants whose author is not an allowed
	// granter: they count in no balance.
	UnauthorizedGrants []string `json:"unauthorized_grants"`
	// Ignored lists entries that carry no weight because their author has
	// no standing for what they name: a receipt not by its contract's
	// provider, an ack or dispute not by its contract's requester, an end
	// by neither party, a contract its named parties did not agree to (not
	// written by one of them, or failing the contract check), and any of
	// these naming an entry not in the ledger or one that is itself
	// ignored. Each is listed with what is wrong with it. Like unauthorized
	// grants, they move no balance, bill nothing, and are not problems: a
	// stranger must not be able to fail every node's audit.
	Ignored []Problem `json:"ignored"`
	// AsOf is the time unbilled slices were counted at (AuditOptions.Now).
	AsOf time.Time `json:"as_of,omitzero"`
	// GraceNanos is the grace used (BillingGrace unless overridden).
	GraceNanos int64 `json:"grace_ns"`
}

// AuditOptions tune an audit.
type AuditOptions struct {
	// Granters are the only authors whose grants count (Grants); others'
	// grants are listed in Report.UnauthorizedGrants. Empty: none count.
	Granters []peer.ID
	// Now is the time unbilled slices are counted at (the CLI passes the
	// current time; an audit of an export file, the newest entry's time).
	// Zero: no unbilled count.
	Now time.Time
	// Grace overrides BillingGrace (tests). Zero: BillingGrace.
	Grace time.Duration
	// MaxSkew overrides MaxClockSkew (tests). Zero: MaxClockSkew.
	MaxSkew time.Duration
	// ContractCheck, when set and the set has none, is the contract check
	// (Set.SetContractCheck) of an audit of an export.
	ContractCheck func(Contract) error
}

func problem(e *Entry, code, format string, args ...any) Problem {
	p := Problem{Code: code, Problem: fmt.Sprintf(format, args...)}
	if e != nil {
		p.CID, p.Kind, p.Author = e.id.String(), e.Kind.String(), e.Author.String()
	}
	return p
}

// Audit checks every link and every receipt of s against its contract
// (signatures were verified when the entries were added) and computes the
// root. extra are problems found while loading (e.g. undecodable records of
// an export file); they are included in the report.
func Audit(s *Set, opt AuditOptions, extra ...Problem) Report {
	if opt.ContractCheck != nil && s.check == nil {
		s.SetContractCheck(opt.ContractCheck)
	}
	if opt.Grace == 0 {
		opt.Grace = BillingGrace
	}
	if opt.MaxSkew == 0 {
		opt.MaxSkew = MaxClockSkew
	}
	r := Report{Entries: s.Len(), Receipts: s.Receipts(), Contracts: len(s.contracts), Authors: len(s.authors), Root: s.RootHex(),
		AsOf: opt.Now, GraceNanos: int64(opt.Grace)}
	r.Problems = append(r.Problems, extra...)
	granters := map[peer.ID]bool{}
	for _, g := range opt.Granters {
		granters[g] = true
	}
	badContract := map[cid.Cid]bool{}
	byCID := make(map[string]*Entry, len(s.entries))
	for id, e := range s.entries {
		byCID[id.String()] = e
	}
	for _, a := range s.Authors() {
		l := s.authors[a]
		for seq, es := range l.bySeq {
			for _, e := range es {
				if seq == 1 {
					continue
				}
				prev := l.bySeq[seq-1]
				if len(prev) == 0 {
					r.Problems = append(r.Problems, problem(e, CodeMissingPrev, "predecessor seq %d of author's log not held", seq-1))
					continue
				}
				ok := false
				for _, p := range prev {
					ok = ok || p.id.Equals(e.Prev)
				}
				if !ok {
					r.Problems = append(r.Problems, problem(e, CodeBrokenLink, "prev %s is not the author's entry at seq %d", e.Prev, seq-1))
				}
			}
		}
	}
	for _, group := range s.Equivocations() {
		ids := make([]string, len(group))
		for i, e := range group {
			ids[i] = e.id.String()
		}
		r.Equivocations = append(r.Equivocations, ids)
		for _, e := range group {
			r.Problems = append(r.Problems, problem(e, CodeEquivocation, "author signed %d entries at seq %d", len(group), e.Seq))
		}
	}
	for _, e := range s.contracts {
		ps := contractProblems(s, e)
		if len(ps) > 0 {
			badContract[e.id] = true
		}
		r.Problems = append(r.Problems, ps...)
	}
	for _, inst := range s.Instances() {
		r.Problems = append(r.Problems, instanceProblems(s, inst)...)
	}
	for _, e := range s.entries {
		switch v := e.Value().(type) {
		case Receipt:
			r.Problems = append(r.Problems, receiptProblems(s, e, v)...)
			r.Problems = append(r.Problems, timeProblems(s, e, v, opt.Now, opt.MaxSkew)...)
			if _, known := s.contracts[v.Contract]; known && isLate(e, v, opt.Grace) {
				r.Late++
			}
			// Only the contract's requester answers a receipt (as in
			// statements and balances); anyone else's ack or dispute is a
			// bad_ack and leaves the receipt unconfirmed.
			var requester peer.ID
			if ce, ok := s.contracts[v.Contract]; ok {
				requester = ce.Value().(Contract).Requester
			}
			switch receiptStatus(s, e, requester) {
			case StatusAcked:
				r.Acked++
				r.AckedAmount = satAdd(r.AckedAmount, v.Amount)
			case StatusDisputed:
				for _, d := range s.disputes[e.id] {
					if d.Author == requester {
						r.Disputed = append(r.Disputed, Disputed{Receipt: e.id.String(), Dispute: d.id.String(), Reason: d.Value().(Dispute).Reason})
					}
				}
			default:
				r.Unconfirmed = append(r.Unconfirmed, e.id.String())
			}
		case Ack:
			r.Problems = append(r.Problems, ackProblems(s, e, v.Receipt, &v.Amount)...)
		case Dispute:
			r.Problems = append(r.Problems, ackProblems(s, e, v.Receipt, nil)...)
		case Checkpoint:
			r.Checkpoints++
			r.Problems = append(r.Problems, checkpointProblems(e, v)...)
		case Grant:
			if !granters[e.Author] {
				// Anyone may sign a grant; it simply counts nowhere. Not a
				// problem: a stranger must not be able to fail every audit.
				r.UnauthorizedGrants = append(r.UnauthorizedGrants, e.id.String())
			} else if _, err := pubKeyOf(v.To); err != nil {
				r.Problems = append(r.Problems, problem(e, CodeBadGrant, "grant to %q: not an Ed25519 peer ID", v.To))
			}
		case End:
			r.Problems = append(r.Problems, endProblems(s, e, v)...)
		}
	}
	kept := r.Problems[:0]
	for _, p := range r.Problems {
		if e, ok := byCID[p.CID]; ok && !hasStanding(s, e) {
			r.Ignored = append(r.Ignored, p)
		} else {
			kept = append(kept, p)
		}
	}
	r.Problems = kept
	sortProblems(r.Ignored)
	if r.Ignored == nil {
		r.Ignored = []Problem{}
	}
	sortProblems(r.Problems)
	var tally billTally
	tally, r.UnbilledContracts = unbilled(s, opt.Now, opt.Grace, badContract)
	r.Unbilled, r.DueSlices, r.BilledOnce = tally.unbilled, tally.due, tally.once
	sort.Strings(r.Unconfirmed)
	sort.Strings(r.UnauthorizedGrants)
	if r.UnauthorizedGrants == nil {
		r.UnauthorizedGrants = []string{}
	}
	sort.Slice(r.Disputed, func(i, j int) bool { return r.Disputed[i].Dispute < r.Disputed[j].Dispute })
	if r.Problems == nil {
		r.Problems = []Problem{}
	}
	if r.Unconfirmed == nil {
		r.Unconfirmed = []string{}
	}
	if r.Disputed == nil {
		r.Disputed = []Disputed{}
	}
	if r.Equivocations == nil {
		r.Equivocations = [][]string{}
	}
	r.OK = len(r.Problems) == 0
	return r
}

func sortProblems(ps []Problem) {
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.CID != b.CID {
			return a.CID < b.CID
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Problem < b.Problem
	})
}

// hasStanding reports whether e's author may write e about what it names
// (see Report.Ignored): entries without standing carry no weight, and what
// is wrong with them is listed, not a problem. Other kinds (grants,
// checkpoints) always have it.
func hasStanding(s *Set, e *Entry) bool {
	contract := func(cc cid.Cid) (Contract, bool) {
		ce, ok := s.contracts[cc]
		if !ok || !hasStanding(s, ce) {
			return Contract{}, false
		}
		return ce.Value().(Contract), true
	}
	receiptContract := func(rc cid.Cid) (Contract, bool) {
		re, ok := s.entries[rc]
		if !ok || re.Kind != KindReceipt || !hasStanding(s, re) {
			return Contract{}, false
		}
		return contract(re.Value().(Receipt).Contract)
	}
	switch v := e.Value().(type) {
	case Contract:
		named := e.Author == v.Requester || e.Author == v.Provider || (v.Auctioneer != "" && e.Author == v.Auctioneer)
		return named && s.ContractErr(e) == nil
	case Receipt:
		c, ok := contract(v.Contract)
		return ok && e.Author == c.Provider
	case Ack:
		c, ok := receiptContract(v.Receipt)
		return ok && e.Author == c.Requester
	case Dispute:
		c, ok := receiptContract(v.Receipt)
		return ok && e.Author == c.Requester
	case End:
		c, ok := contract(v.Contract)
		return ok && (e.Author == c.Requester || e.Author == c.Provider)
	}
	return true
}

func contractProblems(s *Set, e *Entry) []Problem {
	c := e.Value().(Contract)
	var out []Problem
	switch {
	case e.Author == c.Requester || e.Author == c.Provider:
	case c.Auctioneer != "" && e.Author == c.Auctioneer:
		// A guardian's award under the requester's signed delegation: valid
		// only when its evidence proves the delegation (Set.ContractErr
		// checks the award's signer is Auctioneer and that the request
		// names it as a guardian).
		if s.check == nil {
			out = append(out, problem(e, CodeBadContract, "written by the auctioneer %s, and no evidence check to verify its delegation", c.Auctioneer))
		}
	default:
		out = append(out, problem(e, CodeBadContract, "author is neither requester, provider nor the delegated auctioneer"))
	}
	if c.StartNanos <= 0 {
		out = append(out, problem(e, CodeBadContract, "start %d ns is not positive", c.StartNanos))
	}
	if _, err := pubKeyOf(c.Requester); err != nil {
		out = append(out, problem(e, CodeBadContract, "requester is not an Ed25519 peer ID"))
	}
	if _, err := pubKeyOf(c.Provider); err != nil {
		out = append(out, problem(e, CodeBadContract, "provider is not an Ed25519 peer ID"))
	}
	if c.SliceNanos <= 0 {
		out = append(out, problem(e, CodeBadContract, "slice length %d ns is not positive", c.SliceNanos))
	} else if c.StartNanos > 0 && !c.HasSlice(0) {
		out = append(out, problem(e, CodeBadContract, "start %d ns + slice %d ns is beyond int64", c.StartNanos, c.SliceNanos))
	}
	if c.InstanceID == "" {
		out = append(out, problem(e, CodeBadContract, "no instance ID"))
	}
	return out
}

// instanceProblems checks fencing across the contracts of one instance: one
// contract per epoch, and no two receipts of the instance overlapping.
func instanceProblems(s *Set, inst string) []Problem {
	var out []Problem
	byEpoch := map[uint64][]*Entry{}
	var receipts []*Entry
	for _, ce := range s.byInstance[inst] {
		if err := s.ContractErr(ce); err != nil {
			out = append(out, problem(ce, CodeUnagreedContract, "contract for instance %q not agreed by its parties: %v", inst, err))
			continue
		}
		c := ce.Value().(Contract)
		byEpoch[c.Epoch] = append(byEpoch[c.Epoch], ce)
		for _, re := range s.receipts[ce.id] {
			// Only the provider's receipts bill: anyone else's (a
			// bad_receipt) must not make the provider's own for the same
			// slice look like a second bill.
			if re.Author == c.Provider {
				receipts = append(receipts, re)
			}
		}
	}
	for epoch, es := range byEpoch {
		// Both parties may record the same agreement (identical bodies);
		// two different agreements for one epoch break fencing.
		distinct := map[string]bool{}
		for _, e := range es {
			distinct[string(e.Body)] = true
		}
		if len(distinct) > 1 {
			for _, e := range es {
				out = append(out, problem(e, CodeBadContract, "%d different contracts for instance %q at epoch %d", len(distinct), inst, epoch))
			}
		}
	}
	// Overlaps are checked twice. Within one contract every receipt of its
	// provider counts, answered or not: a provider billing its own slice
	// twice is reported even when its requester refused the second bill.
	// Across the instance's contracts (epochs), a receipt its requester
	// disputed takes no part: it bills nothing, and the dispute is listed.
	// That is how a split ends honestly: the requester's side kept (and
	// paid) the older copy while guardians on the other side placed a newer
	// one, whose receipts for the same slices the requester then refused
	// as already paid.
	seen := map[string]bool{}
	add := func(ps []Problem) {
		for _, p := range ps {
			if !seen[p.CID] { // one overlap per receipt, as before
				seen[p.CID] = true
				out = append(out, p)
			}
		}
	}
	byContract := map[cid.Cid][]*Entry{}
	var counted []*Entry
	for _, e := range receipts {
		r := e.Value().(Receipt)
		byContract[r.Contract] = append(byContract[r.Contract], e)
		if receiptStatus(s, e, s.contracts[r.Contract].Value().(Contract).Requester) != StatusDisputed {
			counted = append(counted, e)
		}
	}
	for _, rs := range byContract {
		add(overlaps(rs))
	}
	add(overlaps(counted))
	return out
}

// overlaps reports each receipt of receipts that overlaps an earlier one (in
// period start, CID order) or bills a slice of an epoch already billed.
func overlaps(receipts []*Entry) []Problem {
	receipts = slices.Clone(receipts)
	sort.Slice(receipts, func(i, j int) bool {
		a, b := receipts[i].Value().(Receipt), receipts[j].Value().(Receipt)
		if a.FromNanos != b.FromNanos {
			return a.FromNanos < b.FromNanos
		}
		return bytes.Compare(receipts[i].id.Bytes(), receipts[j].id.Bytes()) < 0
	})
	var out []Problem
	var maxTo int64
	var maxE *Entry
	type epochSlice struct{ epoch, slice uint64 }
	firstOf := map[epochSlice]*Entry{}
	for _, e := range receipts {
		r := e.Value().(Receipt)
		k := epochSlice{r.Epoch, r.Slice}
		if maxE != nil && r.FromNanos < maxTo {
			out = append(out, problem(e, CodeOverlap, "period overlaps receipt %s of the same instance (slice billed twice)", maxE.id))
		} else if f := firstOf[k]; f != nil {
			// Disjoint parts of one slice, each up to the caps (which
			// bound a slice), would bill it several times over.
			out = append(out, problem(e, CodeOverlap, "slice %d of epoch %d is already billed by receipt %s (slice billed twice)", r.Slice, r.Epoch, f.id))
		}
		if firstOf[k] == nil {
			firstOf[k] = e
		}
		if maxE == nil || r.ToNanos > maxTo {
			maxTo, maxE = r.ToNanos, e
		}
	}
	return out
}

// overlapOf is instanceProblems' overlap verdict on receipt e alone, without
// building every problem of the instance: e overlaps when a receipt by a
// provider of an agreed contract of the instance that comes before it in
// (period start, CID) order ends after e begins, or bills the same epoch's
// slice.
func overlapOf(s *Set, e *Entry, r Receipt, inst string) (Problem, bool) {
	for _, ce := range s.byInstance[inst] {
		if s.ContractErr(ce) != nil {
			continue
		}
		c := ce.Value().(Contract)
		for _, oe := range s.receipts[ce.id] {
			if oe == e || oe.Author != c.Provider {
				continue
			}
			// As in instanceProblems: across contracts, a receipt its
			// requester disputed bills nothing.
			if ce.id != r.Contract && receiptStatus(s, oe, c.Requester) == StatusDisputed {
				continue
			}
			o := oe.Value().(Receipt)
			before := o.FromNanos < r.FromNanos || (o.FromNanos == r.FromNanos && bytes.Compare(oe.id.Bytes(), e.id.Bytes()) < 0)
			if !before {
				continue
			}
			if o.ToNanos > r.FromNanos {
				return problem(e, CodeOverlap, "period overlaps receipt %s of the same instance (slice billed twice)", oe.id), true
			}
			if o.Epoch == r.Epoch && o.Slice == r.Slice {
				return problem(e, CodeOverlap, "slice %d of epoch %d is already billed by receipt %s (slice billed twice)", r.Slice, r.Epoch, oe.id), true
			}
		}
	}
	return Problem{}, false
}

// receiptProblems checks one receipt against its contract and the epochs of
// its instance.
func receiptProblems(s *Set, e *Entry, r Receipt) []Problem {
	ce, ok := s.contracts[r.Contract]
	if !ok {
		return []Problem{problem(e, CodeUnknownContract, "contract %s not in the ledger", r.Contract)}
	}
	c := ce.Value().(Contract)
	var out []Problem
	if e.Author != c.Provider {
		out = append(out, problem(e, CodeBadReceipt, "author is not the contract's provider"))
	}
	if r.Epoch != c.Epoch || r.InstanceID != c.InstanceID {
		out = append(out, problem(e, CodeBadReceipt, "epoch/instance %d/%q ≠ contract's %d/%q", r.Epoch, r.InstanceID, c.Epoch, c.InstanceID))
	}
	if c.SliceNanos > 0 && !c.HasSlice(r.Slice) {
		out = append(out, problem(e, CodeBadReceipt, "slice %d is beyond the contract's slices (its bounds would wrap)", r.Slice))
	} else if c.SliceNanos > 0 {
		lo, hi := c.SliceBounds(r.Slice)
		if r.FromNanos >= r.ToNanos || r.FromNanos < lo || r.ToNanos > hi {
			out = append(out, problem(e, CodeBadReceipt, "period [%d,%d) not a non-empty part of slice %d [%d,%d)", r.FromNanos, r.ToNanos, r.Slice, lo, hi))
		}
	}
	if !r.Usage.Within(c.Caps) {
		out = append(out, problem(e, CodeOverCaps, "usage %+v above caps %+v", r.Usage, c.Caps))
	}
	if want := Amount(c.Price, r.Usage); r.Amount != want {
		out = append(out, problem(e, CodeWrongAmount, "amount %d ≠ price × usage = %d", r.Amount, want))
	}
	// A receipt its requester acknowledged is not fenced: a newer epoch's
	// contract is signed by that requester (or its guardian) with a start
	// it chooses, and could otherwise be dated back to turn receipts it
	// already agreed it owed into problems of the older provider (a slice
	// paid to both is still an overlap).
	if receiptStatus(s, e, c.Requester) != StatusAcked {
		if f, oe := s.newerFence(c.InstanceID, c.Epoch); oe != nil && f < r.ToNanos {
			out = append(out, problem(e, CodeFenced, "billed under epoch %d after epoch %d began (contract %s)", c.Epoch, oe.Value().(Contract).Epoch, oe.id))
		}
	}
	return out
}

// timeProblems checks a receipt's period against time: its slice must have
// ended (within skew) by the receipt's entry time, by the time its
// requester answered it, and by now (when given); and it must not begin
// after its contract's span ended (a stop, destruction or failure).
func timeProblems(s *Set, e *Entry, r Receipt, now time.Time, skew time.Duration) []Problem {
	ce, ok := s.contracts[r.Contract]
	if !ok {
		return nil // reported by receiptProblems
	}
	c := ce.Value().(Contract)
	var out []Problem
	notEnded := func(at int64) bool { return at < r.ToNanos-int64(skew) }
	switch {
	case notEnded(e.TimeNanos):
		out = append(out, problem(e, CodeNotEnded, "entered at %d, %s before its period ends at %d", e.TimeNanos, time.Duration(r.ToNanos-e.TimeNanos), r.ToNanos))
	case !now.IsZero() && notEnded(now.UnixNano()):
		out = append(out, problem(e, CodeNotEnded, "period ends at %d, %s after the audit's time", r.ToNanos, time.Duration(r.ToNanos-now.UnixNano())))
	default:
		for _, a := range append(append([]*Entry(nil), s.acks[e.id]...), s.disputes[e.id]...) {
			if a.Author == c.Requester && notEnded(a.TimeNanos) {
				out = append(out, problem(e, CodeNotEnded, "answered by the requester at %d, before its period ends at %d", a.TimeNanos, r.ToNanos))
				break
			}
		}
	}
	if ee := endAgainst(s, ce, e); ee != nil {
		end := ee.Value().(End)
		if r.FromNanos >= end.AtNanos {
			out = append(out, problem(e, CodeAfterEnd, "period begins at %d, after the contract's span ended at %d (%s, end %s)", r.FromNanos, end.AtNanos, end.State, ee.id))
		}
	}
	return out
}

// endProblems checks an End: for a known contract, by one of its parties.
func endProblems(s *Set, e *Entry, v End) []Problem {
	ce, ok := s.contracts[v.Contract]
	if !ok {
		return []Problem{problem(e, CodeBadEnd, "contract %s not in the ledger", v.Contract)}
	}
	c := ce.Value().(Contract)
	if e.Author != c.Requester && e.Author != c.Provider {
		return []Problem{problem(e, CodeBadEnd, "author is neither the contract's requester nor its provider")}
	}
	return nil
}

// ackProblems checks an ack (amount != nil) or a dispute against its receipt.
func ackProblems(s *Set, e *Entry, rc cid.Cid, amount *uint64) []Problem {
	re, ok := s.entries[rc]
	if !ok || re.Kind != KindReceipt {
		return []Problem{problem(e, CodeBadAck, "receipt %s not in the ledger", rc)}
	}
	r := re.Value().(Receipt)
	ce, ok := s.contracts[r.Contract]
	if !ok {
		return nil // reported on the receipt
	}
	c := ce.Value().(Contract)
	var out []Problem
	if e.Author != c.Requester {
		out = append(out, problem(e, CodeBadAck, "author is not the contract's requester"))
	}
	if amount != nil && *amount != r.Amount {
		out = append(out, problem(e, CodeBadAck, "acknowledges amount %d, receipt says %d", *amount, r.Amount))
	}
	if amount != nil {
		for _, d := range s.disputes[rc] {
			if d.Author == c.Requester {
				out = append(out, problem(e, CodeBadAck, "receipt both acknowledged and disputed"))
				break
			}
		}
	}
	return out
}

// CheckReceipt is CheckReceiptAt at the system clock's current time (for
// callers without a ledger; the ledger's own checks use its clock).
func CheckReceipt(s *Set, e *Entry) error { return CheckReceiptAt(s, e, clock.System().Now()) }

// CheckReceiptAt is the requester's check of a receipt before acknowledging
// it at time now: the same rules as the audit (contract known, author is
// the provider, consistent epoch and period, within caps, amount exact, no
// overlap with another receipt of the instance, epoch not superseded, its
// period ended — within MaxClockSkew — both by its entry time and by now,
// and not begun after the contract's span ended). It returns nil or an
// error whose text is the dispute reason.
func CheckReceiptAt(s *Set, e *Entry, now time.Time) error {
	r, ok := e.Value().(Receipt)
	if !ok {
		return fmt.Errorf("%w: not a receipt", ErrInvalid)
	}
	ps := receiptProblems(s, e, r)
	ps = append(ps, timeProblems(s, e, r, now, MaxClockSkew)...)
	if ce, ok := s.contracts[r.Contract]; ok {
		if p, overlaps := overlapOf(s, e, r, ce.Value().(Contract).InstanceID); overlaps {
			ps = append(ps, p)
		}
	}
	if len(ps) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, ps[0].Code, ps[0].Problem)
	}
	return nil
}
