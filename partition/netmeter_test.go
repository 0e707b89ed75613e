package partition

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/partition/metering"
)

func TestParseNftCounters(t *testing.T) {
	out := []byte(`{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "weft_x"}},
{"chain": {"family": "inet", "table": "weft_x", "name": "out"}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "out", "handle": 2, "comment": "p0", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 1001}}, {"counter": {"packets": 3, "bytes": 180}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "out", "handle": 3, "comment": "p1", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "skuid"}}, "right": 1002}}, {"counter": {"packets": 0, "bytes": 0}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "in", "handle": 7, "comment": "r0", "expr": [{"counter": {"packets": 2, "bytes": 100}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "in", "handle": 8, "comment": "r0", "expr": [{"counter": {"packets": 1, "bytes": 20}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "in", "handle": 9, "comment": "r5", "expr": [{"counter": {"packets": 1, "bytes": 20}}]}},
{"rule": {"family": "inet", "table": "weft_x", "chain": "out", "handle": 4, "comment": "other", "expr": [{"counter": {"packets": 1, "bytes": 9}}]}}]}`)
	got := parseNftCounters(out)
	if len(got) != 2 || got[0] != (netCount{sent: 180, received: 120}) || got[1] != (netCount{}) {
		t.Fatalf("counters %v", got)
	}
	if parseNftCounters([]byte("not json")) != nil {
		t.Fatal("garbage parsed")
	}
}

// The rules mark connections with the partition user's own marks, never
// over another's mark, and count received packets by mark and direction.
func TestNftNetRules(t *testing.T) {
	users := []account{{Name: "a", UID: 1001}, {Name: "b", UID: 70000}}
	rules := nftNetRules("weft_x", users, true)
	for _, want := range []string{
		`meta skuid 1001 counter comment "p0"`,
		`meta skuid 1001 ct mark 0 ct direction original ct mark set 0x570003e9`,
		`meta skuid 70000 ct mark 0 ct direction reply ct mark set 0x57811170`,
		`ct mark and 0xff000000 != 0x57000000 accept`,
		`ct direction reply ct mark 0x570003e9 counter comment "r0"`,
		`ct direction original ct mark 0x57811170 counter comment "r1"`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	if sent := nftNetRules("weft_x", users, false); strings.Contains(sent, "ct ") || strings.Contains(sent, "chain in") {
		t.Errorf("sent-only rules use connection tracking:\n%s", sent)
	}
}

// netPeer starts the test binary as a helper that switches to uid and
// serves (addr "") or dials addr, sends send bytes and reads recv; it
// returns the process and, for a server, its address.
func netPeer(t *testing.T, uid int, addr string, send, recv int) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], strconv.Itoa(uid), addr, strconv.Itoa(send), strconv.Itoa(recv))
	cmd.Env = append(os.Environ(), "WEFT_PARTITION_HELPER=netpeer")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if addr != "" {
		return cmd, addr
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("server helper: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

// helperNetPeer UID ADDR SEND RECV: see netPeer.
func helperNetPeer(args []string) {
	uid, _ := strconv.Atoi(args[0])
	send, _ := strconv.Atoi(args[2])
	recv, _ := strconv.Atoi(args[3])
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "netpeer:", err)
		os.Exit(1)
	}
	if err := syscall.Setgid(uid); err != nil {
		fail(err)
	}
	if err := syscall.Setuid(uid); err != nil {
		fail(err)
	}
	var c net.Conn
	if args[1] == "" {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fail(err)
		}
		fmt.Println(l.Addr())
		if c, err = l.Accept(); err != nil {
			fail(err)
		}
		if _, err := io.CopyN(io.Discard, c, int64(recv)); err != nil {
			fail(err)
		}
		if _, err := c.Write(make([]byte, send)); err != nil {
			fail(err)
		}
	} else {
		var err error
		if c, err = net.Dial("tcp", args[1]); err != nil {
			fail(err)
		}
		if _, err := c.Write(make([]byte, send)); err != nil {
			fail(err)
		}
		if _, err := io.CopyN(io.Discard, c, int64(recv)); err != nil {
			fail(err)
		}
	}
	_ = c.Close()
	os.Exit(0)
}

// As root with nft, real processes of two partition users exchange data
// over loopback, and a process outside the partitions (the test, as root)
// talks to one of them. Each partition's sent bytes count; its received
// bytes count on the connections it opened, and on those it accepted from
// outside the partitions, never its own sent bytes as received; on the
// connection between the two partitions, the accepting one's received
// bytes are not counted (the opener owns the connection).
func TestNetMeterCountsSentAndReceived(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("no nft")
	}
	// UIDs no one else uses (they need no account), distinct per run.
	base := 6_000_000 + (os.Getpid()%100_000)*2
	users := []account{{Name: "netA", UID: base}, {Name: "netB", UID: base + 1}}
	n, why := newNetMeter(t.TempDir(), users)
	if n == nil {
		t.Skipf("no nftables here: %s", why)
	}
	defer n.close()
	if !n.received {
		t.Skipf("received bytes not metered here: %s", why)
	}
	const (
		toB   = 300_000 // A → B
		fromB = 40_000  // B → A
		toB2  = 120_000 // outsider → B
		from2 = 10_000  // B → outsider
	)
	// Partition 1 (B) serves; partition 0 (A) opens the connection.
	srv, addr := netPeer(t, users[1].UID, "", fromB, toB)
	cli, _ := netPeer(t, users[0].UID, addr, toB, fromB)
	if err := cli.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
	if err := srv.Wait(); err != nil {
		t.Fatalf("server: %v", err)
	}
	// The outsider opens a connection to B.
	srv, addr = netPeer(t, users[1].UID, "", from2, toB2)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, toB2)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, c, from2); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := srv.Wait(); err != nil {
		t.Fatalf("server: %v", err)
	}
	got := n.read()
	a, b := got[0], got[1]
	t.Logf("A %+v, B %+v", a, b)
	// Headers add a little: allow a quarter plus 16 KiB.
	near := func(v, want int64) bool { return v >= want && v <= want+want/4+16<<10 }
	if !near(a.sent, toB) || !near(a.received, fromB) {
		t.Errorf("A sent %d (want about %d), received %d (want about %d, never its own %d)", a.sent, toB, a.received, fromB, toB)
	}
	if !near(b.sent, fromB+from2) {
		t.Errorf("B sent %d, want about %d", b.sent, fromB+from2)
	}
	if !near(b.received, toB2) {
		t.Errorf("B received %d, want about %d (the outsider's bytes, not A's %d)", b.received, toB2, toB)
	}
	if n.bytes(0, time.Now()) != a.sent+a.received || n.bytes(7, time.Now()) != -1 {
		t.Errorf("bytes(0) %d, want %d; bytes(7) %d", n.bytes(0, time.Now()), a.sent+a.received, n.bytes(7, time.Now()))
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
	n := &netMeter{table: "weft_fake", nft: fake, refresh: time.Second}
	now := time.Unix(1_000_000, 0)
	if got := n.bytes(0, now); got != 180 {
		t.Fatalf("first read: %d, want 180", got)
	}
	now = now.Add(2 * time.Second) // past the refresh
	if got := n.bytes(0, now); got != 180 || runs() != 2 {
		t.Fatalf("after a failed read: %d (want the last counter, 180), nft ran %d times (want 2)", got, runs())
	}
	for range 5 {
		now = now.Add(2 * time.Second) // one refresh for the round's three reads
		_ = n.bytes(0, now)
		_ = n.bytes(1, now.Add(time.Second/2))
		_ = n.bytes(0, now.Add(time.Second))
	}
	if r := runs(); r != 7 {
		t.Fatalf("nft ran %d times for 5 refreshes of 3 reads each after 2 runs, want 7 (a failed read is shared too)", r)
	}
}

// Through a real node's partition, as root with nft: the partition's HTTP
// promise (run as its user, in its sandbox) fetches 256 KiB from a server
// outside the partitions every 200 ms, and the instance's metered
// net_bytes grow by what it received, not only by its small requests.
func TestPartitionNetBytesCountReceived(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("partition users need the node to run as root; not root here")
	}
	for _, c := range []string{"useradd", "nft"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("no %s on this host", c)
		}
	}
	const body = 256 << 10
	var served atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(make([]byte, body))
		served.Add(1)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	dir := t.TempDir()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711) // t.TempDir's parents are 0700
	}
	cfg := testConfig(dir)
	cfg.PortBase = freePortBase(t, 6)
	cfg.Users = true
	m := startManager(t, cfg)
	defer m.Close()
	if l := m.Limits(); !l.NetReceived {
		t.Skipf("received bytes are not metered here: %v", l.Reasons)
	}
	rc := mustParse(fmt.Sprintf(`
name = "fetcher"
version = "1"
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sleep"
args = ["1000"]
[[types.default.promises]]
name = "fetch"
kind = "http"
target = "http://%s/"
period = "200ms"
timeout = "200ms"
`, ln.Addr()))
	from := time.Now()
	if err := m.Apply(InstanceSpec{ID: "f", Recipe: rc, State: StateStarted}); err != nil {
		t.Fatal(err)
	}
	waitPhase(t, m, "f", PhaseRunning)
	var u metering.Usage
	waitFor(t, "four responses metered", func() bool {
		u, err = m.Usage("f", from, time.Now())
		return err == nil && u.NetBytes >= 4*body
	})
	// Never more than what the server sent (headers and requests add a
	// little), read after the usage.
	if n := served.Load(); u.NetBytes > n*(body+body/10)+64<<10 {
		t.Fatalf("net_bytes %d after %d responses of %d bytes", u.NetBytes, n, body)
	}
	t.Logf("net_bytes %d after %d responses of %d bytes", u.NetBytes, served.Load(), body)
}
