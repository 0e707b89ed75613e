package settle

import (
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// Copy is a local copy of an instance that has not been destroyed: its
// instance ID and the contract epoch it runs under.
type Copy struct {
	ID    string
	Epoch uint64
}

// Stale returns the IDs of the copies the market does not host (hosted;
// left from before a restart or a crash) for which the ledger knows a
// contract with a higher epoch (latest): the instance was placed again
// elsewhere, so these copies must stop and bill nothing more.
func Stale(copies []Copy, hosted map[string]bool, latest func(instance string) (uint64, bool)) []string {
	var out []string
	for _, c := range copies {
		if hosted[c.ID] {
			continue
		}
		if ep, ok := latest(c.ID); ok && ep > c.Epoch {
			out = append(out, c.ID)
		}
	}
	return out
}

// Newer returns, for each copy the market hosts, the ledger's latest
// contract for its instance (latest) when that contract has a higher epoch
// than the copy's and is agreed by both sides (CheckContract: the award and
// the provider's acceptance it carries as evidence say what it says),
// decoded into the market's contract. A host cut off from the market while
// its instance was placed again learns of it this way through the
// replicated ledger; the market fences the copy with the contract
// (scheduler.Market.LearnContract). A contract naming another instance, or
// whose evidence does not verify, fences nothing.
func Newer(hosted []Copy, latest func(instance string) (ledger.Contract, bool)) []*scheduler.Contract {
	var out []*scheduler.Contract
	for _, h := range hosted {
		lc, ok := latest(h.ID)
		if !ok || lc.InstanceID != h.ID || lc.Epoch <= h.Epoch || CheckContract(lc) != nil {
			continue
		}
		c, err := scheduler.DecodeContract(lc.Evidence)
		if err != nil || string(c.Instance()) != h.ID || c.Epoch() != lc.Epoch {
			continue
		}
		out = append(out, c)
	}
	return out
}
