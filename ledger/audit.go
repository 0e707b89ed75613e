package ledger

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
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
	// Acked is the number of acknowledged receipts; AckedAmount their sum.
	Acked       int    `json:"acked"`
	AckedAmount uint64 `json:"acked_amount"`
}

// AuditOptions tune an audit.
type AuditOptions struct {
	// Granters, when not empty, are the only authors allowed to write grants.
	Granters []peer.ID
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
	r := Report{Entries: s.Len(), Receipts: s.Receipts(), Contracts: len(s.contracts), Authors: len(s.authors), Root: s.RootHex()}
	r.Problems = append(r.Problems, extra...)
	granters := map[peer.ID]bool{}
	for _, g := range opt.Granters {
		granters[g] = true
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
		r.Problems = append(r.Problems, contractProblems(s, e)...)
	}
	for _, inst := range s.Instances() {
		r.Problems = append(r.Problems, instanceProblems(s, inst)...)
	}
	for _, e := range s.entries {
		switch v := e.Value().(type) {
		case Receipt:
			r.Problems = append(r.Problems, receiptProblems(s, e, v)...)
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
			if len(granters) > 0 && !granters[e.Author] {
				r.Problems = append(r.Problems, problem(e, CodeBadGrant, "author is not a granter of this grid"))
			}
			if _, err := pubKeyOf(v.To); err != nil {
				r.Problems = append(r.Problems, problem(e, CodeBadGrant, "grant to %q: not an Ed25519 peer ID", v.To))
			}
		}
	}
	sort.Slice(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		if a.CID != b.CID {
			return a.CID < b.CID
		}
		if a.Code != b.Code {
			return a.Code < b.Code
		}
		return a.Problem < b.Problem
	})
	sort.Strings(r.Unconfirmed)
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

func contractProblems(s *Set, e *Entry) []Problem {
	c := e.Value().(Contract)
	var out []Problem
	if e.Author != c.Requester && e.Author != c.Provider {
		out = append(out, problem(e, CodeBadContract, "author is neither requester nor provider"))
	}
	if _, err := pubKeyOf(c.Requester); err != nil {
		out = append(out, problem(e, CodeBadContract, "requester is not an Ed25519 peer ID"))
	}
	if _, err := pubKeyOf(c.Provider); err != nil {
		out = append(out, problem(e, CodeBadContract, "provider is not an Ed25519 peer ID"))
	}
	if c.SliceNanos <= 0 {
		out = append(out, problem(e, CodeBadContract, "slice length %d ns is not positive", c.SliceNanos))
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
		receipts = append(receipts, s.receipts[ce.id]...)
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
	sort.Slice(receipts, func(i, j int) bool {
		a, b := receipts[i].Value().(Receipt), receipts[j].Value().(Receipt)
		if a.FromNanos != b.FromNanos {
			return a.FromNanos < b.FromNanos
		}
		return bytes.Compare(receipts[i].id.Bytes(), receipts[j].id.Bytes()) < 0
	})
	var maxTo int64
	var maxE *Entry
	for _, e := range receipts {
		r := e.Value().(Receipt)
		if maxE != nil && r.FromNanos < maxTo {
			out = append(out, problem(e, CodeOverlap, "period overlaps receipt %s of the same instance (slice billed twice)", maxE.id))
		}
		if maxE == nil || r.ToNanos > maxTo {
			maxTo, maxE = r.ToNanos, e
		}
	}
	return out
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
	if c.SliceNanos > 0 {
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
	for _, oe := range s.byInstance[c.InstanceID] {
		if s.ContractErr(oe) != nil {
			continue
		}
		o := oe.Value().(Contract)
		if o.Epoch > c.Epoch && o.StartNanos < r.ToNanos {
			out = append(out, problem(e, CodeFenced, "billed under epoch %d after epoch %d began (contract %s)", c.Epoch, o.Epoch, oe.id))
			break
		}
	}
	return out
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
	if amount != nil && len(s.disputes[rc]) > 0 {
		out = append(out, problem(e, CodeBadAck, "receipt both acknowledged and disputed"))
	}
	return out
}

// CheckReceipt is the requester's check of a receipt before acknowledging
// it: the same rules as the audit (contract known, author is the provider,
// consistent epoch and period, within caps, amount exact, no overlap with
// another receipt of the instance, epoch not superseded). It returns nil or
// an error whose text is the dispute reason.
func CheckReceipt(s *Set, e *Entry) error {
	r, ok := e.Value().(Receipt)
	if !ok {
		return fmt.Errorf("%w: not a receipt", ErrInvalid)
	}
	ps := receiptProblems(s, e, r)
	if ce, ok := s.contracts[r.Contract]; ok {
		for _, p := range instanceProblems(s, ce.Value().(Contract).InstanceID) {
			if p.CID == e.id.String() && p.Code == CodeOverlap {
				ps = append(ps, p)
			}
		}
	}
	if len(ps) > 0 {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, ps[0].Code, ps[0].Problem)
	}
	return nil
}
