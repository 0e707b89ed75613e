package timeline

import (
	"slices"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/scheduler"
)

func kinds(es []api.Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Kind)
	}
	return out
}

// TestDeriveLifecycle drives Derive through a whole life: request, auction,
// start, a failing promise, a restart, the host's loss, a re-placement,
// a stop and a destroy.
func TestDeriveLifecycle(t *testing.T) {
	now := time.Unix(1000, 0)
	v := scheduler.InstanceView{Name: "web", InstanceID: "ab", Requester: "req", RequestedState: scheduler.StateStarted, State: scheduler.StatePending, Generation: 1}
	var prev *scheduler.InstanceView
	var all []api.Event
	step := func(ev scheduler.Event) []api.Event {
		out := Derive(prev, ev, now)
		all = append(all, out...)
		p := ev.Instance
		prev = &p
		return out
	}
	step(scheduler.Event{Kind: scheduler.EventRequested, Instance: v})
	auction := &scheduler.AuctionView{Reason: "request", Bids: []scheduler.BidView{{Node: "h1", Price: 100}}, Declines: []scheduler.DeclineView{{Node: "h2", Reason: "lacked memory"}}, Winner: "h1"}
	v.Node, v.Epoch = "h1", 1
	got := step(scheduler.Event{Kind: scheduler.EventPlaced, Instance: v, Auction: auction, Contract: &scheduler.ContractSummary{Node: "h1", Epoch: 1, Price: 100, Auctioneer: "req"}})
	if !slices.Equal(kinds(got), []string{KindAuctioned, KindAwarded}) || *got[1].Node != "h1" || got[0].Node != nil {
		t.Fatalf("placement: %+v", got)
	}
	v.Reason = "installing recipe"
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v})
	v.State, v.Reason, v.Health = scheduler.StateStarted, "", scheduler.HealthOK
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v})
	// The same status again adds nothing.
	if got := step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v}); len(got) != 0 {
		t.Fatalf("a repeated status added %+v", got)
	}
	exit := "exit status 3"
	v.Health, v.Reason, v.Restarts, v.LastExit = scheduler.HealthFailing, "promise port FAIL", 1, &exit
	got = step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v})
	if !slices.Equal(kinds(got), []string{KindPromiseFailing, KindRestarted}) || got[1].Detail != "exit status 3; 1 restart(s)" {
		t.Fatalf("failing: %+v", got)
	}
	v.Health, v.Reason = scheduler.HealthOK, ""
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v})
	v.Reason = "host lost; re-placing"
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v})
	v2 := v
	v2.Node, v2.Epoch, v2.State, v2.Reason, v2.Health, v2.Restarts, v2.LastExit = "h2", 2, scheduler.StatePending, "", scheduler.HealthUnknown, 0, nil
	re := &scheduler.AuctionView{Reason: "host lost", Bids: []scheduler.BidView{{Node: "h2"}}, Winner: "h2"}
	got = step(scheduler.Event{Kind: scheduler.EventPlaced, Instance: v2, Auction: re, Contract: &scheduler.ContractSummary{Node: "h2", Epoch: 2, Auctioneer: "req"}})
	if !slices.Equal(kinds(got), []string{KindAuctioned, KindAwarded, KindReplaced, KindFenced}) || *got[3].Node != "h1" || got[2].Detail != "from h1: host lost" {
		t.Fatalf("re-placement: %+v", got)
	}
	v2.State = scheduler.StateStarted
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v2})
	v2.State = scheduler.StateStopped
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v2})
	v2.State = scheduler.StateDestroyed
	step(scheduler.Event{Kind: scheduler.EventStatus, Instance: v2})
	want := []string{KindRequested, KindAuctioned, KindAwarded, KindInstalling, KindStarted, KindPromiseFailing, KindRestarted,
		KindPromiseRecovered, KindHostLost, KindAuctioned, KindAwarded, KindReplaced, KindFenced, KindStarted, KindStopped, KindDestroyed}
	if !slices.Equal(kinds(all), want) {
		t.Fatalf("timeline:\n got %v\nwant %v", kinds(all), want)
	}
}

func TestDeriveUnplaced(t *testing.T) {
	v := scheduler.InstanceView{Name: "x", InstanceID: "ab", State: scheduler.StateFailed, Reason: "no node placed x: 2 lacked memory"}
	got := Derive(nil, scheduler.Event{Kind: scheduler.EventUnplaced, Instance: v, Auction: &scheduler.AuctionView{Declines: []scheduler.DeclineView{{Reason: "lacked memory"}, {Reason: "lacked memory"}}}}, time.Now())
	if !slices.Equal(kinds(got), []string{KindAuctioned, KindFailed}) || got[0].Detail != "0 bid(s), 2 decline(s) (2 lacked memory)" || got[1].Detail != v.Reason {
		t.Fatalf("%+v", got)
	}
}

// TestTimelineKeepsAndBounds checks that a timeline is bounded, survives a
// reopen, follows new entries and forgets.
func TestTimelineKeepsAndBounds(t *testing.T) {
	dir := t.TempDir()
	tl, err := Open(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := scheduler.InstanceID("0123abcd")
	_, next, cancel := tl.Follow(id)
	v := scheduler.InstanceView{Name: "web", InstanceID: id, RequestedState: scheduler.StateStarted}
	for range 5 {
		v.Generation++
		tl.Observe(scheduler.Event{Kind: scheduler.EventRequested, Instance: v})
	}
	select {
	case e := <-next:
		if e.Kind != KindRequested {
			t.Fatalf("followed %+v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no entry followed")
	}
	cancel()
	// Hostile or odd IDs are never file names.
	tl.Observe(scheduler.Event{Kind: scheduler.EventRequested, Instance: scheduler.InstanceView{InstanceID: "../../etc"}})
	if err := tl.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(tl.Events(id)); n != 3 {
		t.Fatalf("%d entries kept, want 3", n)
	}
	tl2, err := Open(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tl2.Close()
	if n := len(tl2.Events(id)); n != 3 {
		t.Fatalf("%d entries after reopen, want 3", n)
	}
	if n := len(tl2.Events("../../etc")); n != 0 {
		t.Fatalf("hostile id kept %d entries", n)
	}
	tl2.Forget(id)
	tl3, err := Open(dir, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tl3.Close()
	if n := len(tl3.Events(id)); n != 0 {
		t.Fatalf("forgotten timeline came back with %d entries", n)
	}
}

func TestWhyRanks(t *testing.T) {
	a := scheduler.AuctionView{Bids: []scheduler.BidView{{Node: "a", Price: 1}, {Node: "b", Price: 2}}, Winner: "a"}
	w := Why(a)
	if len(w.Ranked) != 2 || w.Ranked[0].Rank != 1 || !w.Ranked[0].Winner || w.Ranked[1].Winner {
		t.Fatalf("%+v", w)
	}
	last, ok := LastAuction([]scheduler.AuctionView{{InstanceID: "x", Epoch: 1, OpenedAt: time.Unix(1, 0)}, {InstanceID: "x", Epoch: 2, OpenedAt: time.Unix(2, 0)}, {InstanceID: "y", OpenedAt: time.Unix(3, 0)}}, "x")
	if !ok || last.Epoch != 2 {
		t.Fatalf("last auction %+v", last)
	}
}
