package partition

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// netMeter counts the bytes each partition's processes send, with one
// nftables counter per partition Unix user (`meta skuid UID counter`) in
// an output chain of a table of this node's own. What is counted: every
// IP packet (IPv4 and IPv6, TCP, UDP and the rest, headers included) that
// a process running as the partition's user sends, to the network or to
// loopback; not what it receives (the owner of an incoming packet is not
// known before the socket lookup, so an input hook cannot match it
// reliably). It works only as root with nft installed and one Unix user
// per partition; otherwise net_bytes stays -1 ("unmetered").
type netMeter struct {
	table string
	nft   string
	// timeout bounds each nft run (0: netMeterTimeout); refresh is how
	// long one read serves (0: netMeterRefresh).
	timeout, refresh time.Duration

	mu   sync.Mutex
	last map[int]int64 // partition index -> bytes, from the last read
	at   time.Time
}

// netMeterRefresh is how stale a read may be before nft is run again (one
// exec serves every partition sampled in a round).
const netMeterRefresh = 500 * time.Millisecond

// netMeterTimeout bounds one run of nft.
const netMeterTimeout = 5 * time.Second

// newNetMeter sets the counters up for users (index = partition), or
// returns nil and why not.
func newNetMeter(dataDir string, users []account) (*netMeter, string) {
	if os.Geteuid() != 0 {
		return nil, "net: not metered (the node does not run as root)"
	}
	if len(users) == 0 || !users[0].set() {
		return nil, "net: not metered (partitions share the node's Unix user)"
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		return nil, "net: not metered (no nft command)"
	}
	sum := sha256.Sum256([]byte(dataDir))
	n := &netMeter{table: "weft_" + hex.EncodeToString(sum[:6]), nft: nft}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n\tchain out {\n\t\ttype filter hook output priority 0; policy accept;\n", n.table, n.table, n.table)
	for i, u := range users {
		fmt.Fprintf(&b, "\t\tmeta skuid %d counter comment \"p%d\"\n", u.UID, i)
	}
	b.WriteString("\t}\n}\n")
	if out, err := n.run(b.String(), "-f", "-"); err != nil {
		return nil, fmt.Sprintf("net: not metered (nft: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	return n, "net: bytes sent by each partition's user, counted by nftables (received bytes are not)"
}

func (n *netMeter) run(stdin string, args ...string) ([]byte, error) {
	d := n.timeout
	if d <= 0 {
		d = netMeterTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.nft, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return cmd.CombinedOutput()
}

// bytes returns the bytes sent so far by partition idx's user (-1 when
// unknown). Reads are shared for netMeterRefresh, failed ones too: a
// failing or hanging nft runs at most once per refresh, not once per
// partition sampled, and the counters last read stand meanwhile (they
// only grow; -1 would read as unmetered mid-series).
func (n *netMeter) bytes(idx int) int64 {
	if n == nil {
		return -1
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	every := n.refresh
	if every <= 0 {
		every = netMeterRefresh
	}
	if n.at.IsZero() || time.Since(n.at) > every {
		if got := n.read(); got != nil {
			n.last = got
		}
		n.at = time.Now()
	}
	if v, ok := n.last[idx]; ok {
		return v
	}
	return -1
}

// read lists the table's counters: partition index -> bytes.
func (n *netMeter) read() map[int]int64 {
	out, err := n.run("", "-j", "list", "table", "inet", n.table)
	if err != nil {
		return nil
	}
	return parseNftCounters(out)
}

// parseNftCounters reads `nft -j list table` output: the bytes of each
// rule commented "pN".
func parseNftCounters(b []byte) map[int]int64 {
	var doc struct {
		Nftables []struct {
			Rule *struct {
				Comment string            `json:"comment"`
				Expr    []json.RawMessage `json:"expr"`
			} `json:"rule"`
		} `json:"nftables"`
	}
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return nil
	}
	res := map[int]int64{}
	for _, o := range doc.Nftables {
		if o.Rule == nil || !strings.HasPrefix(o.Rule.Comment, "p") {
			continue
		}
		idx, err := strconv.Atoi(o.Rule.Comment[1:])
		if err != nil || idx < 0 {
			continue
		}
		for _, e := range o.Rule.Expr {
			var c struct {
				Counter *struct {
					Bytes int64 `json:"bytes"`
				} `json:"counter"`
			}
			if json.Unmarshal(e, &c) == nil && c.Counter != nil && c.Counter.Bytes >= 0 {
				res[idx] = c.Counter.Bytes
			}
		}
	}
	return res
}

// close removes the table.
func (n *netMeter) close() {
	if n == nil {
		return
	}
	_, _ = n.run("", "delete", "table", "inet", n.table)
}
