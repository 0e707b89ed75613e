package settle

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

// BillerConfig is the billing loop's config. On a grid (networked), a
// provider bills a slice only after an anti-entropy exchange with any peer
// begun after the slice ended (so a host cut off from the grid bills
// nothing a newer epoch may have taken over), then every slice it owes
// (late if need be); a node alone bills its own instances at once.
func BillerConfig(networked bool, slice time.Duration) ledger.BillerConfig {
	var bc ledger.BillerConfig
	if networked && slice > 0 {
		bc.RequireSync = true
	}
	return bc
}

// UsageFromMeter converts a metered period (CPU nanoseconds, average and
// peak memory bytes, disk bytes, net bytes; negative = unknown) into a
// ledger usage vector over a period of length dur: CPU in microseconds,
// memory and disk integrated to byte-seconds, with integer arithmetic.
func UsageFromMeter(cpuNanos, memAvg, memPeak, disk, net int64, dur time.Duration) ledger.Usage {
	pos := func(v int64) uint64 {
		if v < 0 {
			return 0
		}
		return uint64(v)
	}
	byteSeconds := func(bytes int64) uint64 {
		// bytes × nanoseconds / 1e9, exact while bytes × ns fits (≤ 2^63 ≈ 9 EB·ns).
		b, ns := pos(bytes), pos(int64(dur))
		if b != 0 && ns > (1<<63)/b {
			return b * (ns / 1e9)
		}
		return b * ns / 1e9
	}
	return ledger.Usage{CPUMicros: pos(cpuNanos) / 1000, MemByteSeconds: byteSeconds(memAvg), MemPeakBytes: pos(memPeak), DiskByteSeconds: byteSeconds(disk), NetBytes: pos(net)}
}

// Price is the ledger price of a market price list: the same micro-credits
// per core-hour, per GiB-hour of memory and of disk, so no precision is
// lost (amounts are pico-credits). The flat per-instance price has no
// usage to multiply and is not billed per slice.
func Price(p scheduler.PriceList) ledger.Price {
	pos := func(a scheduler.Amount) uint64 {
		if a < 0 {
			return 0
		}
		return uint64(a)
	}
	return ledger.Price{CPU: pos(p.PerCoreHour), Mem: pos(p.PerGiBHour), Disk: pos(p.PerDiskGiBHour)}
}

// ReachVerdict is the requester's reachability rule. An instance was
// reachable for a receipt of provider at epoch when the requester's market
// view (view; nil when it has none) shows it started on that provider —
// the host reports "started" only once the recipe's promises pass — and
// the provider is alive in the membership. States the requester asked for
// itself (stopped, destroyed) and a finished batch job count as reachable:
// their last slices are billed legitimately. A view at an older epoch than
// the receipt's has not caught up: no verdict yet. A view at a newer epoch
// cannot judge a superseded contract; fencing (the audit) does.
func ReachVerdict(view *scheduler.InstanceView, alive map[peer.ID]bool, epoch uint64, provider peer.ID) (ledger.Reach, string) {
	switch {
	case view == nil:
		return ledger.Reachable, "" // not (or no longer) in this node's view: no evidence
	case view.Epoch < epoch:
		return ledger.ReachUnknown, ""
	case view.Epoch > epoch:
		return ledger.Reachable, ""
	case view.Node != provider.String():
		return ledger.Unreachable, fmt.Sprintf("instance %s is placed on %q, not on the receipt's provider", view.Name, view.Node)
	case !alive[provider]:
		return ledger.Unreachable, fmt.Sprintf("provider %s is not alive in the membership", provider)
	}
	switch view.State {
	case scheduler.StateStarted, scheduler.StateDone:
		return ledger.Reachable, ""
	case scheduler.StateStopped, scheduler.StateDestroyed:
		if view.RequestedState == view.State {
			return ledger.Reachable, ""
		}
	}
	reason := fmt.Sprintf("instance %s is %s, not started", view.Name, view.State)
	if view.Reason != "" {
		reason += ": " + view.Reason
	}
	return ledger.Unreachable, reason
}
