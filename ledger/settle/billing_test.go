package settle

import (
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/scheduler"
)

func testPeer(t *testing.T) peer.ID {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// A small web server metered over a one-second slice bills a non-zero
// amount equal to price × usage, with the market's hourly list carried
// unchanged into the ledger's price.
func TestMeteredSliceBillsPriceTimesUsage(t *testing.T) {
	list := scheduler.PriceList{PerCoreHour: 1000, PerGiBHour: 500, PerDiskGiBHour: 10, PerInstanceHour: 7}
	price := Price(list)
	if price != (ledger.Price{CPU: 1000, Mem: 500, Disk: 10}) {
		t.Fatalf("price %+v does not carry the market's hourly list %+v", price, list)
	}
	if p := Price(scheduler.PriceList{PerCoreHour: -1}); p.CPU != 0 {
		t.Fatalf("a negative price became %+v", p)
	}
	// 1.5 ms CPU (1,500,321 ns), 1.8 MB average, 2 MiB peak, 12 KiB disk, over 1 s.
	u := UsageFromMeter(1_500_321, 1_817_039, 2<<20, 12_288, -1, time.Second)
	want := ledger.Usage{CPUMicros: 1500, MemByteSeconds: 1_817_039, MemPeakBytes: 2 << 20, DiskByteSeconds: 12_288}
	if u != want {
		t.Fatalf("usage %+v, want %+v", u, want)
	}
	// By hand: CPU 1500 µs × 1000 µcr/core-h = 1500×1000/3600 = 416 pcr;
	// memory 1817039 B·s × 500 µcr/GiB-h × 10^6 / (3600 × 2^30) = 235 pcr;
	// disk 12288 × 10 × 10^6 / (3600 × 2^30) = 0 pcr.
	if amt := ledger.Amount(price, u); amt != 416+235 {
		t.Fatalf("amount %d pcr, want 651", amt)
	}
	// Byte-seconds stay exact near the overflow bound and do not wrap past it.
	if u := UsageFromMeter(0, 1<<40, 0, 0, 0, time.Hour); u.MemByteSeconds != (1<<40)*3600 {
		t.Fatalf("1 TiB over an hour: %d B·s", u.MemByteSeconds)
	}
}

func TestReachVerdict(t *testing.T) {
	prov, other := testPeer(t), testPeer(t)
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
		got, reason := ReachVerdict(c.view, c.alive, c.epoch, prov)
		if got != c.want || !strings.Contains(reason, c.reason) || (c.want == ledger.Unreachable) != (reason != "") {
			t.Errorf("%s: %s %q, want %s with %q", c.name, got, reason, c.want, c.reason)
		}
	}
}

func TestBillerConfigGatesOnSyncWhenNetworked(t *testing.T) {
	if bc := BillerConfig(false, time.Second); bc.RequireSync {
		t.Fatalf("offline ledger gated on sync: %+v", bc)
	}
	for _, slice := range []time.Duration{time.Minute, time.Second, 100 * time.Millisecond} {
		if bc := BillerConfig(true, slice); !bc.RequireSync {
			t.Errorf("slice %s: %+v, want RequireSync", slice, bc)
		}
	}
}

func TestStale(t *testing.T) {
	copies := []Copy{{"stale", 1}, {"current", 2}, {"hosted", 1}, {"unknown", 1}}
	latest := map[string]uint64{"stale": 2, "current": 2, "hosted": 5}
	got := Stale(copies, map[string]bool{"hosted": true}, func(id string) (uint64, bool) { e, ok := latest[id]; return e, ok })
	if len(got) != 1 || got[0] != "stale" {
		t.Fatalf("fenced %v, want [stale]", got)
	}
}

// A receipt for a slice during which the host reported the instance
// failing is disputed, though the current view is healthy again.
func TestReachJudgesTheSliceNotTheCurrentView(t *testing.T) {
	prov := newParty(t).ledger.ID()
	view := scheduler.InstanceView{Name: "web", InstanceID: "i", Node: prov.String(), Epoch: 2, State: scheduler.StateStarted, Mine: true}
	var asked [2]time.Time
	r := Reach{
		Instances: func() []scheduler.InstanceView { return []scheduler.InstanceView{view} },
		Alive:     func() map[peer.ID]bool { return map[peer.ID]bool{prov: true} },
		SliceHealth: func(id scheduler.InstanceID, epoch uint64, from, to time.Time) (bool, bool, string) {
			asked = [2]time.Time{from, to}
			return false, true, "instance web is started but failing (last exit: web: exit status 1)"
		},
	}
	rc := ledger.Receipt{InstanceID: "i", Epoch: 2, FromNanos: 1e18, ToNanos: 1e18 + 1e9}
	got, why := r.Reachable(rc, prov)
	if got != ledger.Unreachable || !strings.Contains(why, "exit status 1") || asked[0].UnixNano() != rc.FromNanos || asked[1].UnixNano() != rc.ToNanos {
		t.Fatalf("%s %q (asked %v)", got, why, asked)
	}
	r.SliceHealth = func(scheduler.InstanceID, uint64, time.Time, time.Time) (bool, bool, string) { return true, true, "" }
	if got, why := r.Reachable(rc, prov); got != ledger.Reachable {
		t.Fatalf("healthy slice: %s %q", got, why)
	}
}
