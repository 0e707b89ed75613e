package daemon

import (
	"context"
	"time"

	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

// marketFenceInterval is how often copies left over from an earlier run
// are checked against the ledger's epochs.
const marketFenceInterval = time.Second

// fenceStale destroys the local copies the market does not host (left from
// before a restart or a crash) once the ledger knows a contract with a
// higher epoch for their instance: the instance was placed again
// elsewhere, so this copy must stop and bill nothing more. It returns the
// IDs it destroyed.
func fenceStale(parts interface {
	List() []partition.InstanceStatus
	Apply(partition.InstanceSpec) error
}, hosted map[string]bool, latest func(instance string) (uint64, bool)) []string {
	var out []string
	for _, st := range parts.List() {
		if hosted[st.ID] || st.State == partition.StateDestroyed {
			continue
		}
		ep, ok := latest(st.ID)
		if !ok || ep <= st.Epoch {
			continue
		}
		spec := partition.InstanceSpec{ID: st.ID, Name: st.Name, RecipeCID: st.RecipeCID, Type: st.Type,
			State: partition.StateDestroyed, Epoch: st.Epoch, Requester: st.Requester}
		if parts.Apply(spec) == nil {
			out = append(out, st.ID)
		}
	}
	return out
}

// fenceLoop runs fenceStale every marketFenceInterval until ctx ends.
func (d *Daemon) fenceLoop(ctx context.Context, m *scheduler.Market) {
	t := time.NewTicker(marketFenceInterval)
	defer t.Stop()
	latest := func(id string) (uint64, bool) {
		_, ep, ok := d.ledgerLatestEpoch(id)
		return ep, ok
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hosted := map[string]bool{}
		for _, h := range m.Hosted() {
			if !h.Fenced {
				hosted[string(h.InstanceID)] = true
			}
		}
		for _, id := range fenceStale(d.parts, hosted, latest) {
			d.log.Info("market: stale copy from an earlier run fenced by a newer contract in the ledger", "instance", scheduler.InstanceID(id).Short())
		}
	}
}
