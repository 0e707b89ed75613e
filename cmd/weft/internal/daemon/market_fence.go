package daemon

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/weftgrid/weft/ledger/settle"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

// marketFenceInterval is how often copies left over from an earlier run
// are checked against the ledger's epochs.
const marketFenceInterval = time.Second

// fenceStale destroys the local copies settle.Stale picks: the copies the
// market does not host (left from before a restart or a crash) once the
// ledger knows a contract with a higher epoch for their instance. It
// returns the IDs it destroyed.
func fenceStale(parts interface {
	List() []partition.InstanceStatus
	Apply(partition.InstanceSpec) error
}, hosted map[string]bool, latest func(instance string) (uint64, bool)) []string {
	byID := map[string]partition.InstanceStatus{}
	var copies []settle.Copy
	for _, st := range parts.List() {
		if st.State != partition.StateDestroyed {
			byID[st.ID] = st
			copies = append(copies, settle.Copy{ID: st.ID, Epoch: st.Epoch})
		}
	}
	var out []string
	for _, id := range settle.Stale(copies, hosted, latest) {
		st := byID[id]
		spec := partition.InstanceSpec{ID: st.ID, Name: st.Name, RecipeCID: st.RecipeCID, Type: st.Type,
			State: partition.StateDestroyed, Epoch: st.Epoch, Requester: st.Requester}
		if parts.Apply(spec) == nil {
			out = append(out, st.ID)
		}
	}
	return out
}

// fenceLoop runs fenceStale every marketFenceInterval until ctx ends,
// fences the hosted copies the ledger holds a newer agreed contract for
// (settle.Newer, through the market), and stops the hosted copies whose
// requester ended their contract's billing.
func (s *marketSys) fenceLoop(ctx context.Context) {
	t := time.NewTicker(marketFenceInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hosted := map[string]bool{}
		var live []settle.Copy
		now := time.Now()
		for _, h := range s.market.Hosted() {
			if h.Fenced {
				continue
			}
			hosted[string(h.InstanceID)] = true
			live = append(live, settle.Copy{ID: string(h.InstanceID), Epoch: h.Epoch})
			// A copy whose requester ended its billing is not served
			// for free (StopUnpaid acts only on a copy meant to run).
			if s.deps.Ledger.ledger.EndedByRequester(string(h.InstanceID), h.Epoch, now) {
				if _, err := s.market.StopUnpaid(ctx, h.InstanceID, h.Epoch); err != nil {
					s.log.Debug("market: stop an unpaid copy", "err", err)
				}
			}
		}
		// A hosted copy whose instance was placed again at a higher epoch
		// while this node was cut off from the market: the ledger brings
		// the newer contract, and the market fences the copy with it.
		// So do the instances this node tracks (as requester or guardian):
		// a tracker that only knows the fenced copy's contract would take
		// it for healthy, or place the instance again at an epoch the
		// ledger already holds.
		for _, v := range s.market.Instances() {
			if v.Epoch > 0 {
				live = append(live, settle.Copy{ID: string(v.InstanceID), Epoch: v.Epoch})
			}
		}
		for _, c := range settle.Newer(live, s.deps.Ledger.latestContract) {
			if err := s.market.LearnContract(ctx, c); err != nil {
				s.log.Debug("market: fence a copy by the ledger's contract", "err", err)
			}
		}
		for _, id := range fenceStale(s.deps.Parts, hosted, s.deps.Ledger.latestEpoch) {
			s.log.Info("market: stale copy from an earlier run fenced by a newer contract in the ledger", "instance", scheduler.InstanceID(id).Short())
		}
	}
}

// marketSettle bounds how long a restarted node waits for the grid's
// membership before its market starts.
const marketSettle = 10 * time.Second

// awaitMembership runs before the market starts when it remembers
// instances (dir, its store, is not empty): it waits until the membership
// has found other members and stayed the same size for a second, or
// marketSettle passed, so that the remembered hosts are not taken for lost
// (and their instances placed again) merely because memberlist has not
// heard of them yet after the restart.
func awaitMembership(ctx context.Context, node *p2p.Node, dir string, log *slog.Logger) {
	if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
		return
	}
	deadline := time.Now().Add(marketSettle)
	prev, since := -1, time.Now()
	for time.Now().Before(deadline) {
		n := node.AliveCount()
		if n != prev {
			prev, since = n, time.Now()
		} else if n > 1 && time.Since(since) >= time.Second {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
	log.Info("market: starting before the membership settled", "members", prev)
}
