package settle

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedtest"
)

// A requester owes an end of billing, StopAllowance after it asked, for
// each of its own placed instances it asked to stop or destroy, and none
// for others' (guarded), unplaced or started ones.
func TestStopEnds(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	base := scheduler.InstanceView{InstanceID: "i", Name: "web", Epoch: 3, Mine: true, RequestedAt: at}
	with := func(f func(*scheduler.InstanceView)) scheduler.InstanceView { v := base; f(&v); return v }
	views := []scheduler.InstanceView{
		with(func(v *scheduler.InstanceView) { v.InstanceID, v.RequestedState = "stopped", scheduler.StateStopped }),
		with(func(v *scheduler.InstanceView) {
			v.InstanceID, v.RequestedState = "destroyed", scheduler.StateDestroyed
		}),
		with(func(v *scheduler.InstanceView) { v.InstanceID, v.RequestedState = "started", scheduler.StateStarted }),
		with(func(v *scheduler.InstanceView) {
			v.InstanceID, v.RequestedState, v.Mine = "guarded", scheduler.StateStopped, false
		}),
		with(func(v *scheduler.InstanceView) {
			v.InstanceID, v.RequestedState, v.Epoch = "unplaced", scheduler.StateStopped, 0
		}),
	}
	got := StopEnds(views)
	if len(got) != 2 {
		t.Fatalf("ends %+v, want the stopped and the destroyed instance's", got)
	}
	for _, e := range got {
		if e.Epoch != 3 || !e.At.Equal(at.Add(StopAllowance)) || e.Instance != e.State || !strings.Contains(e.Reason, "as its requester asked") {
			t.Errorf("end %+v", e)
		}
	}
}

// The requester disputes a receipt for a slice that began after it asked
// for the stop (allowing StopAllowance) even before any end of billing is
// in the ledger and while its view says the instance is stopped as asked;
// the slice the stop fell in, and the receipts of a newer epoch, are not
// disputed for it.
func TestReceiptAfterTheRequestedStopIsDisputed(t *testing.T) {
	prov := newParty(t).ledger.ID()
	stopAt := time.Unix(1_700_000_000, 0)
	view := scheduler.InstanceView{InstanceID: "i", Name: "web", Node: prov.String(), Epoch: 2, Mine: true,
		State: scheduler.StateStopped, RequestedState: scheduler.StateStopped, RequestedAt: stopAt}
	reach := Reach{Instances: func() []scheduler.InstanceView { return []scheduler.InstanceView{view} },
		Alive: func() map[peer.ID]bool { return map[peer.ID]bool{prov: true} }}
	slice := int64(10 * time.Second)
	receipt := func(epoch uint64, from time.Time) ledger.Receipt {
		return ledger.Receipt{InstanceID: "i", Epoch: epoch, Slice: 7, FromNanos: from.UnixNano(), ToNanos: from.UnixNano() + slice}
	}
	for _, c := range []struct {
		name string
		r    ledger.Receipt
		want ledger.Reach
	}{
		{"the stop's slice", receipt(2, stopAt.Add(-time.Second)), ledger.Reachable},
		{"within the allowance", receipt(2, stopAt.Add(StopAllowance-time.Nanosecond)), ledger.Reachable},
		{"after the allowance", receipt(2, stopAt.Add(StopAllowance)), ledger.Unreachable},
		{"an hour later", receipt(2, stopAt.Add(time.Hour)), ledger.Unreachable},
		{"an older epoch", receipt(1, stopAt.Add(time.Hour)), ledger.ReachUnknown},
	} {
		v, why := reach.Reachable(c.r, prov)
		if c.name == "an older epoch" {
			// The view is at a newer epoch: no verdict of its own on an
			// older contract (its span and fencing decide).
			if v == ledger.Unreachable && strings.Contains(why, "after_stop") {
				t.Errorf("%s: disputed for the stop of epoch 2: %q", c.name, why)
			}
			continue
		}
		if v != c.want {
			t.Errorf("%s: %s %q, want %s", c.name, v, why, c.want)
		}
		if v == ledger.Unreachable && !strings.Contains(why, "after_stop") {
			t.Errorf("%s: reason %q does not say why", c.name, why)
		}
	}
}

// Through the requester's billing loop: a provider that goes on billing
// after the stop (and writes no end) has every receipt for a slice that
// began StopAllowance after the stop request disputed, with the reason,
// while the slices before it are acknowledged; once the requester's own end
// of billing is in its ledger, the audit reports those receipts as after
// the end, and counts no slice after it as unbilled.
func TestBillingAfterTheStopIsDisputedAndReported(t *testing.T) {
	ctx := t.Context()
	alice, bob := newParty(t), newParty(t)
	start := time.Unix(1_800_000_000, 0)
	slice := 5 * time.Second
	now := start
	clock := func() time.Time { return now }
	lp, err := ledger.Open(ledger.Config{Signer: bob.ledger, ContractCheck: CheckContract, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Close()
	lr, err := ledger.Open(ledger.Config{Signer: alice.ledger, ContractCheck: CheckContract, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer lr.Close()
	mc, err := schedtest.Contract(alice.market, bob.market, "web", 1, start)
	if err != nil {
		t.Fatal(err)
	}
	lc := Contract(mc, slice)
	ce, err := lp.AppendContract(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	raws := [][]byte{ce.Bytes()}
	// The requester asks for the stop 12 s in (during slice 2); the
	// provider bills slices 0..9 regardless.
	stopAt := start.Add(12 * time.Second)
	var receipts []*ledger.Entry
	for i := uint64(0); i < 10; i++ {
		from, to := lc.SliceBounds(i)
		now = time.Unix(0, to).Add(time.Second)
		re, err := lp.Append(ctx, ledger.MakeReceipt(ce.CID(), lc, i, from, to, ledger.Usage{CPUMicros: 1000}))
		if err != nil {
			t.Fatal(err)
		}
		receipts = append(receipts, re)
		raws = append(raws, re.Bytes())
	}
	if _, err := lr.Ingest(ctx, raws); err != nil {
		t.Fatal(err)
	}
	prov := bob.ledger.ID()
	view := scheduler.InstanceView{InstanceID: mc.Instance(), Name: "web", Node: prov.String(), Epoch: 1, Mine: true,
		State: scheduler.StateStopped, RequestedState: scheduler.StateStopped, RequestedAt: stopAt}
	reach := Reach{Instances: func() []scheduler.InstanceView { return []scheduler.InstanceView{view} },
		Alive: func() map[peer.ID]bool { return map[peer.ID]bool{prov: true} }}
	ledger.NewBiller(lr, nil, reach, ledger.BillerConfig{}).Tick(ctx, now)

	bound := stopAt.Add(StopAllowance).UnixNano()
	answers := map[string]string{} // receipt CID -> "ack" or the dispute's reason
	lr.View(func(s *ledger.Set) {
		for _, e := range ledger.Recent(s, ledger.KindAck, 0) {
			answers[e.Value().(ledger.Ack).Receipt.String()] = "ack"
		}
		for _, e := range ledger.Recent(s, ledger.KindDispute, 0) {
			answers[e.Value().(ledger.Dispute).Receipt.String()] = e.Value().(ledger.Dispute).Reason
		}
	})
	for i, re := range receipts {
		r := re.Value().(ledger.Receipt)
		got := answers[re.CID().String()]
		if after := r.FromNanos >= bound; after != strings.Contains(got, "after_stop") || (!after && got != "ack") {
			t.Errorf("slice %d (from %s): answered %q", i, time.Unix(0, r.FromNanos).Sub(start), got)
		}
	}

	// The requester's end of billing, as its loop writes it.
	ends := StopEnds([]scheduler.InstanceView{view})
	if len(ends) != 1 {
		t.Fatalf("stop ends %+v", ends)
	}
	e := ends[0]
	if ok, err := lr.EndSpan(ctx, e.Instance, e.Epoch, e.At, e.State, e.Reason); !ok || err != nil {
		t.Fatalf("requester's end: %v %v", ok, err)
	}
	var rep ledger.Report
	lr.View(func(s *ledger.Set) { rep = ledger.Audit(s, ledger.AuditOptions{Now: now.Add(time.Hour)}) })
	flagged := map[string]bool{}
	for _, p := range rep.Problems {
		if p.Code == ledger.CodeAfterEnd {
			flagged[p.CID] = true
		}
	}
	for i, re := range receipts {
		if want := re.Value().(ledger.Receipt).FromNanos >= bound; flagged[re.CID().String()] != want {
			t.Errorf("slice %d: reported after the end %v, want %v", i, flagged[re.CID().String()], want)
		}
	}
	if rep.Unbilled != 0 {
		t.Errorf("unbilled %d after the stop: %+v", rep.Unbilled, rep.UnbilledContracts)
	}
}
