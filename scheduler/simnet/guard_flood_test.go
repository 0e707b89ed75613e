package simnet_test

import (
	"crypto/rand"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
)

func newSigner(t *testing.T) *scheduler.Signer {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := scheduler.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// madeUpContract is a valid contract for an instance requester makes up,
// naming guardian, awarded by the requester to provider.
func madeUpContract(requester, provider *scheduler.Signer, name string, guardian peer.ID) scheduler.Contract {
	now := time.Now()
	req := &scheduler.Request{Requester: requester.ID(), Name: name, Instance: scheduler.NewInstanceID(requester.ID(), name),
		Generation: 1, Timestamp: now.UnixNano(), RecipeCID: recipeCID, State: scheduler.StateStarted,
		Resources:  scheduler.Resources{CPUMillis: 100, MemoryBytes: 1 << 20},
		Delegation: scheduler.Delegation{Guardians: []peer.ID{guardian}}}
	id := make([]byte, scheduler.AuctionIDLen)
	_, _ = rand.Read(id)
	bid := provider.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: id, Fit: 500, Expires: now.Add(time.Minute).UnixNano()})
	aw := requester.Sign(scheduler.KindAward, &scheduler.Award{AuctionID: id, Request: requester.Sign(scheduler.KindRequest, req),
		Bid: bid, Epoch: 1, Issued: now.UnixNano()})
	acc := provider.Sign(scheduler.KindAccept, &scheduler.Accept{AuctionID: id, Award: aw.Digest(), Issued: now.UnixNano()})
	return scheduler.Contract{Award: aw, Accept: acc}
}

// TestGuardianRecordsBounded: any peer can sign a valid contract for an
// instance it makes up and name a node its guardian; the node keeps (and
// stores) a record for each. Requesters it does not know as members share
// an allowance of MaxGuardedForStrangers records, however many keys they
// use, so a flood of made-up contracts cannot grow its memory and its
// store without bound.
func TestGuardianRecordsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 2, nil)
		victim := nodes[1]
		const flood = scheduler.MaxGuardedForStrangers + 100
		received := victim.Market.Stats().Received
		for range flood {
			requester, provider := newSigner(t), newSigner(t)
			c := madeUpContract(requester, provider, "made-up", victim.ID)
			notice := requester.Sign(scheduler.KindContract, &scheduler.ContractNotice{Contract: c})
			for !net.Inject(requester.ID(), victim.ID, notice.Encode()) {
				time.Sleep(time.Millisecond) // virtual: the inbox is full
			}
		}
		waitFor(t, "the notices handled", time.Minute, func() bool { return victim.Market.Stats().Received >= received+flood })
		if got := len(victim.Market.Instances()); got > scheduler.MaxGuardedForStrangers {
			t.Fatalf("the node keeps %d guardian records of made-up instances (bound %d)", got, scheduler.MaxGuardedForStrangers)
		}
	})
}
