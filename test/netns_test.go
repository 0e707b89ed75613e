//go:build linux

package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests on a real network: every node in its own network namespace with its
// own address, plugged by a veth cable into a bridge that lives in a
// "switch" namespace. Nothing touches the host's own network. Cables can be
// cut (link down) and links made slow and lossy (tc netem).
//
// They need root and iproute2 (CI has both); elsewhere they skip, except
// under CI, where a missing prerequisite fails.

// netLab is a switch namespace and the node namespaces plugged into it.
type netLab struct {
	t      testing.TB
	sw     string // switch namespace
	prefix string
	hosts  []*labHost
	bin    string
	extra  []string // more namespaces to remove (NAT routers)
}

// labHost is one namespace with one weft node.
type labHost struct {
	procLog
	name   string // namespace
	ip     string
	inner  string // veth end inside the host namespace
	outer  string // veth end in the switch namespace
	dir    string
	cmd    *exec.Cmd
	peerID string
	addr   string
	down   bool
}

// labSkip skips, or fails under CI, where the lab cannot be built.
func labSkip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set but %s (network namespace tests need root and iproute2)", why)
	}
	t.Skip(why)
}

func newNetLab(t testing.TB, n int) *netLab {
	t.Helper()
	bin := os.Getenv("WEFT_BIN")
	if bin == "" {
		t.Skip("WEFT_BIN is not set: run 'make test' (it builds bin/weft and sets WEFT_BIN)")
	}
	if os.Geteuid() != 0 {
		labSkip(t, "not running as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		labSkip(t, "no ip command (iproute2)")
	}
	id := os.Getpid() % 100000
	lab := &netLab{t: t, prefix: fmt.Sprintf("wl%05d", id), bin: bin}
	lab.sw = lab.prefix + "sw"
	t.Cleanup(lab.close)
	if err := lab.ip("netns", "add", lab.sw); err != nil {
		labSkip(t, "cannot create a network namespace: "+err.Error())
	}
	lab.must("-n", lab.sw, "link", "set", "lo", "up")
	lab.must("-n", lab.sw, "link", "add", "br0", "type", "bridge")
	lab.must("-n", lab.sw, "link", "set", "br0", "up")
	for i := range n {
		h := &labHost{
			name:  fmt.Sprintf("%sn%d", lab.prefix, i),
			ip:    fmt.Sprintf("10.231.0.%d", i+10),
			inner: fmt.Sprintf("v%05d%da", id, i),
			outer: fmt.Sprintf("v%05d%db", id, i),
			dir:   t.TempDir(),
		}
		lab.hosts = append(lab.hosts, h)
		lab.must("netns", "add", h.name)
		lab.must("-n", h.name, "link", "set", "lo", "up")
		lab.must("link", "add", h.inner, "type", "veth", "peer", "name", h.outer)
		lab.must("link", "set", h.inner, "netns", h.name)
		lab.must("link", "set", h.outer, "netns", lab.sw)
		lab.must("-n", h.name, "addr", "add", h.ip+"/24", "dev", h.inner)
		lab.must("-n", h.name, "link", "set", h.inner, "up")
		lab.must("-n", lab.sw, "link", "set", h.outer, "master", "br0")
		lab.must("-n", lab.sw, "link", "set", h.outer, "up")
		// Partitions run as their own users when the node runs as root.
		for d := h.dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
			if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
				_ = os.Chmod(d, fi.Mode().Perm()|0o011)
			}
		}
	}
	return lab
}

func (lab *netLab) ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (lab *netLab) must(args ...string) {
	lab.t.Helper()
	if err := lab.ip(args...); err != nil {
		lab.t.Fatal(err)
	}
}

// close stops every node and removes the namespaces (which removes the
// cables and the bridge with them).
func (lab *netLab) close() {
	for _, h := range lab.hosts {
		if h.cmd != nil && h.cmd.Process != nil && h.cmd.ProcessState == nil {
			stopGently(h.cmd)
		}
		killUnder(h.dir)
		if lab.t.Failed() && h.cmd != nil {
			lab.t.Logf("node in %s (%s) log:\n%s", h.name, h.peerID, lastN(h.logText(), 60))
		}
	}
	for _, h := range lab.hosts {
		_ = lab.ip("netns", "del", h.name)
	}
	for _, ns := range lab.extra {
		_ = lab.ip("netns", "del", ns)
	}
	_ = lab.ip("netns", "del", lab.sw)
}

// start runs a node in h's namespace, listening on its address, with its
// partitions' connection parameters naming that address.
func (lab *netLab) start(h *labHost, args ...string) {
	t := lab.t
	t.Helper()
	cfg := filepath.Join(h.dir, "weft.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "[partitions]\nhost = %q\n", h.ip), 0o644); err != nil {
		t.Fatal(err)
	}
	all := []string{"netns", "exec", h.name, lab.bin, "--data-dir", h.dir, "node", "--config", cfg,
		"--api", "127.0.0.1:0", "--listen", "/ip4/" + h.ip + "/tcp/4001", "--partitions", "2"}
	h.cmd = exec.Command("ip", append(all, args...)...)
	h.cmd.Stdout, h.cmd.Stderr = h, h
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	mktPoll(t, 30*time.Second, func() error {
		var st struct {
			PeerID string   `json:"peer_id"`
			Addrs  []string `json:"addrs"`
		}
		if err := lab.json(h, &st, "status"); err != nil {
			return err
		}
		for _, a := range st.Addrs {
			if strings.Contains(a, "/ip4/"+h.ip+"/") {
				h.peerID, h.addr = st.PeerID, a
				return nil
			}
		}
		return fmt.Errorf("no address on %s yet: %v", h.ip, st.Addrs)
	})
}

// weft runs a client command inside h's namespace (the API is on its loopback).
func (lab *netLab) weft(h *labHost, args ...string) ([]byte, error) {
	return lab.weftWithin(h, 60*time.Second, args...)
}

// weftWithin is weft, the command killed after d.
func (lab *netLab) weftWithin(h *labHost, d time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	all := append([]string{"netns", "exec", h.name, lab.bin, "--data-dir", h.dir}, args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", all...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("weft %s in %s: %v: %s", strings.Join(args, " "), h.name, err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// json runs a client command with --json and decodes its output into v.
func (lab *netLab) json(h *labHost, v any, args ...string) error {
	out, err := lab.weft(h, append(args, "--json")...)
	if err != nil {
		return err
	}
	return json.Unmarshal(out, v)
}

// members is how many members h sees alive.
func (lab *netLab) members(h *labHost) (int, error) {
	var st struct {
		Members int `json:"members"`
	}
	err := lab.json(h, &st, "status")
	return st.Members, err
}

// cut unplugs h's cable at the switch; plug puts it back.
func (lab *netLab) cut(h *labHost) {
	lab.must("-n", lab.sw, "link", "set", h.outer, "down")
	h.down = true
}

func (lab *netLab) plug(h *labHost) {
	lab.must("-n", lab.sw, "link", "set", h.outer, "up")
	h.down = false
}

// netem makes h's link slow and lossy, e.g. "delay", "10ms", "loss", "2%".
// It reports false, and the test goes on over clean links, where the
// kernel has no netem qdisc (some kernels are built without sch_netem).
func (lab *netLab) netem(h *labHost, args ...string) bool {
	lab.t.Helper()
	all := append([]string{"netns", "exec", h.name, "tc", "qdisc", "replace", "dev", h.inner, "root", "netem"}, args...)
	out, err := exec.Command("ip", all...).CombinedOutput()
	switch {
	case err == nil:
		return true
	case strings.Contains(string(out), "qdisc kind is unknown"):
		lab.t.Logf("this kernel has no netem qdisc: links stay clean (%s)", strings.TrimSpace(string(out)))
		return false
	}
	lab.t.Fatalf("tc %s: %v: %s", strings.Join(all[3:], " "), err, out)
	return false
}

// getFrom fetches url from inside namespace ns: the socket is created by a
// thread switched into ns (and that thread is discarded afterwards).
func getFrom(ns, url string) (string, error) {
	type result struct {
		body string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		f, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		// Dial on this goroutine, so the socket is made in ns.
		u := strings.TrimPrefix(url, "http://")
		hostport := u[:strings.IndexByte(u+"/", '/')]
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostport)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer conn.Close()
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }, DisableKeepAlives: true}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		ch <- result{string(b), err}
	}()
	r := <-ch
	return r.body, r.err
}

// Two nodes in separate namespaces on one LAN find each other by mDNS,
// with no bootstrap address.
func TestNetnsMDNSDiscovery(t *testing.T) {
	lab := newNetLab(t, 2)
	for _, h := range lab.hosts {
		lab.start(h, "--preset", "local", "--mdns", "on", "--log-level", "debug")
	}
	mktPoll(t, 45*time.Second, func() error {
		for _, h := range lab.hosts {
			n, err := lab.members(h)
			if err != nil {
				return err
			}
			if n != 2 {
				return fmt.Errorf("%s sees %d members, want 2", h.name, n)
			}
		}
		return nil
	})
}

// A web server's host loses its cable, on slow and lossy links where the
// kernel has netem: the requester
// re-places the instance on the other host and reaches the page there;
// when the cable is back the old host finds the newer contract and stops
// its copy, and every node's ledger converges to one root.
func TestNetnsCutCableFailover(t *testing.T) {
	lab := newNetLab(t, 3)
	req, hosts := lab.hosts[0], lab.hosts[1:]
	for _, h := range lab.hosts {
		if !lab.netem(h, "delay", "5ms", "1ms", "loss", "1%") {
			break
		}
	}
	lab.start(req, "--preset", "local", "--mdns", "off", "--slice", "1s")
	for _, h := range hosts {
		lab.start(h, "--preset", "local", "--mdns", "off", "--slice", "1s", "--label", "role=host", "--bootstrap", req.addr)
	}
	mktPoll(t, 45*time.Second, func() error {
		for _, h := range lab.hosts {
			if n, err := lab.members(h); err != nil || n != 3 {
				return fmt.Errorf("%s sees %d members (%v), want 3", h.name, n, err)
			}
		}
		return nil
	})

	web := repoFile(t, "recipes/examples/webserver.toml")
	var in mktInstance
	if err := lab.json(req, &in, "request", "web", "--recipe", web, "--param", "message=over the wire", "--sla", "label.role=host", "--wait"); err != nil {
		t.Fatal(err)
	}
	var first *labHost
	for _, h := range hosts {
		if h.peerID == in.Node {
			first = h
		}
	}
	if in.State != "started" || first == nil {
		t.Fatalf("placed: %+v; want started on one of the hosts", in)
	}
	if !strings.Contains(in.Connection["url"], first.ip) {
		t.Fatalf("url %q does not name the host's address %s", in.Connection["url"], first.ip)
	}
	mktPoll(t, 10*time.Second, func() error {
		body, err := getFrom(req.name, in.Connection["url"])
		if err == nil && !strings.Contains(body, "over the wire") {
			err = fmt.Errorf("page without the message: %q", body)
		}
		return err
	})

	lab.cut(first)
	var moved mktInstance
	mktPoll(t, 60*time.Second, func() error {
		if err := lab.json(req, &moved, "instance", "show", "web"); err != nil {
			return err
		}
		if moved.Node == first.peerID || moved.State != "started" || moved.Epoch <= in.Epoch {
			return fmt.Errorf("still %s on %s (epoch %d)", moved.State, moved.Node, moved.Epoch)
		}
		body, err := getFrom(req.name, moved.Connection["url"])
		if err == nil && !strings.Contains(body, "over the wire") {
			err = fmt.Errorf("page without the message: %q", body)
		}
		return err
	})

	// Back on the wire, the cut-off host learns of the newer contract and
	// stops its copy: exactly one host holds the instance, the one the
	// requester names.
	lab.plug(first)
	mktPoll(t, 60*time.Second, func() error {
		var now mktInstance
		if err := lab.json(req, &now, "instance", "show", "web"); err != nil {
			return err
		}
		var holders []string
		for _, h := range hosts {
			var parts []struct {
				InstanceID string `json:"instance_id"`
			}
			if err := lab.json(h, &parts, "partition", "list"); err != nil {
				return err
			}
			for _, p := range parts {
				if p.InstanceID == in.InstanceID {
					holders = append(holders, h.peerID)
				}
			}
		}
		if len(holders) != 1 || holders[0] != now.Node || now.State != "started" {
			return fmt.Errorf("instance %s on %s (%s, epoch %d); copies held by %v", in.InstanceID, now.Node, now.State, now.Epoch, holders)
		}
		return nil
	})
	// Stop billing, then every node's ledger must come to the same root
	// (while the instance runs, each slice adds receipts and the roots
	// are equal only between them).
	mktPoll(t, 60*time.Second, func() error {
		var a struct {
			Receipts int `json:"receipts"`
		}
		out, _ := lab.weft(req, "ledger", "audit", "--json")
		if err := json.Unmarshal(out, &a); err != nil {
			return fmt.Errorf("audit: %v: %s", err, out)
		}
		if a.Receipts < 2 {
			return fmt.Errorf("%d receipts so far", a.Receipts)
		}
		return nil
	})
	var gone mktInstance
	if err := lab.json(req, &gone, "request", "web", "--recipe", web, "--state", "destroyed", "--wait"); err != nil {
		t.Fatal(err)
	}
	mktPoll(t, 60*time.Second, func() error {
		roots := map[string]bool{}
		receipts := 0
		for _, h := range lab.hosts {
			var a struct {
				OK       bool              `json:"ok"`
				Root     string            `json:"root"`
				Receipts int               `json:"receipts"`
				Unbilled int               `json:"unbilled"`
				Problems []json.RawMessage `json:"problems"`
			}
			out, _ := lab.weft(h, "ledger", "audit", "--json") // exits 1 when not ok
			if err := json.Unmarshal(out, &a); err != nil {
				return fmt.Errorf("audit on %s: %v: %s", h.name, err, out)
			}
			if !a.OK {
				return fmt.Errorf("audit on %s not ok: %s", h.name, bytes.Join(func() [][]byte {
					var ps [][]byte
					for _, p := range a.Problems {
						ps = append(ps, p)
					}
					return ps
				}(), []byte("; ")))
			}
			if a.Unbilled != 0 {
				// The cut-off host bills the slices it owes before the
				// newer epoch once back: none is lost.
				return fmt.Errorf("audit on %s: %d unbilled slices", h.name, a.Unbilled)
			}
			roots[a.Root] = true
			receipts = a.Receipts
		}
		if len(roots) != 1 || receipts == 0 {
			return fmt.Errorf("%d distinct roots, %d receipts", len(roots), receipts)
		}
		return nil
	})
}

// tbf limits what h sends to rate (e.g. "80mbit"): a thin uplink.
func (lab *netLab) tbf(h *labHost, rate string) {
	lab.t.Helper()
	out, err := exec.Command("ip", "netns", "exec", h.name, "tc", "qdisc", "replace", "dev", h.inner, "root",
		"tbf", "rate", rate, "burst", "256kb", "latency", "500ms").CombinedOutput()
	if err != nil {
		lab.t.Fatalf("tc tbf on %s: %v: %s", h.name, err, out)
	}
}

// contentStats is the content part of h's status.
func (lab *netLab) contentStats(h *labHost) (served, fetched int64, err error) {
	var st struct {
		Content struct {
			Served  int64 `json:"bytes_served"`
			Fetched int64 `json:"bytes_fetched"`
		} `json:"content"`
	}
	err = lab.json(h, &st, "status")
	return st.Content.Served, st.Content.Fetched, err
}

// Three nodes hold a recipe's 16 MiB artifact, each behind an uplink of
// 80 Mbit/s; a fourth shows the recipe, which fetches it from the grid:
// the chunks come from several providers at once, every byte once.
func TestNetnsFetchFromSeveralProviders(t *testing.T) {
	lab := newNetLab(t, 4)
	f, provs := lab.hosts[0], lab.hosts[1:]
	lab.start(f, "--preset", "local", "--mdns", "off")
	for _, h := range provs {
		lab.start(h, "--preset", "local", "--mdns", "off", "--bootstrap", f.addr)
	}
	mktPoll(t, 45*time.Second, func() error {
		for _, h := range lab.hosts {
			if n, err := lab.members(h); err != nil || n != len(lab.hosts) {
				return fmt.Errorf("%s sees %d members (%v)", h.name, n, err)
			}
		}
		return nil
	})

	const size = 16 << 20
	cid := lab.publishBlob(t.TempDir(), size, provs)
	for _, h := range provs {
		lab.tbf(h, "80mbit")
	}

	start := time.Now()
	var shown struct {
		CID string `json:"cid"`
	}
	if err := lab.json(f, &shown, "recipe", "show", cid); err != nil || shown.CID != cid {
		t.Fatalf("show %s on the fetcher: %+v, %v", cid, shown, err)
	}
	t.Logf("16 MiB fetched in %v", time.Since(start).Round(time.Millisecond))
	_, fetched, err := lab.contentStats(f)
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	var served int64
	for _, h := range provs {
		s, _, err := lab.contentStats(h)
		if err != nil {
			t.Fatal(err)
		}
		if s > 0 {
			servers = append(servers, fmt.Sprintf("%s: %d bytes", h.name, s))
		}
		served += s
	}
	t.Logf("served by %v", servers)
	if len(servers) < 2 {
		t.Fatalf("the artifact came from %d provider(s) (%v); want several", len(servers), servers)
	}
	if fetched < size || served > fetched+size/8 {
		t.Fatalf("fetched %d bytes, providers served %d, for a %d-byte artifact", fetched, served, size)
	}
}

// publishBlob writes a recipe with an artifact of size random bytes into
// dir, publishes it on every host of on and returns its CID.
func (lab *netLab) publishBlob(dir string, size int, on []*labHost) string {
	t := lab.t
	t.Helper()
	blob := make([]byte, size)
	if _, err := io.ReadFull(randReader{}, blob); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blob.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	recipe := filepath.Join(dir, "blob.toml")
	if err := os.WriteFile(recipe, []byte(`name = "blob"
version = "1"
[[files]]
path = "blob.bin"
source = "blob.bin"
[types.default]
[[types.default.processes]]
name = "run"
command = "/bin/true"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var cid string
	for _, h := range on {
		var pub struct {
			CID string `json:"cid"`
		}
		if err := lab.json(h, &pub, "recipe", "publish", recipe); err != nil {
			t.Fatal(err)
		}
		if cid != "" && pub.CID != cid {
			t.Fatalf("%s published %s, another node %s: the same recipe must have one CID", h.name, pub.CID, cid)
		}
		cid = pub.CID
	}
	return cid
}

// randReader reads pseudo-random bytes (content for tests, not secrets).
type randReader struct{}

func (randReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(mrand.Uint32())
	}
	return len(p), nil
}

// BenchmarkNetnsFetch fetches a 16 MiB artifact (with its recipe, through
// the CLI) from one provider and from three, each behind an uplink of
// 80 Mbit/s: what drawing on several providers at once gives where the
// providers' uplinks are the bottleneck.
func BenchmarkNetnsFetch(b *testing.B) {
	lab := newNetLab(b, 4)
	f, provs := lab.hosts[0], lab.hosts[1:]
	lab.start(f, "--preset", "local", "--mdns", "off")
	for _, h := range provs {
		lab.start(h, "--preset", "local", "--mdns", "off", "--bootstrap", f.addr)
		lab.tbf(h, "80mbit")
	}
	mktPoll(b, 45*time.Second, func() error {
		for _, h := range lab.hosts {
			if n, err := lab.members(h); err != nil || n != len(lab.hosts) {
				return fmt.Errorf("%s sees %d members (%v)", h.name, n, err)
			}
		}
		return nil
	})
	const size = 16 << 20
	for _, k := range []int{1, 3} {
		b.Run(fmt.Sprintf("providers=%d", k), func(b *testing.B) {
			b.SetBytes(size)
			var total time.Duration
			for b.Loop() {
				b.StopTimer()
				cid := lab.publishBlob(b.TempDir(), size, provs[:k])
				b.StartTimer()
				start := time.Now()
				if _, err := lab.weft(f, "recipe", "show", cid, "--json"); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/fetch")
		})
	}
}

// natHost puts a new host behind a home router: the host has a private
// address on its own LAN (10.240+N.0.2), and the router, plugged into the
// switch at 10.231.0.(100+N), masquerades its connections (nftables), with
// no port forwarded — it can dial out, nothing can dial in.
func (lab *netLab) natHost(n int) *labHost {
	t := lab.t
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		labSkip(t, "no nft command (nftables)")
	}
	id := os.Getpid() % 100000
	rt := fmt.Sprintf("%sr%d", lab.prefix, n)
	h := &labHost{
		name:  fmt.Sprintf("%sh%d", lab.prefix, n),
		ip:    fmt.Sprintf("10.%d.0.2", 240+n),
		inner: fmt.Sprintf("h%05d%da", id, n),
		outer: fmt.Sprintf("h%05d%db", id, n),
		dir:   t.TempDir(),
	}
	wanIn, wanOut := fmt.Sprintf("w%05d%da", id, n), fmt.Sprintf("w%05d%db", id, n)
	wan := fmt.Sprintf("10.231.0.%d", 100+n)
	lan := fmt.Sprintf("10.%d.0.1", 240+n)
	lab.extra = append(lab.extra, rt)
	lab.hosts = append(lab.hosts, h)
	lab.must("netns", "add", rt)
	lab.must("netns", "add", h.name)
	lab.must("-n", rt, "link", "set", "lo", "up")
	lab.must("-n", h.name, "link", "set", "lo", "up")
	// The router's WAN cable into the switch.
	lab.must("link", "add", wanIn, "type", "veth", "peer", "name", wanOut)
	lab.must("link", "set", wanIn, "netns", rt)
	lab.must("link", "set", wanOut, "netns", lab.sw)
	lab.must("-n", rt, "addr", "add", wan+"/24", "dev", wanIn)
	lab.must("-n", rt, "link", "set", wanIn, "up")
	lab.must("-n", lab.sw, "link", "set", wanOut, "master", "br0")
	lab.must("-n", lab.sw, "link", "set", wanOut, "up")
	// The LAN cable between the router and the host.
	lab.must("link", "add", h.inner, "type", "veth", "peer", "name", h.outer)
	lab.must("link", "set", h.inner, "netns", h.name)
	lab.must("link", "set", h.outer, "netns", rt)
	lab.must("-n", rt, "addr", "add", lan+"/24", "dev", h.outer)
	lab.must("-n", rt, "link", "set", h.outer, "up")
	lab.must("-n", h.name, "addr", "add", h.ip+"/24", "dev", h.inner)
	lab.must("-n", h.name, "link", "set", h.inner, "up")
	lab.must("-n", h.name, "route", "add", "default", "via", lan)
	for _, c := range [][]string{
		{"sysctl", "-q", "-w", "net.ipv4.ip_forward=1"},
		{"nft", "add", "table", "ip", "nat"},
		{"nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }"},
		{"nft", "add", "rule", "ip", "nat", "post", "oifname", wanIn, "masquerade"},
	} {
		if out, err := exec.Command("ip", append([]string{"netns", "exec", rt}, c...)...).CombinedOutput(); err != nil {
			t.Fatalf("%s in %s: %v: %s", strings.Join(c, " "), rt, err, out)
		}
	}
	for d := h.dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o011 != 0o011 {
			_ = os.Chmod(d, fi.Mode().Perm()|0o011)
		}
	}
	return h
}

// A hobbyist's machine behind a home router (NAT, nothing forwarded)
// joins the grid through a public node, wins a batch job pinned to it, runs
// it, and another public node fetches the result from it: every
// connection to it is one it dialled out.
func TestNetnsNodeBehindNAT(t *testing.T) {
	lab := newNetLab(t, 2)
	pub, req := lab.hosts[0], lab.hosts[1]
	home := lab.natHost(1)
	lab.start(pub, "--preset", "local", "--mdns", "off")
	lab.start(req, "--preset", "local", "--mdns", "off", "--bootstrap", pub.addr)
	lab.start(home, "--preset", "local", "--mdns", "off", "--bootstrap", pub.addr, "--label", "where=home")
	mktPoll(t, 45*time.Second, func() error {
		for _, h := range lab.hosts {
			if n, err := lab.members(h); err != nil || n != 3 {
				return fmt.Errorf("%s sees %d members (%v), want 3", h.name, n, err)
			}
		}
		return nil
	})
	var job struct {
		State  string `json:"state"`
		Result string `json:"result"`
		Node   string `json:"node"`
	}
	primes := repoFile(t, "recipes/examples/primes.toml")
	if err := lab.json(req, &job, "job", "run", "--recipe", primes, "--param", "n=100000", "--sla", "label.where=home", "--wait"); err != nil {
		t.Fatal(err)
	}
	if job.State != "done" || job.Node != home.peerID || job.Result == "" {
		t.Fatalf("job: %+v; want done on the home node %s", job, home.peerID)
	}
	// Nothing dials in: the router forwards no port.
	if _, err := getFrom(pub.name, "http://10.231.0.101:4001/"); err == nil {
		t.Fatal("the home node's port is reachable through its router")
	}
	// Seen from the public nodes, the home node is its router's WAN
	// address: its connections went through the NAT.
	for _, h := range []*labHost{pub, req} {
		out, err := exec.Command("ip", "netns", "exec", h.name, "ss", "-Htn", "state", "established").CombinedOutput()
		if err != nil {
			t.Fatalf("ss in %s: %v: %s", h.name, err, out)
		}
		if !strings.Contains(string(out), "10.231.0.101:") || strings.Contains(string(out), home.ip) {
			t.Fatalf("connections of %s do not come through the NAT:\n%s", h.name, out)
		}
	}
	// The result is only on the home node (and on the requester, which
	// fetched it when the job ended): fetch it on the third node.
	out := filepath.Join(t.TempDir(), "result")
	if _, err := lab.weft(pub, "job", "result", job.Result, "--out", out); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "count.txt")); err != nil || strings.TrimSpace(string(b)) != "9592" {
		t.Fatalf("count.txt: %q, %v; want 9592", b, err)
	}
}
