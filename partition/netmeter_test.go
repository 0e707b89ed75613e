package partition

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseNftCounters(t *testing.T) {
	out := []byte(`{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "weft_x"}},
{"chain": {"family": "inet", "table": "weft_x", "name": "out"}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "out", "handle": 2, "comment": "p0", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 1001}}, {"counter": {"packets": 3, "bytes": 180}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "out", "handle": 3, "comment": "p1", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 1002}}, {"counter": {"packets": 0, "bytes": 0}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "out", "handle": 4, "comment": "other", "expr": [{"counter": {"packets": 1, "bytes": 9}}]}}]}`)
	got := parseNftCounters(out)
	if len(got) != 2 || got[0] != 180 || got[1] != 0 {
		t.Fatalf("counters %v", got)
	}
	if parseNftCounters([]byte("not json")) != nil {
		t.Fatal("garbage parsed")
	}
}

// As root with nft, the bytes a partition's user sends are counted (here
// the test's own user stands for partition 0's).
func TestNetMeterCountsBytesSent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("no nft")
	}
	n, why := newNetMeter(t.TempDir(), []account{{Name: "root", UID: os.Geteuid()}})
	if n == nil {
		t.Skipf("no nftables here: %s", why)
	}
	defer n.close()
	before := n.read()[0]
	c, err := net.Dial("udp", "127.0.0.1:9") // discard; nothing needs to listen
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 1000)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, _ = c.Write(payload)
		if got := n.read()[0]; got-before >= 10*1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counter went from %d to %d after sending", before, n.read()[0])
		}
	}
	if n.bytes(0) < before || n.bytes(7) != -1 {
		t.Fatalf("bytes(0) %d (before %d), bytes(7) %d", n.bytes(0), before, n.bytes(7))
	}
}

// A failing nft runs once per refresh, not on every read, and the
// counters read last stand while it fails.
func TestNetMeterFailedReadShared(t *testing.T) {
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	fake := filepath.Join(dir, "nft")
	// The first run lists partition 0's counter; later runs fail.
	script := fmt.Sprintf(`#!/bin/sh
echo run >> %[1]s
if [ "$(wc -l < %[1]s)" -eq 1 ]; then
  echo '{"nftables": [{"rule": {"comment": "p0", "expr": [{"counter": {"packets": 3, "bytes": 180}}]}}]}'
  exit 0
fi
exit 1
`, count)
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runs := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "\n")
	}
	n := &netMeter{table: "weft_fake", nft: fake, refresh: time.Nanosecond}
	if got := n.bytes(0); got != 180 {
		t.Fatalf("first read: %d, want 180", got)
	}
	if got := n.bytes(0); got != 180 || runs() != 2 {
		t.Fatalf("after a failed read: %d (want the last counter, 180), nft ran %d times (want 2)", got, runs())
	}
	n.refresh = time.Hour
	for range 5 {
		n.at = time.Time{}.Add(time.Nanosecond) // long ago: refresh once
		_ = n.bytes(0)
		_ = n.bytes(1)
		_ = n.bytes(0)
	}
	if r := runs(); r != 7 {
		t.Fatalf("nft ran %d times for 5 refreshes of 3 reads each after 2 runs, want 7 (a failed read is shared too)", r)
	}
}
