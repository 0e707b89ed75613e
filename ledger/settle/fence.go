package settle

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
