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

// netMeter counts the bytes each partition's processes send and receive,
// with nftables rules in a table of this node's own (`inet weft_<12 hex of
// the data dir>`):
//
//   - sent: an output chain counts every IP packet (IPv4 and IPv6, TCP, UDP
//     and the rest, headers included) a process running as the partition's
//     Unix user sends, to the network or to loopback (`meta skuid UID
//     counter`);
//   - received: the same chain marks the connection-tracking entry of each
//     such packet with the partition's connection mark, unless the entry is
//     marked already (by another partition, node or program), and an input
//     chain counts the packets arriving on entries that carry a
//     partition's mark in the direction towards it: replies on connections
//     it opened, and packets on connections it accepted once it has
//     answered. An input hook cannot match the socket owner directly: the
//     socket is looked up after it, except for some established TCP.
//
// What is received but not counted: the packets of an inbound flow before
// the partition's first answer (a TCP SYN; UDP datagrams it never
// answers), and, on a connection between two partitions of this host
// (loopback, this node's or another's), the accepting side's: the
// connection is marked by the partition that opened it, whose sent and
// received bytes both count, while the accepting partition's sent bytes
// count. A byte is thus counted at most once as sent and at most once as
// received, never as received by its own sender.
//
// The connection mark is connMarkTag in the top byte, the direction bit,
// then the UID: Unix users are unique on a host, so marks of two nodes'
// partitions never collide; UIDs of 2^23 and above leave received bytes
// unmetered. It works only as root with nft installed and one Unix user per
// partition; otherwise net_bytes stays -1 ("unmetered"). Without connection
// tracking (the nft rules with ct fail to load) only sent bytes count.
type netMeter struct {
	table string
	nft   string
	// received is true when received bytes are counted too.
	received bool
	// timeout bounds each nft run (0: netMeterTimeout); refresh is how
	// long one read serves (0: netMeterRefresh).
	timeout, refresh time.Duration

	mu   sync.Mutex
	last map[int]netCount // partition index -> bytes, from the last read
	at   time.Time
}

// netCount is one partition's counters, in bytes.
type netCount struct{ sent, received int64 }

// NetTable is the name of the nftables table (family inet) that meters
// the partitions of the node with the absolute data dir dataDir:
// weft_<12 hex of the dir's SHA-256>.
func NetTable(dataDir string) string {
	sum := sha256.Sum256([]byte(dataDir))
	return "weft_" + hex.EncodeToString(sum[:6])
}

// netMeterRefresh is how stale a read may be before nft is run again (one
// exec serves every partition sampled in a round).
const netMeterRefresh = 500 * time.Millisecond

// netMeterTimeout bounds one run of nft.
const netMeterTimeout = 5 * time.Second

// Connection marks: connMarkTag<<24 | direction<<23 | UID, where direction
// is 0 when the partition opened the connection (it receives the reply
// direction) and 1 when it accepted it (it receives the original one).
const (
	connMarkTag      = 0x57
	connMarkAccepted = 1 << 23
	connMarkMaxUID   = 1<<23 - 1
)

// connMark is the connection mark of uid's connections (accepted: those
// it answered rather than opened).
func connMark(uid int, accepted bool) uint32 {
	m := uint32(connMarkTag)<<24 | uint32(uid)
	if accepted {
		m |= connMarkAccepted
	}
	return m
}

// nftNetRules is the table's ruleset for users (index = partition): sent
// counters, and with received the connection marks and the received
// counters.
func nftNetRules(table string, users []account, received bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n\tchain out {\n\t\ttype filter hook output priority 0; policy accept;\n", table, table, table)
	for i, u := range users {
		fmt.Fprintf(&b, "\t\tmeta skuid %d counter comment \"p%d\"\n", u.UID, i)
		if received {
			fmt.Fprintf(&b, "\t\tmeta skuid %d ct mark 0 ct direction original ct mark set 0x%08x\n", u.UID, connMark(u.UID, false))
			fmt.Fprintf(&b, "\t\tmeta skuid %d ct mark 0 ct direction reply ct mark set 0x%08x\n", u.UID, connMark(u.UID, true))
		}
	}
	b.WriteString("\t}\n")
	if received {
		// Packets of connections no partition marked leave at once.
		fmt.Fprintf(&b, "\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tct mark and 0xff000000 != 0x%08x accept\n", uint32(connMarkTag)<<24)
		for i, u := range users {
			fmt.Fprintf(&b, "\t\tct direction reply ct mark 0x%08x counter comment \"r%d\"\n", connMark(u.UID, false), i)
			fmt.Fprintf(&b, "\t\tct direction original ct mark 0x%08x counter comment \"r%d\"\n", connMark(u.UID, true), i)
		}
		b.WriteString("\t}\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// newNetMeter sets the counters up for users (index = partition), or
// returns nil and why not. The second result says what is metered or why
// nothing is.
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
	n := &netMeter{table: NetTable(dataDir), nft: nft, received: true}
	why := ""
	for _, u := range users {
		if u.UID < 0 || u.UID > connMarkMaxUID {
			n.received = false
			why = fmt.Sprintf("user %s's UID %d does not fit a connection mark", u.Name, u.UID)
		}
	}
	if n.received {
		out, err := n.run(nftNetRules(n.table, users, true), "-f", "-")
		if err == nil {
			return n, "net: bytes sent and received by each partition's user, counted by nftables (received: through connection tracking)"
		}
		n.received = false
		why = fmt.Sprintf("nft with connection tracking: %v: %s", err, strings.TrimSpace(string(out)))
	}
	if out, err := n.run(nftNetRules(n.table, users, false), "-f", "-"); err != nil {
		return nil, fmt.Sprintf("net: not metered (nft: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	return n, "net: bytes sent by each partition's user, counted by nftables; received bytes are not (" + why + ")"
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

// bytes returns the bytes sent and received so far by partition idx's
// user (-1 when unknown), at now (the manager's clock). Reads are shared
// for netMeterRefresh, failed
// ones too: a failing or hanging nft runs at most once per refresh, not
// once per partition sampled, and the counters last read stand meanwhile
// (they only grow; -1 would read as unmetered mid-series).
func (n *netMeter) bytes(idx int, now time.Time) int64 {
	c, ok := n.counts(idx, now)
	if !ok {
		return -1
	}
	return c.sent + c.received
}

// counts returns partition idx's counters from a read at most
// netMeterRefresh older than now (false when unknown).
func (n *netMeter) counts(idx int, now time.Time) (netCount, bool) {
	if n == nil {
		return netCount{}, false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	every := n.refresh
	if every <= 0 {
		every = netMeterRefresh
	}
	if n.at.IsZero() || now.Sub(n.at) > every || now.Before(n.at) {
		if got := n.read(); got != nil {
			n.last = got
		}
		n.at = now
	}
	c, ok := n.last[idx]
	return c, ok
}

// read lists the table's counters: partition index -> bytes.
func (n *netMeter) read() map[int]netCount {
	out, err := n.run("", "-j", "list", "table", "inet", n.table)
	if err != nil {
		return nil
	}
	return parseNftCounters(out)
}

// parseNftCounters reads `nft -j list table` output: the bytes of the
// rules commented "pN" (sent by partition N) and "rN" (received by it;
// several rules with one comment add up). A partition has an entry once
// its sent counter is listed.
func parseNftCounters(b []byte) map[int]netCount {
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
	sent, received := map[int]int64{}, map[int]int64{}
	for _, o := range doc.Nftables {
		if o.Rule == nil || len(o.Rule.Comment) < 2 {
			continue
		}
		var into map[int]int64
		switch o.Rule.Comment[0] {
		case 'p':
			into = sent
		case 'r':
			into = received
		default:
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
				into[idx] += c.Counter.Bytes
			}
		}
	}
	res := map[int]netCount{}
	for idx, v := range sent {
		res[idx] = netCount{sent: v, received: received[idx]}
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
