package demo

import (
	"testing"

	"github.com/weftgrid/weft/partition"
)

// The demo deletes its nodes' users by name: the names must be the ones
// the runtime gives them.
func TestNodeUserPrefixMatchesPartition(t *testing.T) {
	for _, dir := range []string{"/tmp/weft-demo-1/node0", "/var/lib/x/.weft"} {
		if got, want := nodeUserPrefix(dir), partition.NodeUserPrefix(dir); got != want {
			t.Errorf("%s: demo deletes users %s*, the node makes %s*", dir, got, want)
		}
	}
}

// The demo deletes a killed node's nftables table by name: the name must be
// the one the runtime gives it.
func TestNetTableMatchesPartition(t *testing.T) {
	for _, dir := range []string{"/tmp/weft-demo-1/node0", "/var/lib/x/.weft"} {
		if got, want := netTable(dir), partition.NetTable(dir); got != want {
			t.Errorf("%s: demo deletes table %s, the node makes %s", dir, got, want)
		}
	}
}
