package partition

import (
	"net"
	"os"
	"os/exec"
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
