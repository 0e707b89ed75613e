package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/partition"
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
