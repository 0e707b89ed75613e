package p2p

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Preset is a named set of membership timings, after memberlist's
// DefaultLANConfig, DefaultWANConfig and DefaultLocalConfig. Each value and
// why it differs from memberlist's is documented in docs/membership.md
// ("Timing presets").
type Preset int

const (
	// PresetLAN suits machines on one local network (the default). It is
	// memberlist's DefaultLANConfig made to detect a dead node in about
	// half the time, so that an instance is serving again on another host
	// within 10 s of its host's death (brief P6): probe every 500 ms with
	// a 250 ms timeout and 3 indirect checks, suspicion multiplier 3 (max
	// timeout multiplier 6), retransmit multiplier 6, gossip to 3 nodes
	// every 100 ms, push/pull every 10 s, stream timeout 10 s.
	PresetLAN Preset = iota
	// PresetWAN suits machines across the Internet; it is memberlist's
	// DefaultWANConfig: probe every 5 s with a 3 s timeout, suspicion
	// multiplier 6, push/pull every 60 s, gossip to 4 nodes every 500 ms,
	// stream timeout 30 s.
	PresetWAN
	// PresetLocal suits nodes on one machine (loopback) and tests:
	// memberlist's DefaultLocalConfig (1 indirect check, retransmit
	// multiplier 2) made faster: probe every 200 ms with a 100 ms timeout,
	// suspicion multiplier 2, push/pull every 2 s, gossip to 3 nodes every
	// 50 ms, stream timeout 1 s.
	PresetLocal
)

// LAN preset timings (see PresetLAN and docs/membership.md).
const (
	lanProbeInterval  = 500 * time.Millisecond
	lanProbeTimeout   = 250 * time.Millisecond
	lanSuspicionMult  = 3
	lanGossipInterval = 100 * time.Millisecond
	lanRetransmit     = 6
	lanPushPull       = 10 * time.Second
)

// String returns "lan", "wan" or "local".
func (p Preset) String() string {
	switch p {
	case PresetLAN:
		return "lan"
	case PresetWAN:
		return "wan"
	case PresetLocal:
		return "local"
	}
	return fmt.Sprintf("preset(%d)", int(p))
}

// ParsePreset parses "lan", "wan" or "local".
func ParsePreset(s string) (Preset, error) {
	switch strings.ToLower(s) {
	case "lan", "":
		return PresetLAN, nil
	case "wan":
		return PresetWAN, nil
	case "local":
		return PresetLocal, nil
	}
	return 0, fmt.Errorf("%w: unknown preset %q (want lan, wan or local)", ErrConfig, s)
}

// MemberlistConfig returns the memberlist configuration of the preset,
// without name, transport or delegates.
func (p Preset) MemberlistConfig() *memberlist.Config {
	switch p {
	case PresetWAN:
		return memberlist.DefaultWANConfig()
	case PresetLocal:
		c := memberlist.DefaultLocalConfig()
		c.ProbeInterval = 200 * time.Millisecond
		c.ProbeTimeout = 100 * time.Millisecond
		c.SuspicionMult = 2
		c.PushPullInterval = 2 * time.Second
		c.GossipInterval = 50 * time.Millisecond
		c.GossipNodes = 3
		c.TCPTimeout = time.Second
		return c
	default:
		c := memberlist.DefaultLANConfig()
		c.ProbeInterval = lanProbeInterval
		c.ProbeTimeout = lanProbeTimeout
		c.SuspicionMult = lanSuspicionMult
		c.GossipInterval = lanGossipInterval
		c.RetransmitMult = lanRetransmit
		c.PushPullInterval = lanPushPull
		return c
	}
}

// detectionEstimate estimates, from the preset's timings alone, the time
// from a member's death until a survivor in a grid of n members declares
// it dead once another member confirms the suspicion (or at once where
// memberlist expects no confirmation): up to two probe rounds until the
// dead member's turn comes and its direct and indirect probes fail, the
// minimum suspicion timeout (SuspicionMult × max(1, log10 n) ×
// ProbeInterval, memberlist's suspicionTimeout), and the gossip of the
// suspicion (one GossipInterval per fan-out round to reach n members, plus
// one). It ignores load: Lifeguard's awareness stretches the timings of a
// struggling node, and an unconfirmed suspicion lasts up to
// SuspicionMaxTimeoutMult times longer.
func (p Preset) detectionEstimate(n int) time.Duration {
	return estimateFor(p.MemberlistConfig(), n)
}

// estimateFor is detectionEstimate for any memberlist configuration.
func estimateFor(c *memberlist.Config, n int) time.Duration {
	scale := math.Max(1, math.Log10(math.Max(1, float64(n))))
	susp := time.Duration(float64(c.SuspicionMult) * scale * float64(c.ProbeInterval))
	rounds := 1
	for reach := 1; reach < n; reach *= max(c.GossipNodes, 2) {
		rounds++
	}
	return 2*c.ProbeInterval + susp + time.Duration(rounds)*c.GossipInterval
}
