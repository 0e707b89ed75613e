package p2p

import (
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// replaceBudget is what brief P6 leaves for re-placing an instance once
// its host is declared dead ("≤ 3 s after death is declared"), out of 10 s
// from the host's death to the instance serving elsewhere.
const (
	replaceBudget  = 3 * time.Second
	failoverBudget = 10 * time.Second
)

// TestLANPresetFitsFailoverBudget checks, from the timings alone, that the
// LAN preset declares a dead host early enough for a re-placement within
// P6's budget at every grid size up to 200, and that it differs from
// memberlist's DefaultLANConfig only in the values docs/membership.md
// explains.
func TestLANPresetFitsFailoverBudget(t *testing.T) {
	for _, n := range []int{2, 3, 10, 50, 100, 200} {
		est := PresetLAN.detectionEstimate(n)
		if est+replaceBudget > failoverBudget {
			t.Errorf("N=%d: detection estimated at %v leaves less than %v of the %v budget", n, est, replaceBudget, failoverBudget)
		}
		if local := PresetLocal.detectionEstimate(n); local >= est {
			t.Errorf("N=%d: local preset (%v) is not faster than lan (%v)", n, local, est)
		}
		if wan := PresetWAN.detectionEstimate(n); wan <= est {
			t.Errorf("N=%d: wan preset (%v) is not slower than lan (%v)", n, wan, est)
		}
	}
	// memberlist's own LAN timings do not fit at 50 nodes: the reason the
	// preset differs.
	if ref := memberlistLANEstimate(50); ref+replaceBudget <= failoverBudget {
		t.Errorf("memberlist's LAN config fits the budget at N=50 (%v): the preset need not differ", ref)
	}

	got, ref := PresetLAN.MemberlistConfig(), memberlist.DefaultLANConfig()
	if got.ProbeTimeout >= got.ProbeInterval {
		t.Errorf("probe timeout %v is not below the probe interval %v (no time left for indirect probes)", got.ProbeTimeout, got.ProbeInterval)
	}
	if got.SuspicionMult < 2 {
		t.Errorf("suspicion multiplier %d: Lifeguard expects SuspicionMult-2 confirmations, at least 0", got.SuspicionMult)
	}
	// Fields the preset changes, then everything else must be memberlist's.
	got.ProbeInterval, got.ProbeTimeout, got.SuspicionMult, got.GossipInterval, got.RetransmitMult, got.PushPullInterval =
		ref.ProbeInterval, ref.ProbeTimeout, ref.SuspicionMult, ref.GossipInterval, ref.RetransmitMult, ref.PushPullInterval
	same := []struct {
		name     string
		got, ref any
	}{
		{"IndirectChecks", got.IndirectChecks, ref.IndirectChecks},
		{"SuspicionMaxTimeoutMult", got.SuspicionMaxTimeoutMult, ref.SuspicionMaxTimeoutMult},
		{"AwarenessMaxMultiplier", got.AwarenessMaxMultiplier, ref.AwarenessMaxMultiplier},
		{"GossipNodes", got.GossipNodes, ref.GossipNodes},
		{"GossipToTheDeadTime", got.GossipToTheDeadTime, ref.GossipToTheDeadTime},
		{"TCPTimeout", got.TCPTimeout, ref.TCPTimeout},
		{"DisableTcpPings", got.DisableTcpPings, ref.DisableTcpPings},
	}
	for _, s := range same {
		if s.got != s.ref {
			t.Errorf("%s = %v, memberlist's LAN default is %v: document the change or keep the default", s.name, s.got, s.ref)
		}
	}
}

// memberlistLANEstimate is detectionEstimate for memberlist's own LAN
// configuration.
func memberlistLANEstimate(n int) time.Duration {
	return estimateFor(memberlist.DefaultLANConfig(), n)
}
