package simnet_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/simnet"
)

// A lost host whose instance cannot be placed anywhere else (here: pinned
// to it) must not be re-auctioned at every tick of the state loop: a failed
// re-placement is retried at the WaitRetry pace, like a request waiting for
// capacity, not every 25 ms with a broadcast to the whole grid.
func TestFailedReplacementIsPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, nodes := grid(t, 6, nil)
		req := nodes[0].Market
		host := nodes[3]
		placed(t, req, spec("pinned", "node="+host.ID.String(), "grace=0s"))
		host.Down()
		lost := func() []scheduler.AuctionView {
			var out []scheduler.AuctionView
			for _, a := range req.Auctions() {
				if a.Request == "pinned" && a.Reason == "host lost" && a.ClosedAt != nil {
					out = append(out, a)
				}
			}
			return out
		}
		waitFor(t, "three failed re-placements", time.Minute, func() bool { return len(lost()) >= 3 })
		retry := scheduler.DefaultConfig().WaitRetry
		as := lost()
		for i := 1; i < len(as); i++ {
			if gap := as[i].OpenedAt.Sub(*as[i-1].ClosedAt); gap < retry {
				t.Fatalf("re-placement %d opened %s after the previous one failed (want >= WaitRetry %s): a storm of %d auctions", i, gap, retry, len(as))
			}
		}
		// The host comes back: the instance is started on it again.
		host.Up()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		if _, err := req.Wait(ctx, "pinned", func(v scheduler.InstanceView) bool {
			return v.State == scheduler.StateStarted && v.Node == host.ID.String()
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// A member that ignores the announcement's filter (a rogue, or a node
// running an older policy) must not win an instance pinned to another
// node, nor one whose anti-affinity excludes it: the auctioneer knows both
// rules by peer ID and must check them itself.
func TestPinnedInstanceNotAwardedToOtherBidder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 4, nil)
		req := nodes[0].Market
		rogue, err := net.AddRogue(t.Context(), func(r *simnet.Rogue, in scheduler.Inbound) {
			bidAndAccept(r, in) // the best possible bid, whatever the filter says
		})
		if err != nil {
			t.Fatal(err)
		}
		pin := nodes[2].ID.String()
		v := placed(t, req, spec("pinned", "node="+pin))
		if v.Node != pin {
			t.Fatalf("instance pinned to %s placed on %s (rogue %s)", pin, v.Node, rogue.ID)
		}
	})
}

// Destroying an instance whose host is down must reach the guardians:
// otherwise, once the requester goes offline too, the acting guardian
// still holds the old "started" request and places the destroyed
// instance again.
func TestDestroyWhileHostDownNotResurrectedByGuardian(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 8, nil)
		req := nodes[0]
		s := spec("web", "guardians=3", "grace=30s")
		v := placed(t, req.Market, s)
		host := net.Node(mustDecode(t, v.Node))
		if host == req {
			t.Fatal("placed on the requester")
		}
		var guardians []*simnet.Node
		for _, g := range v.Guardians {
			gn := net.Node(mustDecode(t, g))
			waitFor(t, "guardian knows the instance", 10*time.Second, func() bool {
				return slices.ContainsFunc(gn.Market.Instances(), func(x scheduler.InstanceView) bool { return x.InstanceID == v.InstanceID })
			})
			if gn != host {
				guardians = append(guardians, gn)
			}
		}
		host.Down()
		s.State = scheduler.StateDestroyed
		if _, err := req.Market.Request(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // what the requester sent is delivered
		req.Down()
		guardiansKnow := func() bool {
			for _, g := range guardians {
				if !slices.ContainsFunc(g.Market.Instances(), func(x scheduler.InstanceView) bool {
					return x.InstanceID == v.InstanceID && x.RequestedState == scheduler.StateDestroyed
				}) {
					return false
				}
			}
			return true
		}
		resurrected := func() bool {
			return slices.ContainsFunc(net.Serving(v.InstanceID), func(id peer.ID) bool { return net.Node(id).IsUp() })
		}
		waitFor(t, "guardians learn the destroy, or one re-places the instance", 5*time.Minute, func() bool {
			return guardiansKnow() || resurrected()
		})
		if resurrected() {
			t.Fatalf("destroyed instance placed again on %v by a guardian", net.Serving(v.InstanceID))
		}
	})
}

// Asking again for an instance just destroyed (idempotency by name) must
// start it again even when the old host already destroyed and forgot its
// copy before the new generation reached it: the host ignores an update
// for a copy it no longer has, so an in-place update leaves the instance
// destroyed although requested started, with nothing to retry it.
func TestStartAgainRightAfterDestroy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 4, nil)
		req := nodes[0].Market
		s := spec("svc")
		v0 := placed(t, req, s)
		host := net.Node(mustDecode(t, v0.Node))
		if host == nodes[0] {
			t.Fatal("placed on the requester")
		}
		net.SetLatency(nodes[0].ID, host.ID, time.Second)
		s.State = scheduler.StateDestroyed
		if _, err := req.Request(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "host destroyed its copy", 10*time.Second, func() bool { return len(host.Market.Hosted()) == 0 })
		// The host's "destroyed" status is still on its way to the requester.
		s.State = scheduler.StateStarted
		if _, err := req.Request(t.Context(), s); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		v, err := req.Wait(ctx, "svc", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
		if err != nil || v.State != scheduler.StateStarted {
			t.Fatalf("instance requested started again: %v; view %+v; serving %v", err, v, net.Serving(v.InstanceID))
		}
		if got := net.Serving(v.InstanceID); len(got) != 1 || got[0].String() != v.Node {
			t.Fatalf("serving %v, view names %s", got, v.Node)
		}
	})
}

// A contract that concerns neither a copy this node hosts nor an instance
// it tracks must not be kept: any peer can mint valid contracts of its own
// (requester, auctioneer and provider at once) under fresh names, and the
// node kept each one forever.
func TestStrangersContractsNotKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes := grid(t, 2, nil)
		victim := nodes[1]
		mallory, err := net.AddRogue(t.Context(), func(*simnet.Rogue, scheduler.Inbound) {})
		if err != nil {
			t.Fatal(err)
		}
		sg := mallory.Signer
		var ids []scheduler.InstanceID
		for i := range 50 {
			name := fmt.Sprintf("junk-%d", i)
			now := time.Now()
			req := &scheduler.Request{Requester: sg.ID(), Name: name, Instance: scheduler.NewInstanceID(sg.ID(), name),
				Generation: 1, Timestamp: now.UnixNano(), RecipeCID: recipeCID, State: scheduler.StateStarted}
			aid := bytes.Repeat([]byte{byte(i + 1)}, scheduler.AuctionIDLen)
			bid := sg.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: aid, Expires: now.Add(time.Minute).UnixNano()})
			aw := sg.Sign(scheduler.KindAward, &scheduler.Award{AuctionID: aid, Request: sg.Sign(scheduler.KindRequest, req), Bid: bid,
				Epoch: 1, Issued: now.UnixNano()})
			acc := sg.Sign(scheduler.KindAccept, &scheduler.Accept{AuctionID: aid, Award: aw.Digest(), Issued: now.UnixNano()})
			notice := sg.Sign(scheduler.KindContract, &scheduler.ContractNotice{Contract: scheduler.Contract{Award: aw, Accept: acc}})
			mallory.Send(victim.ID, notice.Encode())
			ids = append(ids, req.Instance)
		}
		waitFor(t, "victim handled the notices", 10*time.Second, func() bool { return victim.Market.Stats().Received >= 50 })
		kept := 0
		for _, id := range ids {
			if victim.Market.Contract(id) != nil {
				kept++
			}
		}
		if kept != 0 {
			t.Fatalf("victim keeps %d contracts of instances it neither hosts nor tracks", kept)
		}
	})
}

// bidAndAccept makes the rogue r answer every announcement with the best
// possible bid (free, fit 1000), whatever its filter says, and accept every
// award it gets; for an award it accepted it returns the contract and the
// award's contents.
func bidAndAccept(r *simnet.Rogue, in scheduler.Inbound) (*scheduler.Contract, *scheduler.AwardInfo) {
	env, err := scheduler.DecodeSigned(in.Data)
	if err != nil {
		return nil, nil
	}
	switch env.Kind {
	case scheduler.KindAnnounce:
		ann, err := scheduler.OpenAnnouncement(&env, time.Now())
		if err != nil {
			return nil, nil
		}
		bid := r.Signer.Sign(scheduler.KindBid, &scheduler.Bid{AuctionID: ann.AuctionID, Fit: 1000,
			Expires: time.Now().Add(time.Minute).UnixNano()})
		r.Send(env.Signer, bid.Encode())
	case scheduler.KindAward:
		info, err := scheduler.OpenAward(&env)
		if err != nil {
			return nil, nil
		}
		acc := r.Signer.Sign(scheduler.KindAccept, &scheduler.Accept{AuctionID: info.Award.AuctionID,
			Award: env.Digest(), Issued: time.Now().UnixNano()})
		r.Send(env.Signer, acc.Encode())
		return &scheduler.Contract{Award: env, Accept: acc}, info
	}
	return nil, nil
}
