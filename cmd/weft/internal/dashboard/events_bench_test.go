package dashboard_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/dashboard"
)

// BenchmarkFingerprint measures the per-poll cost of one watched route: a
// 200-member /v1/peers answer, re-encoded without its rtt_ms fields.
func BenchmarkFingerprint(b *testing.B) {
	peers := make([]map[string]any, 200)
	for i := range peers {
		peers[i] = map[string]any{
			"peer_id": fmt.Sprintf("12D3KooW%044d", i), "state": "alive", "rtt_ms": 0.5,
			"addrs":  []string{fmt.Sprintf("/ip4/10.0.%d.%d/tcp/4001", i/250, i%250)},
			"advert": map[string]any{"cpu_millis": 4000, "memory_bytes": 8 << 30, "disk_bytes": 100 << 30, "free_partitions": 4, "labels": map[string]string{"region": "eu"}},
		}
	}
	body, _ := json.Marshal(peers)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		dashboard.Fingerprint(body, "rtt_ms")
	}
}

// BenchmarkNotify measures one Notify with no open stream (the cost a
// subsystem pays when no page is open).
func BenchmarkNotify(b *testing.B) {
	br, err := dashboard.NewBroker(dashboard.DefaultConfig(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		br.Notify(dashboard.TopicLedger)
	}
}
