package p2p

import (
	"testing"

	"github.com/hashicorp/memberlist"
)

// Any member can gossip an alive message for another member X with a higher
// incarnation and an old advert X once signed: the signature verifies, but
// the advert's sequence number is older than the one already known. The
// table must keep the newer advert ("higher Seq wins") instead of letting a
// replay roll X's capacity back or resurrect X after it left.
func TestMemberTableRejectsReplayedAdvert(t *testing.T) {
	n := startTestNode(t, nil)
	k, x := testKey(t)
	meta := func(seq uint64, cpu int64, leaving bool) []byte {
		b, err := EncodeMeta(k, Meta{Seq: seq, Advert: Advert{CPUMillis: cpu}, Leaving: leaving})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	old := meta(10, 8000, false) // X once offered 8 cores
	cur := meta(20, 1000, false) // now only 1
	node := func(m []byte) *memberlist.Node { return &memberlist.Node{Name: x.String(), Meta: m} }
	get := func() Member {
		for _, m := range n.Members() {
			if m.ID == x {
				return m
			}
		}
		t.Fatal("member missing")
		return Member{}
	}

	n.table.upsert(node(cur), EventJoin)
	n.table.upsert(node(old), EventUpdate) // replayed by another member
	if m := get(); m.Advert.CPUMillis != 1000 {
		t.Fatalf("a replayed older advert replaced the current one: cpu %d, want 1000", m.Advert.CPUMillis)
	}
	// An unverifiable advert does not erase the verified one either.
	n.table.upsert(node([]byte("garbage")), EventUpdate)
	if m := get(); !m.AdvertOK || m.Advert.CPUMillis != 1000 {
		t.Fatalf("a forged advert replaced the verified one: %+v", m)
	}

	// X leaves gracefully; a replay of its older advert must not bring back
	// its old capacity.
	left := meta(30, 1000, true)
	n.table.upsert(node(left), EventUpdate)
	n.table.upsert(node(left), EventDead)
	if m := get(); m.State != StateDead || !m.Left {
		t.Fatalf("after leave: %+v", m)
	}
	n.table.upsert(node(old), EventJoin)
	if m := get(); m.Advert.CPUMillis == 8000 {
		t.Fatalf("a replayed advert brought back a departed member's old capacity: %+v", m)
	}
	// A genuine newer advert (X restarted) is taken.
	n.table.upsert(node(meta(40, 2000, false)), EventJoin)
	if m := get(); m.State != StateAlive || m.Advert.CPUMillis != 2000 {
		t.Fatalf("newer advert not taken: %+v", m)
	}
}
