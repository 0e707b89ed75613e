//go:build linux

package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weftgrid/weft/ledger"
)

// The chaos suite: a grid of nodes in network namespaces (see netns_test.go)
// under a scripted fault schedule — a host SIGKILLed and restarted, a cable
// cut, a split of the grid in two halves, the requester killed with a host
// (its guardians re-place), and two home nodes behind NAT working with each
// other through a relay — then the checks: exactly one running copy per
// started instance once healed, one ledger root and `audit ok` on every
// node, no (instance, slice) billed twice, no unbilled slice, no node
// crashed. `make chaos` runs the full schedule (WEFT_CHAOS=full) and prints
// the summary; `make test` runs a short one (a kill and a cut, 4 nodes).
//
// WEFT_CHAOS_OUT, if set, receives the summary's JSON line; WEFT_CHAOS_LOGS,
// if set, is a directory that receives every node's whole log (NAME.log,
// with the goroutine dump of a node found wedged).

// chaosResult is the summary; its JSON is the last line `make chaos` prints.
type chaosResult struct {
	OK           bool  `json:"ok"`
	CopiesOK     bool  `json:"copies_ok"`
	RootsEqual   bool  `json:"roots_equal"`
	AuditOK      bool  `json:"audit_ok"`
	DoubleBilled int   `json:"double_billed"`
	Unbilled     int64 `json:"unbilled"`
	Crashes      int   `json:"crashes"`
	ReplaceP50ms int64 `json:"replace_p50_ms"`
	ReplaceMaxms int64 `json:"replace_max_ms"`
	// BillingComplete is the billing completeness, in percent: of the
	// slices that ended (SlicesEnded: the slices the audit's unbilled
	// count is taken among, every slice of the run in the full run), how
	// many carry exactly one receipt (BilledOnce). The lowest over the
	// nodes; 100 when none ended yet. Goal ≥ 99.9.
	BillingComplete float64 `json:"billing_complete_pct"`
	SlicesEnded     int64   `json:"slices_ended"`
	BilledOnce      int64   `json:"billed_once"`
	replaces        []int64 // ms
	notes           []string
}

type chaos struct {
	t       *testing.T
	lab     *netLab
	req     *labHost
	hosts   []*labHost // may host (role=host)
	homes   []*labHost // behind NAT
	killed  map[*labHost]bool
	args    map[*labHost][]string
	web     string
	names   []string // instances the requester started
	res     chaosResult
	started time.Time
}

func (c *chaos) logf(format string, args ...any) {
	now := time.Now()
	line := fmt.Sprintf("chaos %6.1fs %s  ", now.Sub(c.started).Seconds(), now.UTC().Format("15:04:05.000")) + fmt.Sprintf(format, args...)
	c.res.notes = append(c.res.notes, line)
	c.t.Log(line)
}

func (c *chaos) startNode(h *labHost, args ...string) {
	c.args[h] = args
	c.lab.start(h, args...)
}

// kill SIGKILLs h's node (its instances keep running, as after a crash).
func (c *chaos) kill(h *labHost) {
	if h.cmd != nil && h.cmd.Process != nil {
		_ = syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		_ = h.cmd.Wait()
	}
	c.killed[h] = true
}

func (c *chaos) restart(h *labHost) {
	delete(c.killed, h)
	c.lab.start(h, c.args[h]...)
}

func (c *chaos) byPeer(id string) *labHost {
	for _, h := range c.lab.hosts {
		if h.peerID == id {
			return h
		}
	}
	return nil
}

// show is the instance as a node sees it.
func (c *chaos) show(on *labHost, name string) (mktInstance, error) {
	var in mktInstance
	err := c.lab.json(on, &in, "instance", "show", name)
	return in, err
}

// move is an instance expected to serve again on another node: its host
// and epoch before the fault.
type move struct {
	name  string
	from  string
	epoch uint64
}

// waitMoved waits until one of the watchers sees each move's instance
// started on a node other than its from, at an epoch above its epoch, and
// records for each how long it took since t0. All are watched at once:
// each time is when its instance was first seen serving, whatever the
// others do.
func (c *chaos) waitMoved(moves []move, t0 time.Time, watchers ...*labHost) {
	c.t.Helper()
	deadline := t0.Add(60 * time.Second)
	reasons := map[string][]string{} // what the watchers said meanwhile, for the log
	pending := slices.Clone(moves)
	type seen struct {
		mv move
		in mktInstance
		w  *labHost
		ms int64
	}
	var done []seen
	for len(pending) > 0 && time.Now().Before(deadline) {
		for _, w := range watchers {
			var list []mktInstance
			if err := c.lab.json(w, &list, "instance", "list"); err != nil {
				continue
			}
			for _, in := range list {
				i := slices.IndexFunc(pending, func(mv move) bool { return mv.name == in.Name })
				if i < 0 {
					continue
				}
				mv := pending[i]
				if in.Reason != "" && !slices.Contains(reasons[mv.name], in.Reason) {
					reasons[mv.name] = append(reasons[mv.name], in.Reason)
				}
				if in.State == "started" && in.Node != "" && in.Node != mv.from && in.Epoch > mv.epoch {
					done = append(done, seen{mv, in, w, time.Since(t0).Milliseconds()})
					pending = slices.Delete(pending, i, i+1)
				}
			}
		}
		if len(pending) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, d := range done {
		c.res.replaces = append(c.res.replaces, d.ms)
		c.logf("%s serving again on %.12s (epoch %d) after %d ms", d.mv.name, d.in.Node, d.in.Epoch, d.ms)
		c.timeline(d.w, d.mv.name, t0)
		if rs := reasons[d.mv.name]; len(rs) > 0 {
			c.logf("    meanwhile: %s", strings.Join(rs, " | "))
		}
	}
	for _, mv := range pending {
		name := mv.name
		last, _ := c.show(c.req, name)
		c.logf("%s NOT serving elsewhere within 60 s (the requester sees %s on %.12s, epoch %d: %s)", name, last.State, last.Node, last.Epoch, last.Reason)
		for _, w := range watchers {
			var list []mktInstance
			if err := c.lab.json(w, &list, "instance", "list", "--all"); err != nil {
				c.logf("  %s: %v", w.name, err)
				continue
			}
			for _, in := range list {
				if in.Name == name {
					c.logf("  %s sees %s on %.12s, epoch %d: %s", w.name, in.State, in.Node, in.Epoch, in.Reason)
				}
			}
		}
		if rs := reasons[name]; len(rs) > 0 {
			c.logf("    meanwhile: %s", strings.Join(rs, " | "))
		}
		c.res.replaces = append(c.res.replaces, 60000)
	}
}

// timeline logs what on saw happen to name since t0 (its instance
// events), each at its offset from t0: where a replacement's time went
// (host lost, auctioned, awarded, installing, started).
func (c *chaos) timeline(on *labHost, name string, t0 time.Time) {
	var evs []struct {
		Time   time.Time `json:"time"`
		Kind   string    `json:"kind"`
		Node   *string   `json:"node"`
		Detail string    `json:"detail"`
	}
	if err := c.lab.json(on, &evs, "instance", "events", name); err != nil {
		c.logf("  events of %s: %v", name, err)
		return
	}
	var parts []string
	for _, e := range evs {
		if e.Time.Before(t0.Add(-time.Second)) {
			continue
		}
		node := ""
		if e.Node != nil {
			node = " " + (*e.Node)[max(0, len(*e.Node)-6):]
		}
		detail := ""
		if e.Kind == "failed" || e.Kind == "host_lost" {
			detail = " (" + e.Detail + ")"
		}
		parts = append(parts, fmt.Sprintf("%+dms %s%s%s", e.Time.Sub(t0).Milliseconds(), e.Kind, node, detail))
	}
	c.logf("  %s on %s: %s", name, on.name, strings.Join(parts, " | "))
}

// hostOf returns the host of name as the requester sees it.
func (c *chaos) hostOf(name string) (*labHost, mktInstance) {
	c.t.Helper()
	in, err := c.show(c.req, name)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.byPeer(in.Node), in
}

// split drops every packet between the two groups (nftables in each
// node's namespace); heal removes the rules.
func (c *chaos) split(a, b []*labHost) {
	for _, side := range [][2][]*labHost{{a, b}, {b, a}} {
		var ips []string
		for _, h := range side[1] {
			ips = append(ips, h.ip)
		}
		set := "{ " + strings.Join(ips, ", ") + " }"
		for _, h := range side[0] {
			for _, rule := range []string{
				"add table inet chaos",
				"add chain inet chaos in { type filter hook input priority 0 ; }",
				"add chain inet chaos out { type filter hook output priority 0 ; }",
				"add rule inet chaos in ip saddr " + set + " drop",
				"add rule inet chaos out ip daddr " + set + " drop",
			} {
				if out, err := exec.Command("ip", "netns", "exec", h.name, "nft", rule).CombinedOutput(); err != nil {
					c.t.Fatalf("nft %s in %s: %v: %s", rule, h.name, err, out)
				}
			}
		}
	}
}

func (c *chaos) heal(hs []*labHost) {
	for _, h := range hs {
		_ = exec.Command("ip", "netns", "exec", h.name, "nft", "delete", "table", "inet", "chaos").Run()
	}
}

func TestChaos(t *testing.T) {
	full := os.Getenv("WEFT_CHAOS") == "full"
	nHosts := 3
	if full {
		nHosts = 5
	}
	lab := newNetLab(t, 1+nHosts)
	if _, err := exec.LookPath("nft"); err != nil {
		labSkip(t, "no nft command (nftables)")
	}
	c := &chaos{t: t, lab: lab, req: lab.hosts[0], hosts: lab.hosts[1:], killed: map[*labHost]bool{}, args: map[*labHost][]string{},
		web: repoFile(t, "recipes/examples/webserver.toml"), started: time.Now()}
	if _, err := lab.weft(c.req, "tool", "httpd", "--help"); err != nil {
		t.Skip("weft tool httpd (run by the webserver example) is not in this binary")
	}
	common := []string{"--slice", "1s", "--mdns", "off", "--reachability", "public"}
	c.startNode(c.req, common...)
	for _, h := range c.hosts {
		c.startNode(h, append(slices.Clone(common), "--label", "role=host", "--bootstrap", c.req.addr)...)
	}
	if full {
		c.homes = []*labHost{lab.natHost(1), lab.natHost(2)}
		for _, h := range c.homes {
			c.startNode(h, "--slice", "1s", "--mdns", "off", "--reachability", "private", "--bootstrap", c.req.addr)
		}
	}
	all := lab.hosts
	mktPoll(t, 60*time.Second, func() error {
		for _, h := range all {
			if n, err := lab.members(h); err != nil || n != len(all) {
				return fmt.Errorf("%s sees %d members (%v), want %d", h.name, n, err, len(all))
			}
		}
		return nil
	})
	c.logf("grid of %d nodes up (%d behind NAT)", len(all), len(c.homes))

	nInst := 2
	if full {
		nInst = 4
	}
	for i := range nInst {
		name := fmt.Sprintf("web%d", i)
		var in mktInstance
		if err := lab.json(c.req, &in, "request", name, "--recipe", c.web, "--param", "message=chaos "+name,
			"--sla", "label.role=host", "--sla", "guardians=2", "--wait"); err != nil {
			t.Fatal(err)
		}
		c.names = append(c.names, name)
	}
	if full {
		var in mktInstance
		if err := lab.json(c.homes[0], &in, "request", "homeweb", "--recipe", c.web, "--param", "message=next door",
			"--sla", "node="+c.homes[1].peerID, "--sla", "guardians=0", "--wait"); err != nil {
			t.Fatal(err)
		}
		c.logf("homeweb placed from one home on the other (%.12s)", in.Node)
	}
	c.logf("%d instances started", nInst)

	// 1. A host SIGKILLed, restarted once its instance serves elsewhere.
	h, in := c.hostOf("web0")
	t0 := time.Now()
	c.kill(h)
	c.logf("SIGKILL %s (host of web0)", h.name)
	c.waitMoved([]move{{"web0", in.Node, in.Epoch}}, t0, c.req)
	c.restart(h)
	c.logf("%s restarted", h.name)

	// 2. A cable cut (15 s; 6 s in the short run).
	cutFor := 6 * time.Second
	if full {
		cutFor = 15 * time.Second
	}
	h, in = c.hostOf("web1")
	t0 = time.Now()
	lab.cut(h)
	c.logf("cable of %s (host of web1) cut", h.name)
	c.waitMoved([]move{{"web1", in.Node, in.Epoch}}, t0, c.req)
	time.Sleep(time.Until(t0.Add(cutFor)))
	lab.plug(h)
	c.logf("cable of %s plugged back", h.name)

	if full {
		// 3. The grid split in two halves for 15 s: the requester's
		// half re-places what ran in the other.
		half := (len(lab.hosts[:1+nHosts]) + 1) / 2
		a, b := lab.hosts[:half], lab.hosts[half:1+nHosts]
		var moving []move
		for _, name := range c.names {
			if hh, in := c.hostOf(name); slices.Contains(b, hh) {
				moving = append(moving, move{name, in.Node, in.Epoch})
			}
		}
		t0 = time.Now()
		c.split(a, b)
		c.logf("split %d|%d (%d instances on the far side)", len(a), len(b), len(moving))
		c.waitMoved(moving, t0, c.req)
		time.Sleep(time.Until(t0.Add(15 * time.Second)))
		c.heal(lab.hosts[:1+nHosts])
		c.logf("split healed")

		// 4. The requester killed with a host: a guardian re-places.
		target := c.names[len(c.names)-1]
		h, in = c.hostOf(target)
		var watchers []*labHost
		for _, g := range in.Guardians {
			if gh := c.byPeer(g); gh != nil && gh != h {
				watchers = append(watchers, gh)
			}
		}
		t0 = time.Now()
		c.kill(c.req)
		c.kill(h)
		c.logf("SIGKILL the requester and %s (host of %s)", h.name, target)
		c.waitMoved([]move{{target, in.Node, in.Epoch}}, t0, watchers...)
		c.restart(c.req)
		c.restart(h)
		c.logf("requester and %s restarted", h.name)
	}

	// Healed: exactly one running copy per instance, where its requester
	// says it is.
	copies := func() error {
		for _, name := range c.names {
			in, err := c.show(c.req, name)
			if err != nil {
				return err
			}
			var holders []string
			for _, hh := range lab.hosts {
				var parts []struct {
					InstanceID string `json:"instance_id"`
					State      string `json:"state"`
				}
				if err := lab.json(hh, &parts, "partition", "list"); err != nil {
					return err
				}
				for _, p := range parts {
					if p.InstanceID == in.InstanceID {
						holders = append(holders, hh.peerID)
					}
				}
			}
			if in.State != "started" || len(holders) != 1 || holders[0] != in.Node {
				return fmt.Errorf("%s: %s on %.12s, copies on %v", name, in.State, in.Node, holders)
			}
		}
		return nil
	}
	deadline := time.Now().Add(60 * time.Second)
	var cerr error
	for cerr = copies(); cerr != nil && time.Now().Before(deadline); cerr = copies() {
		time.Sleep(500 * time.Millisecond)
	}
	c.res.CopiesOK = cerr == nil
	if cerr != nil {
		c.logf("copies: %v", cerr)
	} else {
		c.logf("one copy per instance")
	}

	// Stop billing, then every ledger must converge and audit clean.
	destroyed := time.Now()
	for _, name := range c.names {
		if _, err := lab.weft(c.req, "request", name, "--state", "destroyed", "--wait"); err != nil {
			c.logf("destroy %s: %v", name, err)
		}
	}
	if full {
		if _, err := lab.weft(c.homes[0], "request", "homeweb", "--state", "destroyed", "--wait"); err != nil {
			c.logf("destroy homeweb: %v", err)
		}
	}
	type audit struct {
		OK         bool   `json:"ok"`
		Root       string `json:"root"`
		Unbilled   int64  `json:"unbilled"`
		DueSlices  int64  `json:"due_slices"`
		BilledOnce int64  `json:"billed_once"`
		Problems   []struct {
			Code string `json:"code"`
		} `json:"problems"`
	}
	var audits map[string]audit
	settled := func() bool {
		audits = map[string]audit{}
		roots := map[string]bool{}
		for _, hh := range lab.hosts {
			var a audit
			out, _ := lab.weft(hh, "ledger", "audit", "--json") // exits 1 when not ok
			if err := json.Unmarshal(out, &a); err != nil {
				return false
			}
			audits[hh.name] = a
			roots[a.Root] = true
		}
		if len(roots) != 1 {
			return false
		}
		for _, a := range audits {
			if !a.OK || a.Unbilled != 0 {
				return false
			}
		}
		return true
	}
	// The audit counts a slice once it ended more than the billing grace
	// (30 s) ago: the full run audits once every slice of the run counts,
	// so that the billing completeness covers them all.
	countedFrom := time.Now()
	if full {
		countedFrom = destroyed.Add(ledger.BillingGrace + time.Second)
	}
	deadline = time.Now().Add(60 * time.Second)
	if countedFrom.After(time.Now()) {
		deadline = countedFrom.Add(60 * time.Second)
	}
	for (!settled() || time.Now().Before(countedFrom)) && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}
	roots := map[string]bool{}
	c.res.AuditOK = len(audits) == len(lab.hosts)
	c.res.BillingComplete = 100
	for name, a := range audits {
		roots[a.Root] = true
		if a.DueSlices > 0 {
			pct := 100 * float64(a.BilledOnce) / float64(a.DueSlices)
			if pct <= c.res.BillingComplete {
				c.res.BillingComplete, c.res.SlicesEnded, c.res.BilledOnce = pct, a.DueSlices, a.BilledOnce
			}
		}
		c.res.AuditOK = c.res.AuditOK && a.OK
		c.res.Unbilled = max(c.res.Unbilled, a.Unbilled)
		n := 0
		var codes []string
		for _, p := range a.Problems {
			if p.Code == "overlap" {
				n++
			}
			codes = append(codes, p.Code)
		}
		c.res.DoubleBilled = max(c.res.DoubleBilled, n)
		if !a.OK || a.Unbilled != 0 {
			c.logf("audit on %s: ok %v, unbilled %d, problems %v", name, a.OK, a.Unbilled, codes)
		}
	}
	c.res.RootsEqual = len(roots) == 1 && len(audits) == len(lab.hosts)
	c.logf("ledger: %d distinct roots, audit ok %v, unbilled %d, billed twice %d", len(roots), c.res.AuditOK, c.res.Unbilled, c.res.DoubleBilled)
	c.logf("billing completeness: %d of %d ended slices billed exactly once (%.3f %%)", c.res.BilledOnce, c.res.SlicesEnded, c.res.BillingComplete)

	// No node crashed: every node we did not kill still runs, and no log
	// holds a panic. A node whose API does not answer (status, or its
	// partition list: the partition manager's lock) within chaosAPIWait is
	// wedged: it gets SIGQUIT, which makes it print every goroutine's stack
	// into its log before it exits, so the wedge can be diagnosed.
	for _, hh := range lab.hosts {
		logText := hh.logText()
		crashed := !processRuns(hh) || strings.Contains(logText, "panic:") || strings.Contains(logText, "fatal error:")
		_, serr := lab.weftWithin(hh, chaosAPIWait, "status", "--json")
		if serr == nil {
			_, serr = lab.weftWithin(hh, chaosAPIWait, "partition", "list", "--json")
		}
		switch {
		case crashed:
			c.res.Crashes++
			how := "panic or fatal error in its log"
			if !processRuns(hh) {
				pid := hh.cmd.Process.Pid
				err := hh.cmd.Wait() // reaps it: how it ended
				how = fmt.Sprintf("process %d ended: %v", pid, err)
			}
			c.logf("%s crashed (%s)", hh.name, how)
		case serr != nil:
			c.res.Crashes++
			c.logf("%s does not answer: %v", hh.name, serr)
			before := len(hh.logText())
			if dumpGoroutines(hh) {
				c.logf("%s: goroutine dump (SIGQUIT) in its log; weft's goroutines blocked for a minute or more:\n%s",
					hh.name, stuckGoroutines(hh.logText()[before:]))
			}
		}
	}
	if dir := os.Getenv("WEFT_CHAOS_LOGS"); dir != "" {
		if err := saveNodeLogs(dir, lab.hosts); err != nil {
			t.Error(err)
		} else {
			c.logf("node logs in %s", dir)
		}
	}
	sort.Slice(c.res.replaces, func(i, j int) bool { return c.res.replaces[i] < c.res.replaces[j] })
	if n := len(c.res.replaces); n > 0 {
		c.res.ReplaceP50ms = c.res.replaces[(n-1)/2]
		c.res.ReplaceMaxms = c.res.replaces[n-1]
	}
	c.res.OK = c.res.CopiesOK && c.res.RootsEqual && c.res.AuditOK && c.res.DoubleBilled == 0 && c.res.Unbilled == 0 && c.res.Crashes == 0 &&
		c.res.BillingComplete >= 99.9
	line, _ := json.Marshal(c.res)
	c.logf("replacements (ms): %v", c.res.replaces)
	t.Log(string(line))
	if out := os.Getenv("WEFT_CHAOS_OUT"); out != "" {
		summary := strings.Join(c.res.notes, "\n") + "\n" + string(line) + "\n"
		if err := os.WriteFile(out, []byte(summary), 0o644); err != nil {
			t.Error(err)
		}
	}
	if !c.res.OK {
		t.Fatalf("chaos: %s", line)
	}
}

// processRuns reports whether h's node process still runs (not a zombie:
// nobody waits for it until the end).
func processRuns(h *labHost) bool {
	if h.cmd == nil || h.cmd.Process == nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", h.cmd.Process.Pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// chaosAPIWait bounds each API call of the final checks: a node that does
// not answer within it is taken for wedged.
const chaosAPIWait = 20 * time.Second

// dumpGoroutines sends SIGQUIT to h's node (the Go runtime then prints
// every goroutine's stack to stderr, which is h's log, and exits) and
// waits for it to exit; it reports whether it did.
func dumpGoroutines(h *labHost) bool {
	return processRuns(h) && quitForStacks(h.cmd)
}

// saveNodeLogs writes each host's whole log to dir/NAME.log.
func saveNodeLogs(dir string, hosts []*labHost) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, h := range hosts {
		if err := os.WriteFile(filepath.Join(dir, h.name+".log"), []byte(h.logText()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
