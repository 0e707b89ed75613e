package ledger

import (
	"errors"
	"testing"
	"time"
)

// A contract that fails the contract check stays in the set (replicas
// agree on the set) but fences nothing: not the latest epoch, not a
// fence for billing, not a "fenced" receipt in the audit, and the audit
// names it.
func TestUnagreedContractFencesNothing(t *testing.T) {
	alice, bob, mallory := testSigner(t), testSigner(t), testSigner(t)
	start := time.Unix(1_000_000, 0)
	real := Contract{InstanceID: "i1", Requester: alice.ID(), Provider: bob.ID(), Epoch: 1, Price: Price{CPU: 10},
		SliceNanos: int64(time.Minute), StartNanos: start.UnixNano(), Evidence: []byte("agreed")}
	forged := real
	forged.Provider, forged.Epoch, forged.Evidence = mallory.ID(), 2, []byte("made up")
	add := func(s *Set, by *Signer, prev *Entry, body any) *Entry {
		t.Helper()
		seq, pc := uint64(1), cidUndef()
		if prev != nil {
			seq, pc = prev.Seq+1, prev.id
		}
		e, err := NewEntry(seq, pc, start, body)
		if err != nil {
			t.Fatal(err)
		}
		if err := by.Sign(e); err != nil {
			t.Fatal(err)
		}
		if added, _ := s.Add(e); !added {
			t.Fatal("entry not added")
		}
		return e
	}
	for _, check := range []bool{false, true} {
		s := NewSet()
		if check {
			s.SetContractCheck(func(c Contract) error {
				if string(c.Evidence) != "agreed" {
					return errors.New("no award by the requester")
				}
				return nil
			})
		}
		re := add(s, bob, nil, real)
		fe := add(s, mallory, nil, forged)
		from, to := real.SliceBounds(3)
		add(s, bob, re, MakeReceipt(re.id, real, 3, from, to, Usage{CPUMicros: 10}))
		latest, _ := s.LatestEpoch("i1")
		fenced := false
		for _, p := range Audit(s, AuditOptions{}).Problems {
			fenced = fenced || p.Code == CodeFenced
		}
		if !check {
			// Without the check, the forged contract wins: what the check is for.
			if latest != fe || fenceOf(s, real) == 0 || !fenced {
				t.Fatalf("without a check the forged contract should fence the real one")
			}
			continue
		}
		if latest != re {
			t.Fatal("the forged contract is the latest epoch")
		}
		if f := fenceOf(s, real); f != 0 {
			t.Fatalf("the real contract is fenced from %d", f)
		}
		var unagreed int
		for _, p := range Audit(s, AuditOptions{}).Ignored {
			if p.Code == CodeUnagreedContract && p.CID == fe.id.String() {
				unagreed++
			}
		}
		if fenced || unagreed != 1 {
			t.Fatalf("audit: fenced receipt %v, unagreed contracts %d (want none, 1)", fenced, unagreed)
		}
	}
}
