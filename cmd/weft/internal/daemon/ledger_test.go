package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

func testLedgerPeer(t *testing.T) (*ledger.Signer, peer.ID) {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ledger.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.ID()
}

// A small web server metered over a one-second slice, at the default
// market prices, bills a non-zero amount equal to price × usage.
func TestMeteredSliceAtDefaultPricesBillsNonZero(t *testing.T) {
	mc := config.Default().Market.Prices
	price := ledgerPrice(scheduler.PriceList{PerCoreHour: scheduler.Amount(mc.PerCoreHour), PerGiBHour: scheduler.Amount(mc.PerGiBHour),
		PerDiskGiBHour: scheduler.Amount(mc.PerDiskGiBHour), PerInstanceHour: scheduler.Amount(mc.PerInstanceHour)})
	if price.CPU != uint64(mc.PerCoreHour) || price.Mem != uint64(mc.PerGiBHour) || price.Disk != uint64(mc.PerDiskGiBHour) {
		t.Fatalf("price %+v does not carry the market's hourly list %+v", price, mc)
	}
	// 1.5 ms CPU (1,500,321 ns), 1.8 MB average, 2 MiB peak, 12 KiB disk, over 1 s.
	u := ledgerUsageFromMeter(1_500_321, 1_817_039, 2<<20, 12_288, -1, time.Second)
	want := ledger.Usage{CPUMicros: 1500, MemByteSeconds: 1_817_039, MemPeakBytes: 2 << 20, DiskByteSeconds: 12_288}
	if u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
	amt := ledger.Amount(price, u)
	// By hand: CPU 1500 µs × 1000 µcr/core-h = 1500×1000/3600 = 416 pcr;
	// memory 1817039 B·s × 500 µcr/GiB-h × 10^6 / (3600 × 2^30) = 235 pcr;
	// disk 12288 × 10 × 10^6 / (3600 × 2^30) = 0 pcr.
	if mc.PerCoreHour == 1000 && mc.PerGiBHour == 500 && mc.PerDiskGiBHour == 10 && amt != 416+235 {
		t.Fatalf("amount %d pcr, want 651", amt)
	}
	if amt == 0 {
		t.Fatalf("a running instance billed 0 over a 1 s slice at %+v", price)
	}
}

func TestReachVerdict(t *testing.T) {
	_, prov := testLedgerPeer(t)
	_, other := testLedgerPeer(t)
	alive := map[peer.ID]bool{prov: true, other: true}
	started := scheduler.InstanceView{Name: "web", Node: prov.String(), State: scheduler.StateStarted, RequestedState: scheduler.StateStarted, Epoch: 2, Mine: true}
	with := func(f func(v *scheduler.InstanceView)) *scheduler.InstanceView { v := started; f(&v); return &v }
	cases := []struct {
		name   string
		view   *scheduler.InstanceView
		alive  map[peer.ID]bool
		epoch  uint64
		want   ledger.Reach
		reason string
	}{
		{"started on the provider, alive", &started, alive, 2, ledger.Reachable, ""},
		{"provider dead", &started, map[peer.ID]bool{other: true}, 2, ledger.Unreachable, "not alive"},
		{"placed elsewhere", with(func(v *scheduler.InstanceView) { v.Node = other.String() }), alive, 2, ledger.Unreachable, "not on the receipt's provider"},
		{"promises not passing", with(func(v *scheduler.InstanceView) { v.State, v.Reason = scheduler.StatePending, "promise http failing" }), alive, 2, ledger.Unreachable, "promise http failing"},
		{"failed", with(func(v *scheduler.InstanceView) { v.State = scheduler.StateFailed }), alive, 2, ledger.Unreachable, "failed"},
		{"stopped by the requester", with(func(v *scheduler.InstanceView) {
			v.State, v.RequestedState = scheduler.StateStopped, scheduler.StateStopped
		}), alive, 2, ledger.Reachable, ""},
		{"stopped against the request", with(func(v *scheduler.InstanceView) { v.State = scheduler.StateStopped }), alive, 2, ledger.Unreachable, "stopped"},
		{"batch done", with(func(v *scheduler.InstanceView) { v.State = scheduler.StateDone }), alive, 2, ledger.Reachable, ""},
		{"view behind the receipt's epoch", &started, alive, 3, ledger.ReachUnknown, ""},
		{"superseded epoch: fencing judges", with(func(v *scheduler.InstanceView) { v.Node = other.String() }), alive, 1, ledger.Reachable, ""},
		{"no view", nil, alive, 2, ledger.Reachable, ""},
	}
	for _, c := range cases {
		got, reason := reachVerdict(c.view, c.alive, c.epoch, prov)
		if got != c.want || !strings.Contains(reason, c.reason) || (c.want == ledger.Unreachable) != (reason != "") {
			t.Errorf("%s: %s %q, want %s with %q", c.name, got, reason, c.want, c.reason)
		}
	}
}

// [ledger] credit_limit reaches the market's bid decision through the
// ledger balance: a requester below it is declined, one at it gets a bid,
// also for a positive limit (a required deposit).
func TestCreditLimitGatesBidsOnLedgerBalance(t *testing.T) {
	ctx := context.Background()
	granter, _ := testLedgerPeer(t)
	_, rich := testLedgerPeer(t)
	_, poor := testLedgerPeer(t)
	l, err := ledger.Open(ledger.Config{Signer: granter})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// rich holds 5 credits; poor holds 4.999999 credits plus 0.5 µcr.
	if _, err := l.Append(ctx, ledger.Grant{To: rich, Amount: 5 * ledger.PicoPerCredit}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, ledger.Grant{To: poor, Amount: 5*ledger.PicoPerCredit - ledger.PicoPerMicro/2}); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int64{5_000_000, -1_000} {
		cfg := config.Default()
		cfg.Ledger.CreditLimit = limit
		d := &Daemon{cfg: cfg}
		d.ledger = l
		mcfg, err := d.marketConfig()
		if err != nil {
			t.Fatal(err)
		}
		if !mcfg.Policy.CheckCredit {
			t.Fatal("[market] check_credit is on by default but the policy does not check credit")
		}
		decide := func(requester peer.ID) scheduler.Decision {
			st := scheduler.NodeState{Capacity: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 1 << 30}, Free: scheduler.Resources{CPUMillis: 4000, MemoryBytes: 1 << 30}, FreePartitions: 1}
			st.Balance, st.BalanceKnown = ledgerBalances{d}.Balance(requester)
			return scheduler.Decide(&scheduler.Announcement{Requester: requester, Resources: scheduler.Resources{CPUMillis: 100}}, st, &mcfg.Policy)
		}
		if b, _ := (ledgerBalances{d}).Balance(poor); b != 4_999_999 {
			t.Fatalf("poor's balance %d µcr, want 4999999 (rounded down)", b)
		}
		if dec := decide(rich); !dec.Bids() {
			t.Fatalf("limit %d: requester at 5 credits declined: %s", limit, dec.Text)
		}
		dec := decide(poor)
		if limit > 0 && (dec.Bids() || dec.Code != scheduler.DeclineCredit) {
			t.Fatalf("limit %d µcr: requester below it got %+v, want a credit decline", limit, dec)
		}
		if limit < 0 && !dec.Bids() {
			t.Fatalf("limit %d µcr: requester above it declined: %s", limit, dec.Text)
		}
	}
}

func TestBillerConfigGatesOnSyncWhenNetworked(t *testing.T) {
	if bc := billerConfig(false, time.Second, time.Second); bc.RequireSync {
		t.Fatalf("offline ledger gated on sync: %+v", bc)
	}
	for _, c := range []struct {
		ae, slice time.Duration
		want      uint64
	}{{time.Second, time.Minute, 3}, {time.Second, time.Second, 4}, {time.Second, 100 * time.Millisecond, 22}} {
		bc := billerConfig(true, c.ae, c.slice)
		if !bc.RequireSync || bc.CatchUp != c.want {
			t.Errorf("anti-entropy %s, slice %s: %+v, want RequireSync and CatchUp %d", c.ae, c.slice, bc, c.want)
		}
	}
}
