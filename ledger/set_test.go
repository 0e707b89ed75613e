package ledger

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"pgregory.net/rapid"
)

// pool builds a fixed pool of entries: a contract, receipts, acks, a
// dispute, a grant and an equivocation.
func pool(t testing.TB) []*Entry {
	m := newMarket(t, 1)
	out := []*Entry{m.ce}
	for i := 0; i < 6; i++ {
		r := m.receipt(t, Usage{CPUMicros: uint64(1000 * (i + 1)), NetBytes: 1 << 20})
		out = append(out, r)
		if i%2 == 0 {
			out = append(out, m.ack(t, r))
		}
	}
	out = append(out, m.rw.next(t, Checkpoint{Root: setOf(out...).Root(), Entries: uint64(len(out))}))
	g := newLogWriter(deterministicSigner(t, 9), t0)
	out = append(out, g.next(t, Grant{To: m.req.ID(), Amount: 5_000_000}))
	// Equivocation: a second entry at the grant author's seq 1.
	g2 := newLogWriter(g.s, t0.Add(time.Second))
	out = append(out, g2.next(t, Grant{To: m.prov.ID(), Amount: 1}))
	return out
}

func TestSetMergeOrderAndDuplicatesGiveSameRoot(t *testing.T) {
	es := pool(t)
	want := setOf(es...)
	rapid.Check(t, func(rt *rapid.T) {
		// Any sequence (with duplicates) that covers every entry.
		extra := rapid.SliceOfN(rapid.IntRange(0, len(es)-1), 0, 3*len(es)).Draw(rt, "extra")
		order := append(rapid.Permutation(indices(len(es))).Draw(rt, "order"), extra...)
		perm := rapid.Permutation(order).Draw(rt, "shuffled")
		s := NewSet()
		for _, i := range perm {
			s.Add(es[i])
		}
		if !bytes.Equal(s.Root(), want.Root()) {
			rt.Fatalf("root differs for order %v", perm)
		}
		if !reflect.DeepEqual(s.Heads(), want.Heads()) {
			rt.Fatalf("heads differ")
		}
		// Merge is associative and commutative: split into three sets and merge in two ways.
		cut1 := rapid.IntRange(0, len(perm)).Draw(rt, "cut1")
		cut2 := rapid.IntRange(cut1, len(perm)).Draw(rt, "cut2")
		a, b, c := NewSet(), NewSet(), NewSet()
		for i, k := range perm {
			switch {
			case i < cut1:
				a.Add(es[k])
			case i < cut2:
				b.Add(es[k])
			default:
				c.Add(es[k])
			}
		}
		ab := NewSet()
		ab.Merge(a)
		ab.Merge(b)
		ab.Merge(c)
		cb := NewSet()
		cb.Merge(c)
		cb.Merge(b)
		cb.Merge(a)
		cb.Merge(a) // idempotent
		if !bytes.Equal(ab.Root(), cb.Root()) {
			rt.Fatalf("merge order changed the root")
		}
	})
}

func indices(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestSetMissingStreamsOnlySuffixes(t *testing.T) {
	m := newMarket(t, 3)
	es := []*Entry{m.ce}
	for i := 0; i < 20; i++ {
		es = append(es, m.receipt(t, Usage{CPUMicros: 10}))
	}
	full := setOf(es...)
	partial := setOf(es[:15]...)
	miss := full.Missing(partial.Heads())
	if len(miss) != 6 {
		t.Fatalf("missing %d entries, want 6 (the suffix)", len(miss))
	}
	for i, e := range miss {
		if e != es[15+i] {
			t.Fatalf("missing[%d] is seq %d, want %d", i, e.Seq, es[15+i].Seq)
		}
	}
	if n := len(partial.Missing(full.Heads())); n != 0 {
		t.Fatalf("partial has %d entries full lacks", n)
	}
	// Equivocations spread even below the other side's head.
	fork := newLogWriter(m.prov, t0.Add(time.Hour))
	alt := fork.next(t, Grant{To: m.req.ID(), Amount: 1})
	withFork := setOf(append([]*Entry{alt}, es...)...)
	got := withFork.Missing(full.Heads())
	if len(got) == 0 || !containsEntry(got, alt) {
		t.Fatalf("fork not sent: %d entries", len(got))
	}
	full.Merge(setOf(got...))
	if !bytes.Equal(full.Root(), withFork.Root()) {
		t.Fatal("after merging the missing entries the roots differ")
	}
}

func containsEntry(es []*Entry, e *Entry) bool {
	for _, x := range es {
		if x.CID().Equals(e.CID()) {
			return true
		}
	}
	return false
}

func TestEquivocationDetected(t *testing.T) {
	s := deterministicSigner(t, 40)
	a := newLogWriter(s, t0).next(t, Grant{To: s.ID(), Amount: 1})
	b := newLogWriter(s, t0).next(t, Grant{To: s.ID(), Amount: 2})
	set := NewSet()
	if added, eq := set.Add(a); !added || eq {
		t.Fatalf("first: added=%v eq=%v", added, eq)
	}
	if added, eq := set.Add(b); !added || !eq {
		t.Fatalf("second: added=%v eq=%v", added, eq)
	}
	groups := set.Equivocations()
	if len(groups) != 1 || len(groups[0]) != 2 {
		t.Fatalf("equivocations %v", groups)
	}
	r := Audit(set, AuditOptions{})
	if r.OK || len(r.Equivocations) != 1 {
		t.Fatalf("audit ok=%v equivocations=%v", r.OK, r.Equivocations)
	}
	n := 0
	for _, p := range r.Problems {
		if p.Code == CodeEquivocation {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d equivocation problems, want 2: %+v", n, r.Problems)
	}
}

// A validly signed entry with an enormous seq must not make log walks
// iterate over the gap.
func TestHugeSeqGapIsCheap(t *testing.T) {
	s := deterministicSigner(t, 90)
	w := newLogWriter(s, t0)
	first := w.next(t, Grant{To: s.ID(), Amount: 1})
	w.seq, w.prev = 1<<60, first.CID()
	far := w.next(t, Grant{To: s.ID(), Amount: 2})
	set := setOf(first, far)
	if n := len(set.Entries()); n != 2 {
		t.Fatalf("%d entries", n)
	}
	if n := len(set.Missing([]Head{{Author: s.ID(), Contig: 1, Max: 1, Count: 1}})); n != 1 {
		t.Fatalf("missing %d, want 1", n)
	}
	if set.Tip(s.ID()) != far {
		t.Fatal("tip is not the far entry")
	}
	r := Audit(set, AuditOptions{})
	if r.OK || !hasCode(codesFor(r, far), CodeMissingPrev) {
		t.Fatalf("gap not reported: %+v", r.Problems)
	}
}

// Large sets sort and hash on two goroutines; the root must be the one a
// single RFC 6962 range computes over the sorted leaves, for sizes around
// the split (powers of two and their neighbours).
func TestParallelRootMatchesSequential(t *testing.T) {
	for _, n := range []int{parallelMin - 1, parallelMin, parallelMin + 1, 3*parallelMin + 7, 4 * parallelMin} {
		leaves := make([][]byte, n)
		for i := range leaves {
			leaves[i] = CIDOf([]byte{byte(i), byte(i >> 8), byte(i >> 16)}).Bytes()
		}
		want := slices.Clone(leaves)
		slices.SortFunc(want, bytes.Compare)
		got := slices.Clone(leaves)
		sortCIDs(got)
		if !slices.EqualFunc(got, want, bytes.Equal) {
			t.Fatalf("n=%d: sortCIDs order differs", n)
		}
		rf := compact.RangeFactory{Hash: hasher.HashChildren}
		r := rf.NewEmptyRange(0)
		for _, l := range want {
			if err := r.Append(hasher.HashLeaf(l), nil); err != nil {
				t.Fatal(err)
			}
		}
		seq, err := r.GetRootHash(nil)
		if err != nil {
			t.Fatal(err)
		}
		if par := rootOf(want); !bytes.Equal(par, seq) {
			t.Fatalf("n=%d: root %x, sequential %x", n, par, seq)
		}
	}
}
