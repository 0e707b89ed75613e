package p2p_test

import (
	"fmt"
	"testing"

	"github.com/hashicorp/memberlist"

	"github.com/weftgrid/weft/p2p"
)

// presetMemberlistLAN stands for memberlist's own DefaultLANConfig in the
// simulations: the reference the LAN preset is compared with in the same run.
const presetMemberlistLAN p2p.Preset = -1

// simConfig is the memberlist configuration a simulated node uses.
func simConfig(p p2p.Preset) *memberlist.Config {
	if p == presetMemberlistLAN {
		return memberlist.DefaultLANConfig()
	}
	return p.MemberlistConfig()
}

// BenchmarkSimPresets compares, on the in-memory simulated network (1 ms
// one-way latency, virtual time, 16 KiB packets as on libp2p streams), the
// time until every survivor declares a crashed node dead with weft's LAN
// preset and with memberlist's DefaultLANConfig, the reference the preset
// is tuned from, at N = 10, 50, 100 and 200. It also reports convergence.
func BenchmarkSimPresets(b *testing.B) {
	for _, n := range []int{10, 50, 100, 200} {
		for _, pc := range []struct {
			name   string
			preset p2p.Preset
		}{{"lan", p2p.PresetLAN}, {"memberlist-lan", presetMemberlistLAN}} {
			b.Run(fmt.Sprintf("N=%d/preset=%s", n, pc.name), func(b *testing.B) {
				benchSimulate(b, n, pc.preset, p2p.StreamPacketSize)
			})
		}
	}
}
