package simnet_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/scheduler"
)

// contractAt returns a recorded contract of instance id at epoch, or nil.
func (l *contractLog) contractAt(id scheduler.InstanceID, epoch uint64) *scheduler.Contract {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.all {
		if r.c.Instance() == id && r.c.Epoch() == epoch {
			return r.c
		}
	}
	return nil
}

func hostedFenced(m *scheduler.Market, id scheduler.InstanceID) (epoch uint64, fenced, ok bool) {
	for _, h := range m.Hosted() {
		if h.InstanceID == id {
			return h.Epoch, h.Fenced, true
		}
	}
	return 0, false, false
}

// The requester and the old host are cut off while a guardian places the
// instance again; no market message crosses, so the old host and the
// requester learn the newer contract only as the ledger replicates it
// (LearnContract). The old host's copy is fenced by it — not by the
// contract it runs under — and the requester, which now watches the newer
// contract's unreachable host, places the instance again above the
// ledger's epoch instead of taking the old copy for healthy.
func TestContractFromTheLedgerFencesTheOldCopy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net, nodes, log := ledgerGrid(t, 6)
		req := nodes[0]
		// The old host is neither the requester nor a guardian (which
		// would learn the newer contract as a tracker): those do not bid.
		var ids []peer.ID
		for _, n := range nodes {
			ids = append(ids, n.ID)
		}
		noBid := append(scheduler.Guardians(scheduler.NewInstanceID(req.ID, "web"), ids, []peer.ID{req.ID}, 2), req.ID)
		for _, p := range noBid {
			if err := net.Node(p).Market.SetBidding(t.Context(), false); err != nil {
				t.Fatal(err)
			}
		}
		v := placed(t, req.Market, spec("web", "guardians=2", "grace=1s"))
		id, e := v.InstanceID, v.Epoch
		h1 := mustDecode(t, v.Node)
		if slices.Contains(noBid, h1) {
			t.Fatalf("placed on %s, the requester or a guardian %v", h1, v.Guardians)
		}
		var rest []peer.ID
		for _, n := range nodes {
			if n.ID != req.ID && n.ID != h1 {
				rest = append(rest, n.ID)
			}
		}
		waitFor(t, "the guardians watch the copy", time.Minute, func() bool {
			for _, g := range v.Guardians {
				if !slices.ContainsFunc(net.Node(mustDecode(t, g)).Market.Instances(), func(x scheduler.InstanceView) bool {
					return x.InstanceID == id && x.Epoch == e && x.State == scheduler.StateStarted
				}) {
					return false
				}
			}
			return true
		})
		net.Partition([]peer.ID{req.ID, h1}, rest)
		var newer *scheduler.Contract
		waitFor(t, "a guardian re-placed the instance on the other side", time.Minute, func() bool {
			newer = log.contractAt(id, e+1)
			return newer != nil && len(net.Serving(id)) == 2
		})
		old := log.contractAt(id, e)
		if old == nil {
			t.Fatalf("no contract recorded at epoch %d", e)
		}
		ctx := t.Context()
		host := net.Node(h1).Market

		// (a) Its own contract fences nothing; the newer one fences it.
		if err := host.LearnContract(ctx, old); err != nil {
			t.Fatal(err)
		}
		if ep, fenced, ok := hostedFenced(host, id); !ok || fenced || ep != e {
			t.Fatalf("after learning its own contract: epoch %d fenced %v hosted %v", ep, fenced, ok)
		}
		if !slices.Contains(net.Serving(id), h1) {
			t.Fatal("the old host stopped its copy on learning its own contract")
		}
		if err := host.LearnContract(ctx, newer); err != nil {
			t.Fatal(err)
		}
		// Fenced, its copy destroyed (and forgotten) — or, as the requester learns of the
		// fencing and places the instance again, hosting it anew above the
		// ledger's epoch.
		waitFor(t, "the old host's copy fenced", time.Minute, func() bool {
			ep, fenced, ok := hostedFenced(host, id)
			return ep > e+1 || ((!ok || fenced) && !slices.Contains(net.Serving(id), h1))
		})

		// (b) The requester follows the newer contract, whose host it
		// cannot reach, and places the instance again above its epoch.
		if err := req.Market.LearnContract(ctx, newer); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		got, err := req.Market.Wait(c, "web", func(x scheduler.InstanceView) bool {
			return x.Epoch > e+1 && x.State == scheduler.StateStarted
		})
		if err != nil {
			t.Fatalf("not placed again above the ledger's epoch %d: %v (%+v)", e+1, err, got)
		}
		if cs := log.collisions(); len(cs) > 0 {
			t.Fatalf("two contracts at one epoch: %v", cs)
		}
	})
}
