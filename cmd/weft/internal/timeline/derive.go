package timeline

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/scheduler"
)

// Event kinds of a timeline.
const (
	KindRequested        = "requested"
	KindAuctioned        = "auctioned"
	KindAwarded          = "awarded"
	KindInstalling       = "installing"
	KindStarted          = "started"
	KindPromiseFailing   = "promise_failing"
	KindPromiseRecovered = "promise_recovered"
	KindRestarted        = "restarted"
	KindHostLost         = "host_lost"
	KindReplaced         = "replaced"
	KindFenced           = "fenced"
	KindStopped          = "stopped"
	KindDestroyed        = "destroyed"
	KindDone             = "done"
	KindWaiting          = "waiting"
	KindFailed           = "failed"
)

// Derive is the pure core of the timeline: the entries a market event
// adds to an instance's timeline, given the instance's view before it
// (nil: none seen yet) and the time now.
func Derive(prev *scheduler.InstanceView, ev scheduler.Event, now time.Time) []api.Event {
	cur := ev.Instance
	var out []api.Event
	add := func(kind, node, detail string) {
		e := api.Event{Time: now, Kind: kind, Detail: detail}
		if node != "" {
			n := node
			e.Node = &n
		}
		out = append(out, e)
	}
	var before scheduler.InstanceView
	if prev != nil {
		before = *prev
	}
	switch ev.Kind {
	case scheduler.EventRequested:
		detail := "state " + cur.RequestedState.String()
		if prev != nil && prev.Generation != cur.Generation {
			detail += " (updated request)"
		}
		add(KindRequested, "", detail)
		return out
	case scheduler.EventUnplaced:
		if ev.Auction != nil {
			add(KindAuctioned, "", AuctionSummary(*ev.Auction))
		}
		kind := KindFailed
		if cur.State == scheduler.StateWaiting {
			kind = KindWaiting
		}
		add(kind, "", cur.Reason)
		return out
	case scheduler.EventPlaced:
		c := ev.Contract
		if c == nil || c.Node == before.Node && c.Epoch == before.Epoch {
			break
		}
		if ev.Auction != nil {
			add(KindAuctioned, "", AuctionSummary(*ev.Auction))
		}
		detail := fmt.Sprintf("epoch %d, price %s/h", c.Epoch, c.Price)
		if ev.Auction == nil && c.Auctioneer != cur.Requester {
			detail += ", awarded by guardian " + c.Auctioneer
		}
		add(KindAwarded, c.Node, detail)
		if before.Node != "" && before.Node != c.Node {
			why := "host changed"
			if ev.Auction != nil && ev.Auction.Reason != "" && ev.Auction.Reason != "request" {
				why = ev.Auction.Reason
			} else if strings.Contains(before.Reason, "host lost") {
				why = "host lost"
			}
			add(KindReplaced, c.Node, "from "+before.Node+": "+why)
			add(KindFenced, before.Node, fmt.Sprintf("its copy at epoch %d is superseded by epoch %d", before.Epoch, c.Epoch))
		}
		return out
	case scheduler.EventStatus:
	default:
		return nil
	}
	// A status: compare what the host says now with what it said before.
	if cur.Reason != before.Reason && strings.Contains(cur.Reason, "host lost") {
		add(KindHostLost, cur.Node, cur.Reason)
	}
	if cur.Node != before.Node || cur.Epoch != before.Epoch {
		// A new host starts from nothing: its first status is news.
		before = scheduler.InstanceView{State: scheduler.StatePending}
	}
	if cur.State != before.State || cur.Reason != before.Reason && cur.State == scheduler.StatePending {
		switch cur.State {
		case scheduler.StatePending:
			if cur.Node != "" && strings.Contains(strings.ToLower(cur.Reason), "install") {
				add(KindInstalling, cur.Node, cur.Reason)
			}
		case scheduler.StateStarted:
			add(KindStarted, cur.Node, connectionSummary(cur.Connection))
		case scheduler.StateStopped:
			add(KindStopped, cur.Node, cur.Reason)
		case scheduler.StateDestroyed:
			add(KindDestroyed, cur.Node, cur.Reason)
		case scheduler.StateDone:
			add(KindDone, cur.Node, cur.Result)
		case scheduler.StateFailed:
			add(KindFailed, cur.Node, cur.Reason)
		case scheduler.StateWaiting:
			add(KindWaiting, "", cur.Reason)
		}
	}
	if cur.Health != before.Health {
		switch {
		case cur.Health == scheduler.HealthFailing && cur.State != scheduler.StateFailed:
			add(KindPromiseFailing, cur.Node, cur.Reason)
		case before.Health == scheduler.HealthFailing && cur.Health == scheduler.HealthOK:
			add(KindPromiseRecovered, cur.Node, "promises passing")
		}
	}
	if cur.Restarts > before.Restarts {
		detail := fmt.Sprintf("%d restart(s)", cur.Restarts)
		if cur.LastExit != nil {
			detail = *cur.LastExit + "; " + detail
		}
		add(KindRestarted, cur.Node, detail)
	}
	return out
}

// AuctionSummary sums up an auction: bids and declines, the declines
// grouped by reason, and the winner.
func AuctionSummary(a scheduler.AuctionView) string {
	s := fmt.Sprintf("%d bid(s), %d decline(s)", len(a.Bids), len(a.Declines))
	if len(a.Declines) > 0 {
		counts := map[string]int{}
		for _, d := range a.Declines {
			counts[d.Reason]++
		}
		var parts []string
		for _, r := range slices.Sorted(maps.Keys(counts)) {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if a.Reason != "" && a.Reason != "request" {
		s += "; opened: " + a.Reason
	}
	if a.Winner != "" {
		s += "; winner " + a.Winner
	} else if a.Explanation != "" {
		s += "; " + a.Explanation
	}
	return s
}

func connectionSummary(c map[string]string) string {
	if u := c["url"]; u != "" {
		return u
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, k+"="+c[k])
	}
	return strings.Join(parts, " ")
}
