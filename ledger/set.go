package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Set is the in-memory ledger: the union of every author's log, a grow-only
// CRDT. Add is the merge: adding the same entries in any order, any number
// of times, gives the same set and so the same Root. Two entries with the
// same (author, seq) are both kept, as proof of equivocation.
//
// Set holds only entries that were verified by the caller (Ledger verifies
// before adding). It is not safe for concurrent use.
type Set struct {
	entries map[cid.Cid]*Entry
	authors map[peer.ID]*authorLog

	// derived indexes for billing and audit
	contracts  map[cid.Cid]*Entry  // contract CID -> entry
	byInstance map[string][]*Entry // instance -> contract entries
	// check, when set, says whether a contract was agreed by its parties
	// (SetContractCheck); checked caches its verdict per entry.
	check   func(Contract) error
	checked map[cid.Cid]error
	// inst caches, per instance, what fencing and records need (instInfo);
	// dropped when a contract of the instance arrives or the check changes.
	inst      map[string]*instInfo
	receipts  map[cid.Cid][]*Entry // contract CID -> receipt entries
	acks      map[cid.Cid][]*Entry // receipt CID -> ack entries
	disputes  map[cid.Cid][]*Entry // receipt CID -> dispute entries
	grants    []*Entry
	ends      map[cid.Cid][]*Entry // contract CID -> end entries
	nReceipts int
	nChecks   int // checkpoint entries

	sorted  [][]byte // CID bytes of every entry, sorted (Merkle leaves order)
	pending [][]byte // CID bytes added since sorted was last merged
	chunk   []*Entry // storage for authorLog.bySeq's one-entry slices
	root    []byte   // cached root; nil when stale
}

type authorLog struct {
	bySeq  map[uint64][]*Entry
	contig uint64 // 1..contig all present
	max    uint64
	count  int
	forks  int // number of seqs holding more than one entry

	// Digest of the log's entries (see logDigest): chain is a hash chain
	// over seqs 1..chainSeq (extended lazily up to contig), digest the
	// cached result (nil when the log changed since).
	chainSeq uint64
	chain    [sha256.Size]byte
	digest   []byte
}

// NewSet returns an empty set.
func NewSet() *Set {
	return &Set{
		entries:    map[cid.Cid]*Entry{},
		authors:    map[peer.ID]*authorLog{},
		contracts:  map[cid.Cid]*Entry{},
		byInstance: map[string][]*Entry{},
		receipts:   map[cid.Cid][]*Entry{},
		acks:       map[cid.Cid][]*Entry{},
		disputes:   map[cid.Cid][]*Entry{},
		ends:       map[cid.Cid][]*Entry{},
	}
}

// Len is the number of entries.
func (s *Set) Len() int { return len(s.entries) }

// Has reports whether the set holds the entry with CID c.
func (s *Set) Has(c cid.Cid) bool { _, ok := s.entries[c]; return ok }

// Get returns the entry with CID c.
func (s *Set) Get(c cid.Cid) (*Entry, bool) { e, ok := s.entries[c]; return e, ok }

// Add merges one verified entry. It reports whether the entry was new and
// whether it forks its author's log (another entry at the same seq).
func (s *Set) Add(e *Entry) (added, equivocation bool) {
	if _, ok := s.entries[e.id]; ok {
		return false, false
	}
	s.entries[e.id] = e
	s.pending = append(s.pending, e.id.Bytes())
	s.root = nil
	a := s.authors[e.Author]
	if a == nil {
		a = &authorLog{bySeq: map[uint64][]*Entry{}}
		s.authors[e.Author] = a
	}
	prev := a.bySeq[e.Seq]
	a.digest = nil
	if len(prev) > 0 && e.Seq <= a.chainSeq {
		// A new fork inside the chained prefix: rechain from seq 1.
		a.chainSeq, a.chain = 0, [sha256.Size]byte{}
	}
	if prev == nil {
		// The first entry at a seq (nearly all of them): a one-element,
		// full-capacity window of a shared chunk, so a log costs no
		// allocation per entry; a second entry at the seq (an
		// equivocation) gets a slice of its own from append.
		if len(s.chunk) == cap(s.chunk) {
			s.chunk = make([]*Entry, 0, 1024)
		}
		s.chunk = append(s.chunk, e)
		n := len(s.chunk)
		a.bySeq[e.Seq] = s.chunk[n-1 : n : n]
	} else {
		a.bySeq[e.Seq] = append(prev, e)
	}
	a.count++
	if len(prev) == 1 {
		a.forks++
	}
	if e.Seq > a.max {
		a.max = e.Seq
	}
	for a.bySeq[a.contig+1] != nil {
		a.contig++
	}
	s.index(e)
	return true, len(prev) > 0
}

func (s *Set) index(e *Entry) {
	switch v := e.Value().(type) {
	case Contract:
		s.contracts[e.id] = e
		s.byInstance[v.InstanceID] = append(s.byInstance[v.InstanceID], e)
		delete(s.inst, v.InstanceID)
	case Receipt:
		s.receipts[v.Contract] = append(s.receipts[v.Contract], e)
		s.nReceipts++
	case Ack:
		s.acks[v.Receipt] = append(s.acks[v.Receipt], e)
	case Dispute:
		s.disputes[v.Receipt] = append(s.disputes[v.Receipt], e)
	case Grant:
		s.grants = append(s.grants, e)
	case Checkpoint:
		s.nChecks++
	case End:
		s.ends[v.Contract] = append(s.ends[v.Contract], e)
	}
}

// Newest returns the latest entry time in s (zero when empty).
func (s *Set) Newest() time.Time {
	var t int64
	for _, e := range s.entries {
		t = max(t, e.TimeNanos)
	}
	if t == 0 {
		return time.Time{}
	}
	return time.Unix(0, t).UTC()
}

// Merge adds every entry of o to s (o is not modified).
func (s *Set) Merge(o *Set) {
	for _, e := range o.Entries() {
		s.Add(e)
	}
}

// Entries returns every entry ordered by author, then seq, then CID.
func (s *Set) Entries() []*Entry {
	authors := s.Authors()
	out := make([]*Entry, 0, len(s.entries))
	for _, a := range authors {
		out = append(out, s.Log(a, 0)...)
	}
	return out
}

// Authors returns the authors with at least one entry, sorted.
func (s *Set) Authors() []peer.ID {
	out := make([]peer.ID, 0, len(s.authors))
	for a := range s.authors {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Log returns author's entries with seq > after, ordered by seq then CID.
func (s *Set) Log(author peer.ID, after uint64) []*Entry {
	a := s.authors[author]
	if a == nil {
		return nil
	}
	var out []*Entry
	// Walk the seq range when it is dense; otherwise (a log with a huge
	// gap, e.g. a hostile author's seq 2^60) walk the seqs actually held.
	var seqs []uint64
	if a.max-after <= uint64(2*len(a.bySeq)) {
		for seq := after + 1; seq <= a.max; seq++ {
			seqs = append(seqs, seq)
		}
	} else {
		for seq := range a.bySeq {
			if seq > after {
				seqs = append(seqs, seq)
			}
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	}
	for _, seq := range seqs {
		es := a.bySeq[seq]
		if len(es) > 1 {
			es = append([]*Entry(nil), es...)
			sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].id.Bytes(), es[j].id.Bytes()) < 0 })
		}
		out = append(out, es...)
	}
	return out
}

// Head is what a replica holds of one author's log.
type Head struct {
	// Author is whose log this is.
	Author peer.ID `cbor:"1,keyasint" json:"author"`
	// Contig is the highest seq such that 1..Contig are all held.
	Contig uint64 `cbor:"2,keyasint" json:"contig"`
	// Max is the highest seq held.
	Max uint64 `cbor:"3,keyasint" json:"max"`
	// Count is the number of entries held (more than Max with equivocations).
	Count uint64 `cbor:"4,keyasint" json:"count"`
	// Digest is a sha2-256 digest of the CIDs held (see Set.logDigest):
	// two replicas can hold logs with the same Contig, Max and Count but
	// different entries (different gaps past Contig, or two sides of an
	// equivocation), which only the digest tells apart. Empty from a peer
	// that does not send it.
	Digest []byte `cbor:"5,keyasint,omitempty" json:"-"`
}

// logDigest returns the digest of author's log: sha2-256 over the hash
// chain of seqs 1..contig (each link hashes the previous link and the CIDs
// held at that seq, sorted) followed by every entry held past contig (seq
// and CID). The chain is extended incrementally, so computing heads costs
// what was added since, not the size of the log (a new fork inside the
// chained prefix rechains it once).
func (s *Set) logDigest(author peer.ID, a *authorLog) []byte {
	if a.digest != nil {
		return a.digest
	}
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	writeCID := func(e *Entry) {
		b := e.id.Bytes()
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(b)))])
		h.Write(b)
	}
	for a.chainSeq < a.contig {
		seq := a.chainSeq + 1
		es := a.bySeq[seq]
		if len(es) > 1 {
			es = append([]*Entry(nil), es...)
			sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].id.Bytes(), es[j].id.Bytes()) < 0 })
		}
		h.Reset()
		h.Write(a.chain[:])
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(es)))])
		for _, e := range es {
			writeCID(e)
		}
		h.Sum(a.chain[:0])
		a.chainSeq = seq
	}
	h.Reset()
	h.Write(a.chain[:])
	h.Write(buf[:binary.PutUvarint(buf[:], a.chainSeq)])
	for _, e := range s.Log(author, a.chainSeq) {
		h.Write(buf[:binary.PutUvarint(buf[:], e.Seq)])
		writeCID(e)
	}
	a.digest = h.Sum(nil)
	return a.digest
}

// Heads returns one Head per author, sorted by author.
func (s *Set) Heads() []Head {
	out := make([]Head, 0, len(s.authors))
	for _, a := range s.Authors() {
		l := s.authors[a]
		out = append(out, Head{Author: a, Contig: l.contig, Max: l.max, Count: uint64(l.count), Digest: s.logDigest(a, l)})
	}
	return out
}

// Head returns the head of author's log (zero when none).
func (s *Set) Head(author peer.ID) Head {
	l := s.authors[author]
	if l == nil {
		return Head{Author: author}
	}
	return Head{Author: author, Contig: l.contig, Max: l.max, Count: uint64(l.count), Digest: s.logDigest(author, l)}
}

// Tip returns the entry at author's highest seq (the lowest CID if forked).
func (s *Set) Tip(author peer.ID) *Entry {
	l := s.authors[author]
	if l == nil || l.max == 0 {
		return nil
	}
	es := s.Log(author, l.max-1)
	if len(es) == 0 {
		return nil
	}
	return es[0]
}

// Missing returns the entries s holds that a replica with heads theirs
// lacks or may lack: for each author whose log digest differs from theirs,
// every entry past their contiguous prefix, plus the entries at forked seqs
// when the counts differ (so proofs of equivocation spread); when the two
// logs have the same shape (contig, max, count) but different digests, the
// difference can be anywhere (gaps past contig, or an equivocation neither
// side has seen yet), and the whole log is sent. The cost follows what is
// missing, not the size of the ledger. Order: author, then seq.
func (s *Set) Missing(theirs []Head) []*Entry {
	th := make(map[peer.ID]Head, len(theirs))
	for _, h := range theirs {
		th[h.Author] = h
	}
	var out []*Entry
	for _, a := range s.Authors() {
		l := s.authors[a]
		h, ok := th[a]
		if !ok {
			out = append(out, s.Log(a, 0)...)
			continue
		}
		if len(h.Digest) > 0 {
			if bytes.Equal(h.Digest, s.logDigest(a, l)) {
				continue
			}
			if h.Contig == l.contig && h.Max == l.max && h.Count == uint64(l.count) {
				out = append(out, s.Log(a, 0)...)
				continue
			}
		}
		if h.Contig >= l.max && h.Count >= uint64(l.count) {
			continue
		}
		if h.Count != uint64(l.count) && l.forks > 0 {
			for seq, es := range l.bySeq {
				if len(es) > 1 && seq <= h.Contig {
					out = append(out, es...)
				}
			}
		}
		out = append(out, s.Log(a, h.Contig)...)
	}
	return out
}

// Equivocations returns, per author, the groups of entries that share a seq.
func (s *Set) Equivocations() [][]*Entry {
	var out [][]*Entry
	for _, a := range s.Authors() {
		l := s.authors[a]
		if l.forks == 0 {
			continue
		}
		seqs := make([]uint64, 0, l.forks)
		for seq, es := range l.bySeq {
			if len(es) > 1 {
				seqs = append(seqs, seq)
			}
		}
		sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
		for _, seq := range seqs {
			es := append([]*Entry(nil), l.bySeq[seq]...)
			sort.Slice(es, func(i, j int) bool { return bytes.Compare(es[i].id.Bytes(), es[j].id.Bytes()) < 0 })
			out = append(out, es)
		}
	}
	return out
}

// Receipts returns the number of receipt entries.
func (s *Set) Receipts() int { return s.nReceipts }

// Contracts returns every contract entry for instance, in no fixed order.
func (s *Set) Contracts(instance string) []*Entry { return s.byInstance[instance] }

// ContractEntry returns the contract entry with CID c.
func (s *Set) ContractEntry(c cid.Cid) (*Entry, bool) { e, ok := s.contracts[c]; return e, ok }

// ReceiptsOf returns the receipts billed under contract c.
func (s *Set) ReceiptsOf(c cid.Cid) []*Entry { return s.receipts[c] }

// AcksOf returns the acknowledgements of receipt r.
func (s *Set) AcksOf(r cid.Cid) []*Entry { return s.acks[r] }

// DisputesOf returns the disputes of receipt r.
func (s *Set) DisputesOf(r cid.Cid) []*Entry { return s.disputes[r] }

// SetContractCheck sets the check a contract must pass to count for
// fencing (LatestEpoch, billing, the audit's fenced receipts): f verifies
// the market's evidence that the requester (or its guardian) awarded it and
// the provider accepted. The entry signature only proves who wrote a
// contract, and anyone can write one naming any instance, requester and
// provider; without this check such a contract, at a higher epoch, would
// fence the real provider. Nil counts every contract.
func (s *Set) SetContractCheck(f func(Contract) error) {
	s.check, s.checked, s.inst = f, map[cid.Cid]error{}, nil
}

// instInfo is what fencing and the records of an agreement need about one
// instance's contracts, computed once per instance (not once per contract
// or receipt: anyone can write any number of contracts naming an
// instance, and the audit was quadratic in them).
type instInfo struct {
	// epochs are the agreed contracts' epochs, ascending; sufMin[i] is the
	// earliest start among agreed contracts at index ≥ i, sufE[i] its entry.
	epochs []uint64
	sufMin []int64
	sufE   []*Entry
	// bodies groups the instance's contract entries by body (records of
	// one agreement).
	bodies map[string][]*Entry
}

// instance returns the cached instInfo of inst.
func (s *Set) instance(inst string) *instInfo {
	if in, ok := s.inst[inst]; ok {
		return in
	}
	in := &instInfo{bodies: map[string][]*Entry{}}
	var agreed []*Entry
	for _, e := range s.byInstance[inst] {
		in.bodies[string(e.Body)] = append(in.bodies[string(e.Body)], e)
		if s.ContractErr(e) == nil {
			agreed = append(agreed, e)
		}
	}
	sort.Slice(agreed, func(i, j int) bool {
		a, b := agreed[i].Value().(Contract), agreed[j].Value().(Contract)
		if a.Epoch != b.Epoch {
			return a.Epoch < b.Epoch
		}
		return bytes.Compare(agreed[i].id.Bytes(), agreed[j].id.Bytes()) < 0
	})
	n := len(agreed)
	in.epochs, in.sufMin, in.sufE = make([]uint64, n), make([]int64, n), make([]*Entry, n)
	for i := n - 1; i >= 0; i-- {
		c := agreed[i].Value().(Contract)
		in.epochs[i], in.sufMin[i], in.sufE[i] = c.Epoch, c.StartNanos, agreed[i]
		if i+1 < n && in.sufMin[i+1] <= c.StartNanos {
			in.sufMin[i], in.sufE[i] = in.sufMin[i+1], in.sufE[i+1]
		}
	}
	if s.inst == nil {
		s.inst = map[string]*instInfo{}
	}
	s.inst[inst] = in
	return in
}

// newerFence returns the earliest start among agreed contracts of inst
// with an epoch above epoch, and that contract (nil when there is none).
func (s *Set) newerFence(inst string, epoch uint64) (int64, *Entry) {
	in := s.instance(inst)
	i := sort.Search(len(in.epochs), func(i int) bool { return in.epochs[i] > epoch })
	if i == len(in.epochs) {
		return 0, nil
	}
	return in.sufMin[i], in.sufE[i]
}

// ContractErr says why the contract entry e does not count for fencing,
// billing or balances (nil when it does): it is not written by a party it
// names (its requester, provider or auctioneer), or it fails the check.
func (s *Set) ContractErr(e *Entry) error {
	if err, ok := s.checked[e.id]; ok {
		return err
	}
	c, ok := e.Value().(Contract)
	var err error
	switch {
	case !ok:
		err = fmt.Errorf("%w: not a contract", ErrMalformed)
	case e.Author != c.Requester && e.Author != c.Provider && (c.Auctioneer == "" || e.Author != c.Auctioneer):
		err = fmt.Errorf("%w: written by %s, who is neither its requester, its provider nor its auctioneer", ErrInvalid, e.Author)
	case s.check != nil:
		err = s.check(c)
	}
	if s.checked == nil {
		s.checked = map[cid.Cid]error{}
	}
	s.checked[e.id] = err
	return err
}

// LatestEpoch returns the highest epoch of any contract for instance and
// that contract's entry (nil, 0 when there is none). Ties between two
// contracts of the same epoch go to the lower CID, so every node agrees.
// Contracts that fail the contract check do not count.
func (s *Set) LatestEpoch(instance string) (*Entry, uint64) {
	var best *Entry
	var epoch uint64
	for _, e := range s.byInstance[instance] {
		if s.ContractErr(e) != nil {
			continue
		}
		c := e.Value().(Contract)
		if best == nil || c.Epoch > epoch || (c.Epoch == epoch && bytes.Compare(e.id.Bytes(), best.id.Bytes()) < 0) {
			best, epoch = e, c.Epoch
		}
	}
	return best, epoch
}

// Instances returns every instance ID with a contract, sorted.
func (s *Set) Instances() []string {
	out := make([]string, 0, len(s.byInstance))
	for k := range s.byInstance {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Recent returns up to limit entries of kind (0 = any), newest first by
// entry time then CID.
func Recent(s *Set, kind Kind, limit int) []*Entry {
	out := make([]*Entry, 0)
	for _, e := range s.entries {
		if kind == 0 || e.Kind == kind {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].TimeNanos != out[j].TimeNanos {
			return out[i].TimeNanos > out[j].TimeNanos
		}
		return bytes.Compare(out[i].id.Bytes(), out[j].id.Bytes()) < 0
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}
