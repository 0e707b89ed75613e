package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/scheduler"
)

// keysOf marshals v and returns the keys of the object at path (dot
// separated, "" for the top), sorted.
func keysOf(t *testing.T, v any, path string) []string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if path != "" {
		for _, k := range strings.Split(path, ".") {
			sub, ok := m[k].(map[string]any)
			if !ok {
				t.Fatalf("%s: no object at %q in %s", path, k, b)
			}
			m = sub
		}
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestAnswerShapes pins the JSON field names of the answers client
// commands print with --json and scripts and checks read: a renamed or
// dropped field fails here.
func TestAnswerShapes(t *testing.T) {
	full := Status{
		Content:    &ContentStatus{ContentTransfer: &ContentTransfer{}, Transfer: true},
		Ledger:     &LedgerStatus{},
		Market:     &MarketStatus{},
		Partitions: &PartitionsStatus{},
		Limits:     map[string]any{"partitions": "limits enforced"},
	}
	for _, c := range []struct {
		name string
		v    any
		path string
		want string
	}{
		{"status", Status{}, "", "addrs grid limits members peer_id peers preset sandbox uptime_s version"},
		{"status, every subsystem", full, "", "addrs content grid ledger limits market members partitions peer_id peers preset sandbox uptime_s version"},
		{"status.content without transfer", Status{Content: &ContentStatus{}}, "content", "transfer"},
		{"status.content", full, "content", "bytes_fetched bytes_served failed_attempts transfer"},
		{"status.ledger", full, "ledger", "entries root slice"},
		{"status.market", full, "market", "dropped fenced placements received sent"},
		{"status.partitions", full, "partitions", "free limits total"},
		{"peer", Peer{}, "", "addrs advert peer_id reach rtt_ms state"},
		{"peer (self)", Peer{Self: true}, "", "addrs advert peer_id reach rtt_ms self state"},
		{"peer.advert", Peer{}, "advert", "cpu_millis disk_bytes free_partitions labels memory_bytes no_bids version"},
		{"grid", Grid{}, "", "founder grid id members revoked version"},
		{"grid change", GridChange{}, "", "peer_id"},
	} {
		if got := strings.Join(keysOf(t, c.v, c.path), " "); got != c.want {
			t.Errorf("%s: fields %q, want %q", c.name, got, c.want)
		}
	}
}

// The fields checks read from `weft instance show --json` and `weft ledger
// audit --json`, and those of the core views the status holds, are always
// present (their packages may add more).
func TestContractFieldsPresent(t *testing.T) {
	for _, c := range []struct {
		name string
		v    any
		want []string
	}{
		{"instance", scheduler.InstanceView{}, []string{"name", "instance_id", "node", "state", "health", "reason", "restarts", "last_exit", "epoch", "connection"}},
		{"ledger audit", ledger.Report{}, []string{"ok", "entries", "receipts", "root", "problems", "unbilled", "late"}},
		{"status.partitions.limits", partition.Limits{}, []string{"enforced", "cgroup", "cpu", "memory", "users", "summary"}},
		{"status.sandbox", partition.SandboxStatus{}, []string{"landlock_abi", "fs", "bind_ports", "scoped_signals", "private_tmp", "private_ipc", "disk_quota", "disk_metered", "rlimits", "promises"}},
	} {
		got := keysOf(t, c.v, "")
		for _, k := range c.want {
			if !slices.Contains(got, k) {
				t.Errorf("%s --json: no field %q (has %v)", c.name, k, got)
			}
		}
	}
}

// roundTrip marshals v and decodes it into a new value of its type.
func roundTrip[T any](t *testing.T, v T) T {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%T does not decode from its own JSON %s: %v", v, b, err)
	}
	return out
}

// The typed client decodes what the node encodes: every answer type the
// CLI and the dashboard's poll read reads back from its own JSON.
func TestAnswersDecodeTheirOwnJSON(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	roundTrip(t, Status{Addrs: []string{"/ip4/127.0.0.1/tcp/1"}, Content: &ContentStatus{ContentTransfer: &ContentTransfer{BytesServed: 1}, Transfer: true},
		Ledger: &LedgerStatus{Entries: 1, Root: "ab", Slice: "1m0s"}, Limits: map[string]any{"conn_low": 1.0}, Market: &MarketStatus{Sent: 1},
		Partitions: &PartitionsStatus{Free: 1, Total: 2}, Sandbox: partition.SandboxStatus{Reasons: []string{"r"}}})
	roundTrip(t, []Peer{{PeerID: "p", State: "alive", Advert: Advert{CPUMillis: 1, Labels: map[string]string{"a": "b"}, NoBids: true}}})
	roundTrip(t, Grid{Grid: "lab", Members: []string{"p"}, Revoked: []string{}})
	roundTrip(t, []partition.PartitionStatus{{Index: 1, InstanceID: "i", State: "started", Phase: "running"}})
	roundTrip(t, []scheduler.HostedView{{Name: "n", InstanceID: "i", Epoch: 2, State: scheduler.StateStarted, Price: 3, Connection: map[string]string{"url": "u"}}})
	roundTrip(t, []scheduler.AuctionView{{ID: "a", OpenedAt: now, ClosedAt: &now, Bids: []scheduler.BidView{{Node: "n", Price: 1}}, Declines: []scheduler.DeclineView{{Node: "m", Reason: "r"}}}})
	roundTrip(t, []scheduler.InstanceView{{Name: "n", State: scheduler.StateStarted, Health: scheduler.HealthOK}})
	roundTrip(t, LedgerHeads{Root: "ab", Entries: 1, Heads: []ledger.Head{{Author: testPeer(t), Contig: 1, Max: 1, Count: 1}}})
	rc, err := recipes.Parse("web.toml", []byte("name = \"web\"\nversion = \"1\"\n[params.port]\ntype = \"int\"\ndefault = 80\n[types.default]\n[[types.default.processes]]\nname = \"main\"\ncommand = \"/bin/true\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, PublishedRecipe{Document: rc.Doc(), Provided: true}); got.CID != rc.CID().String() || got.Recipe == nil || got.Recipe.Name != "web" {
		t.Errorf("published recipe %+v does not read back as %s", got, rc.CID())
	}
	roundTrip(t, []LedgerEntry{{CID: "c", Kind: "grant", Time: now, Body: json.RawMessage(`{"to":"p"}`)}})
}

func testPeer(t *testing.T) peer.ID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
