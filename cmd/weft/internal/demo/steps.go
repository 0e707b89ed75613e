package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// session is the state the steps share.
type session struct {
	cfg    Config
	g      *grid
	rep    *reporter
	parent context.Context // the run's context; cancelled on Ctrl-C

	recipesDir string
	cids       map[string]string // recipe file name → CID
	message    string

	requester *node
	webName   string // the web server instance the demo follows
	web       instance
	webHost   *node
	killedAt  time.Time

	m Metrics
}

func (s *session) interrupted() bool { return s.parent.Err() != nil }

// webInstance is the name of the web server instance the demo requests.
const webInstance = "web"

// Steps returns the demo's steps in order (without the final clean-up,
// which always runs).
func Steps() []Step {
	return []Step{
		{Name: "check node flags", Soft: true, Timeout: 20 * time.Second, Run: stepFlags},
		{Name: "start grid", Timeout: 30 * time.Second, Run: stepStartGrid},
		{Name: "grid membership", Timeout: 30 * time.Second, Run: stepMembership},
		{Name: "dashboard", Timeout: 15 * time.Second, Run: stepDashboard},
		{Name: "publish recipes", Timeout: 20 * time.Second, Run: stepPublish},
		{Name: "place webserver", Timeout: 30 * time.Second, Run: stepPlaceWeb},
		{Name: "show auction", Timeout: 10 * time.Second, Run: stepAuction},
		{Name: "fetch page", Timeout: 15 * time.Second, Run: stepFetch},
		{Name: "run primes job", Timeout: 40 * time.Second, Run: stepPrimes},
		{Name: "kill host", Timeout: 10 * time.Second, Run: stepKill},
		{Name: "re-placement", Timeout: 30 * time.Second, Run: stepReplace},
		{Name: "receipts accrue", Timeout: 30 * time.Second, Run: stepReceipts},
		{Name: "audit every node", Timeout: 25 * time.Second, Run: stepAudit},
		{Name: "statement", Timeout: 15 * time.Second, Run: stepStatement},
	}
}

// cleanupStep is the name of the final step that stops every process and
// removes the folder; it runs even after a failure.
const cleanupStep = "clean up"

func stepFlags(ctx context.Context, s *session) (Outcome, error) {
	fs, err := probeNodeFlags(ctx, s.g.bin)
	if err != nil {
		// Without help output, pass every flag and let the nodes say what
		// they lack.
		s.g.flags = nodeFlagSet{}
		for _, f := range demoNodeFlags {
			s.g.flags[f] = true
		}
		return Outcome{}, err
	}
	s.g.flags = fs
	var have, lack []string
	for _, f := range demoNodeFlags {
		if fs[f] {
			have = append(have, f)
		} else {
			lack = append(lack, f)
		}
	}
	out := Outcome{Data: map[string]any{"present": have, "missing": lack}}
	if len(lack) > 0 {
		return out, fmt.Errorf("%w: weft node has no %s; the nodes start without them", ErrNotLanded, strings.Join(lack, ", "))
	}
	out.Detail = "weft node has " + strings.Join(have, " ")
	for _, f := range optionalNodeFlags {
		if fs[f] {
			out.Detail += " " + f
		}
	}
	return out, nil
}

func stepStartGrid(ctx context.Context, s *session) (Outcome, error) {
	base, err := pickPortBase(s.cfg.Nodes * portStride(s.cfg.Partitions))
	if err != nil {
		return Outcome{}, err
	}
	s.g.portBase = base
	n0, err := s.g.start(0, nil)
	if err != nil {
		return Outcome{}, err
	}
	if _, err := n0.waitStatus(ctx); err != nil {
		return Outcome{}, err
	}
	boot := loopbackAddrs(n0.addrs)
	for i := 1; i < s.cfg.Nodes; i++ {
		if _, err := s.g.start(i, boot); err != nil {
			return Outcome{}, err
		}
	}
	nodes := s.g.all()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i+1] = n.waitStatus(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Outcome{}, err
	}
	var lines []string
	pids, peers := []int{}, []string{}
	seen := map[string]string{}
	for _, n := range nodes {
		if other, dup := seen[n.peerID]; dup {
			return Outcome{}, fmt.Errorf("%s and %s have the same peer ID %s", other, n.name, n.peerID)
		}
		seen[n.peerID] = n.name
		pids = append(pids, n.pid())
		peers = append(peers, n.peerID)
		lines = append(lines, fmt.Sprintf("%s  pid %-7d %s  %s", n.name, n.pid(), short(n.peerID), n.client.Base))
	}
	return Outcome{
		Detail: fmt.Sprintf("%d node processes answer with distinct peer IDs; bootstrap %s", len(nodes), strings.Join(boot, " ")),
		Lines:  lines,
		Data:   map[string]any{"dir": s.g.dir, "pids": pids, "peer_ids": peers, "port_base": base},
	}, nil
}

// loopbackAddrs keeps the 127.0.0.1 TCP addresses of addrs (all of them if
// none is one).
func loopbackAddrs(addrs []string) []string {
	var out []string
	for _, a := range addrs {
		if strings.HasPrefix(a, "/ip4/127.0.0.1/tcp/") && !strings.Contains(a, "/ws") {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return addrs
	}
	return out
}

func stepMembership(ctx context.Context, s *session) (Outcome, error) {
	nodes := s.g.live()
	names := nodeNames(nodes)
	t0 := time.Now()
	err := poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		members := make([]int, len(nodes))
		for i, n := range nodes {
			st, err := n.getStatus(ctx)
			if notFound(err) {
				return false, fmt.Errorf("%s: %w (%w)", n.name, err, ErrNotLanded)
			}
			if err != nil {
				return false, fmt.Errorf("%s: %w", n.name, err)
			}
			members[i] = st.Members
		}
		ok, why := memberCounts(names, members, len(nodes))
		if !ok {
			return false, errors.New(why)
		}
		return true, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{Detail: fmt.Sprintf("every node sees %d alive members, %s after the last node answered", len(nodes), fmtDur(time.Since(t0)))}, nil
}

func nodeNames(nodes []*node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.name
	}
	return out
}

func stepPublish(ctx context.Context, s *session) (Outcome, error) {
	dir, from, err := findRecipesDir(s.cfg.RecipesDir, s.g.bin, s.g.dir)
	if err != nil {
		return Outcome{}, err
	}
	s.recipesDir = dir
	pub := s.g.live()[0]
	s.cids = map[string]string{}
	var lines []string
	for _, f := range demoRecipes {
		var r struct {
			CID string `json:"cid"`
		}
		if err := s.g.cli(ctx, pub, &r, "recipe", "publish", filepath.Join(dir, f)); err != nil {
			return Outcome{}, err
		}
		if r.CID == "" {
			return Outcome{}, fmt.Errorf("recipe publish %s printed no cid", f)
		}
		s.cids[f] = r.CID
		lines = append(lines, fmt.Sprintf("%-15s %s (published on %s)", f, r.CID, pub.name))
	}
	// Another node fetches both from the grid by CID.
	other := s.g.live()[len(s.g.live())-1]
	for _, f := range demoRecipes {
		var r struct {
			CID string `json:"cid"`
		}
		if err := s.g.cli(ctx, other, &r, "recipe", "show", s.cids[f]); err != nil {
			return Outcome{}, err
		}
		if r.CID != s.cids[f] {
			return Outcome{}, fmt.Errorf("%s shows %s with cid %q, want %s", other.name, f, r.CID, s.cids[f])
		}
	}
	return Outcome{
		Detail: fmt.Sprintf("%d recipes (%s) published on %s and fetched by CID on %s", len(demoRecipes), from, pub.name, other.name),
		Lines:  lines,
		Data:   map[string]any{"cids": s.cids, "dir": dir, "from": from},
	}, nil
}

// hostLabel is the label every node but the requester advertises
// (`weft node --label demo=host`); the web server is requested with
// `--sla label.demo=host`, so it never lands on the requester, which must
// watch its host die.
const (
	hostLabelKey   = "demo"
	hostLabelValue = "host"
)

// request runs `weft request NAME` for the web server recipe from node r.
func (s *session) request(ctx context.Context, r *node, name string) (instance, error) {
	var in instance
	args := []string{"request", name, "--recipe", s.cids["webserver.toml"], "--param", "message=" + s.message,
		"--sla", "label." + hostLabelKey + "=" + hostLabelValue, "--wait"}
	err := s.g.cli(ctx, r, &in, args...)
	return in, err
}

func stepPlaceWeb(ctx context.Context, s *session) (Outcome, error) {
	r := s.g.live()[0]
	t0 := time.Now()
	in, err := s.request(ctx, r, webInstance)
	if err != nil {
		return Outcome{}, err
	}
	took := time.Since(t0)
	if err := checkPlaced(in, func(id string) bool { return s.g.byPeer(id) != nil }); err != nil {
		return Outcome{}, err
	}
	host := s.g.byPeer(in.Node)
	if host == r {
		return Outcome{}, fmt.Errorf("%s, the requester, hosts %q although it lacks the label %s=%s the request demands", r.name, webInstance, hostLabelKey, hostLabelValue)
	}
	s.webName, s.requester, s.web, s.webHost = webInstance, r, in, host
	s.m.PlacementMS = took.Milliseconds()
	return Outcome{
		Detail: fmt.Sprintf("%s requested %q (sla label.%s=%s): %s won, state %s, url %s, placed in %d ms",
			r.name, webInstance, hostLabelKey, hostLabelValue, host.name, in.State, in.url(), s.m.PlacementMS),
		Data: map[string]any{"name": webInstance, "requester": r.peerID, "host": in.Node, "instance_id": in.InstanceID, "url": in.url(), "placement_ms": s.m.PlacementMS},
	}, nil
}

func stepAuction(ctx context.Context, s *session) (Outcome, error) {
	var all []auction
	if err := s.requester.client.Get(ctx, "/v1/auctions", &all); err != nil {
		if notFound(err) {
			err = fmt.Errorf("%w (%w)", err, ErrNotLanded)
		}
		return Outcome{}, fmt.Errorf("GET /v1/auctions on %s: %w", s.requester.name, err)
	}
	a, ok := findAuction(all, s.web.InstanceID, s.webName)
	if !ok {
		return Outcome{}, fmt.Errorf("%s lists %d auctions, none for instance %s (%q)", s.requester.name, len(all), s.web.InstanceID, s.webName)
	}
	var lines []string
	for _, b := range a.Bids {
		mark := " "
		if b.Node == a.Winner {
			mark = "*"
		}
		lines = append(lines, fmt.Sprintf("%s bid  %-8s price %s/h  rtt %v ms", mark, s.nodeLabel(b.Node), credits(b.Price), b.RTTMs))
	}
	for _, d := range a.Declines {
		lines = append(lines, fmt.Sprintf("  decline %-8s %s", s.nodeLabel(d.Node), d.Reason))
	}
	if err := checkAuction(a, s.web.Node); err != nil {
		return Outcome{Lines: lines}, err
	}
	return Outcome{
		Detail: fmt.Sprintf("%d bids, %d declines; winner %s is the host", len(a.Bids), len(a.Declines), s.nodeLabel(a.Winner)),
		Lines:  lines,
		Data:   map[string]any{"bids": len(a.Bids), "declines": len(a.Declines), "winner": a.Winner},
	}, nil
}

// nodeLabel names a peer ID by its node name when it is one of ours.
func (s *session) nodeLabel(peerID string) string {
	if n := s.g.byPeer(peerID); n != nil {
		return n.name
	}
	return short(peerID)
}

// fetch GETs url and checks that the page holds s.message.
func (s *session) fetch(ctx context.Context, url string) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if !strings.Contains(string(b), s.message) {
		return fmt.Errorf("GET %s: the page does not hold the message %q: %.120q", url, s.message, b)
	}
	return nil
}

func stepFetch(ctx context.Context, s *session) (Outcome, error) {
	url := s.web.url()
	if err := poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		err := s.fetch(ctx, url)
		return err == nil, err
	}); err != nil {
		return Outcome{}, err
	}
	return Outcome{Detail: fmt.Sprintf("GET %s → 200, page holds %q", url, s.message)}, nil
}

func stepPrimes(ctx context.Context, s *session) (Outcome, error) {
	// Any peer can run a job: use the last live node that is not the web
	// server's host.
	var r *node
	for _, n := range s.g.live() {
		if n != s.webHost {
			r = n
		}
	}
	var job jobAnswer
	if err := s.g.cli(ctx, r, &job, "job", "run", "--recipe", s.cids["primes.toml"], "--param", fmt.Sprintf("n=%d", s.cfg.PrimesN), "--wait"); err != nil {
		return Outcome{}, err
	}
	if failedState(job.State) || job.State == "" {
		return Outcome{}, fmt.Errorf("job state %q (%s; result %q)", job.State, job.Reason, job.Result)
	}
	if job.Result == "" {
		return Outcome{}, fmt.Errorf("job in state %q has no result CID", job.State)
	}
	// Fetch the result on another node than the one that asked for it.
	f := s.requester
	if f == r {
		f = s.g.live()[0]
	}
	out := filepath.Join(s.g.dir, "primes-result")
	if err := s.g.cli(ctx, f, nil, "job", "result", job.Result, "--out", out); err != nil {
		return Outcome{}, err
	}
	file, line, err := findNumber(out, s.cfg.PrimesWant)
	if err != nil {
		return Outcome{}, fmt.Errorf("result %s fetched on %s: %w", job.Result, f.name, err)
	}
	ran := ""
	if job.Node != "" {
		ran = " on " + s.nodeLabel(job.Node)
	}
	return Outcome{
		Detail: fmt.Sprintf("%s ran primes n=%d%s: state %s, result %s fetched on %s holds %d (%s: %q)", r.name, s.cfg.PrimesN, ran, job.State, short(job.Result), f.name, s.cfg.PrimesWant, file, line),
		Data:   map[string]any{"result": job.Result, "state": job.State, "requester": r.peerID},
	}, nil
}

func stepKill(ctx context.Context, s *session) (Outcome, error) {
	h := s.webHost
	if h == s.requester {
		return Outcome{}, errors.New("the host is the requester; refusing to kill it")
	}
	s.killedAt = time.Now()
	s.g.kill(h)
	select {
	case <-h.exited:
	case <-ctx.Done():
		return Outcome{}, fmt.Errorf("%s (pid %d) still running after SIGKILL: %w", h.name, h.pid(), ctx.Err())
	}
	return Outcome{
		Detail: fmt.Sprintf("SIGKILL to %s (pid %d), the host of %q, and everything below it; its requester %s watches", h.name, h.pid(), s.webName, s.requester.name),
		Data:   map[string]any{"killed": h.peerID, "pid": h.pid()},
	}, nil
}

func stepReplace(ctx context.Context, s *session) (Outcome, error) {
	old := s.webHost
	var in instance
	err := poll(ctx, 100*time.Millisecond, func(ctx context.Context) (bool, error) {
		var cur instance
		if err := s.g.cli(ctx, s.requester, &cur, "instance", "show", s.webName); err != nil {
			return false, err
		}
		if cur.Node == old.peerID {
			return false, fmt.Errorf("%q still placed on the killed %s (state %s)", s.webName, old.name, cur.State)
		}
		n := s.g.byPeer(cur.Node)
		if n == nil || n.killed {
			return false, fmt.Errorf("%q on %q, which is not a live node", s.webName, cur.Node)
		}
		if err := checkPlaced(cur, func(string) bool { return true }); err != nil {
			return false, err
		}
		if err := s.fetch(ctx, cur.url()); err != nil {
			return false, err
		}
		in = cur
		return true, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	s.m.ReplacementMS = time.Since(s.killedAt).Milliseconds()
	nh := s.g.byPeer(in.Node)
	s.web, s.webHost = in, nh
	// Show the re-auction when the requester ran it (a guardian may have).
	var lines []string
	var all []auction
	if err := s.requester.client.Get(ctx, "/v1/auctions", &all); err == nil {
		if a, ok := findAuction(all, in.InstanceID, s.webName); ok && a.Winner == in.Node {
			lines = append(lines, fmt.Sprintf("re-auction by %s (%s, epoch %v): %d bids, %d declines, winner %s",
				s.requester.name, a.Reason, a.Epoch, len(a.Bids), len(a.Declines), s.nodeLabel(a.Winner)))
		}
	}
	return Outcome{
		Lines:  lines,
		Detail: fmt.Sprintf("%q moved from %s to %s (epoch %v) and serves %s again, %d ms after the kill", s.webName, old.name, nh.name, in.Epoch, in.url(), s.m.ReplacementMS),
		Data:   map[string]any{"host": in.Node, "url": in.url(), "replacement_ms": s.m.ReplacementMS, "epoch": in.Epoch},
	}, nil
}

func (s *session) audit(ctx context.Context, n *node) (auditReport, error) {
	var a auditReport
	err := s.g.cliReport(ctx, n, &a, "ledger", "audit")
	return a, err
}

// statementLine is the part of a statement line (`weft ledger statement
// --json`) the demo reads.
type statementLine struct {
	Instance string `json:"instance_id"`
	Provider string `json:"provider"`
	Epoch    any    `json:"epoch"`
	Slice    any    `json:"slice"`
	Amount   any    `json:"amount"`
	Status   string `json:"status"`
}

// hostReceipts counts the statement lines of the requester that bill the
// followed instance from its current host, and how many are acknowledged.
func hostReceipts(lines []statementLine, instanceID, host string) (n, acked int) {
	for _, l := range lines {
		if l.Instance == instanceID && l.Provider == host {
			n++
			if l.Status == "acked" {
				acked++
			}
		}
	}
	return n, acked
}

// wantHostReceipts is how many slices of receipts from the new host the
// demo waits for.
const wantHostReceipts = 3

func stepReceipts(ctx context.Context, s *session) (Outcome, error) {
	var n, acked int
	var total int
	err := poll(ctx, s.cfg.Slice/4, func(ctx context.Context) (bool, error) {
		var st struct {
			Lines []statementLine `json:"lines"`
		}
		if err := s.g.cli(ctx, s.requester, &st, "ledger", "statement", "--requester", s.requester.peerID); err != nil {
			return false, err
		}
		n, acked = hostReceipts(st.Lines, s.web.InstanceID, s.web.Node)
		total = len(st.Lines)
		if n < wantHostReceipts {
			return false, fmt.Errorf("%d receipts for %q from its new host %s in %s's statement, waiting for %d",
				n, s.webName, s.webHost.name, s.requester.name, wantHostReceipts)
		}
		return true, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	return Outcome{
		Detail: fmt.Sprintf("%d slices of %q billed by its new host %s (%d acknowledged by %s); %d receipts in %s's statement",
			n, s.webName, s.webHost.name, acked, s.requester.name, total, s.requester.name),
		Data: map[string]any{"host_receipts": n, "acked": acked, "statement_receipts": total},
	}, nil
}

func stepAudit(ctx context.Context, s *session) (Outcome, error) {
	nodes := s.g.live()
	names := nodeNames(nodes)
	var audits []auditReport
	var root string
	err := poll(ctx, 200*time.Millisecond, func(ctx context.Context) (bool, error) {
		as := make([]auditReport, len(nodes))
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, n := range nodes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				as[i], errs[i] = s.audit(ctx, n)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return false, err
		}
		r, err := rootsAgree(names, as)
		if err != nil {
			return false, err
		}
		audits, root = as, r
		return true, nil
	})
	if err != nil {
		return Outcome{}, err
	}
	s.m.Root, s.m.Receipts = root, audits[0].Receipts
	var lines []string
	for i, a := range audits {
		acked := ""
		if a.Acked != nil {
			acked = fmt.Sprintf(" (%d acknowledged)", *a.Acked)
		}
		lines = append(lines, fmt.Sprintf("%s  ok  %d entries  %d receipts%s  root %s", names[i], a.Entries, a.Receipts, acked, a.Root))
	}
	return Outcome{
		Detail: fmt.Sprintf("%d live nodes audit ok with the same root %s over %d receipts", len(nodes), short(root), s.m.Receipts),
		Lines:  lines,
		Data:   map[string]any{"root": root, "receipts": s.m.Receipts, "entries": audits[0].Entries},
	}, nil
}

func stepStatement(ctx context.Context, s *session) (Outcome, error) {
	var raw json.RawMessage
	if err := s.g.cli(ctx, s.requester, &raw, "ledger", "statement", "--requester", s.requester.peerID); err != nil {
		return Outcome{}, err
	}
	if err := checkStatement(raw); err != nil {
		return Outcome{}, fmt.Errorf("statement for requester %s: %w", s.requester.name, err)
	}
	text, err := s.g.cliText(ctx, s.requester, "ledger", "statement", "--requester", s.requester.peerID)
	if err != nil {
		return Outcome{}, err
	}
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("… (%d more lines)", len(lines)-20))
	}
	return Outcome{
		Detail: fmt.Sprintf("statement for requester %s (%s)", s.requester.name, short(s.requester.peerID)),
		Lines:  lines,
		Data:   map[string]any{"statement": raw},
	}, nil
}

func stepDashboard(ctx context.Context, s *session) (Outcome, error) {
	n := s.requester
	if n == nil {
		n = s.g.live()[0]
	}
	var ui struct {
		URL string `json:"url"`
	}
	if err := s.g.cli(ctx, n, &ui, "ui"); err != nil {
		return Outcome{}, err
	}
	if ui.URL == "" {
		return Outcome{}, fmt.Errorf("weft ui on %s printed no url", n.name)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return Outcome{}, err
	}
	c := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ui.URL, nil)
	if err != nil {
		return Outcome{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return Outcome{}, fmt.Errorf("opening the dashboard URL of %s: %w", n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(b)), "<html") {
		return Outcome{}, fmt.Errorf("the dashboard URL of %s answered %s with %d bytes, not the page", n.name, resp.Status, len(b))
	}
	// Logged in: the cookie now opens the API routes the page reads.
	sreq, err := http.NewRequestWithContext(ctx, http.MethodGet, n.client.Base+"/v1/status", nil)
	if err != nil {
		return Outcome{}, err
	}
	sresp, err := c.Do(sreq)
	if err != nil {
		return Outcome{}, err
	}
	sresp.Body.Close()
	if sresp.StatusCode != http.StatusOK {
		return Outcome{}, fmt.Errorf("after logging in through the dashboard URL, GET /v1/status answered %s", sresp.Status)
	}
	return Outcome{Detail: fmt.Sprintf("%s serves the dashboard (%d bytes) and the login cookie opens the API; `weft --data-dir %s ui` prints its URL", n.name, len(b), n.name)}, nil
}

// keepInfo returns the lines that tell how to reach a kept grid.
func keepInfo(bin string, nodes []*node) []string {
	lines := []string{"the grid keeps running; press Ctrl-C to stop it and remove its folder."}
	var first *node
	for _, n := range nodes {
		if n.killed {
			continue
		}
		if first == nil {
			first = n
		}
		lines = append(lines, fmt.Sprintf("  %s  %s --data-dir %s status   (log: %s)", n.name, bin, n.dir, n.logPath))
	}
	if first != nil {
		lines = append(lines, "  dashboard URL: "+bin+" --data-dir "+first.dir+" ui")
	}
	return lines
}
