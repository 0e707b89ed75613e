package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fetchPage GETs url and checks the page holds want.
func fetchPage(url, want string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), want) {
		return fmt.Errorf("GET %s: %s %.100q, want a page holding %q", url, resp.Status, b, want)
	}
	return nil
}

// TestMarketGrid runs a three-node grid of real `weft node` processes: a
// requester without the host label and two hosts with it. It places the
// webserver example through an auction and fetches its URL; pins an
// instance to a node; checks that an unplaceable request fails with the
// aggregated explanation and that an unknown constraint is refused; runs
// the primes batch job and fetches its result on another node; then kills
// the web server's host and waits for the instance to serve again
// elsewhere with updated connection parameters.
func TestMarketGrid(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester", "--slice", "500ms")
	h1 := g.start("host1", "--label", "role=host", "--slice", "500ms")
	h2 := g.start("host2", "--label", "role=host", "--slice", "500ms",
		"--veto-hook", `if grep -q '"name":"veto-'; then echo "no veto- instances here"; exit 1; fi`)
	g.converge()

	web := repoFile(t, "recipes/examples/webserver.toml")
	primes := repoFile(t, "recipes/examples/primes.toml")
	_, _, toolErr := g.weft(req, "tool", "httpd", "--help")
	haveHTTPD := toolErr == nil

	t.Run("unknown constraint refused", func(t *testing.T) {
		_, se, err := g.weft(req, "request", "x", "--recipe", web, "--sla", "colour=red")
		if err == nil || !strings.Contains(se, `"colour"`) {
			t.Fatalf("request with --sla colour=red: err %v, stderr %q; want a failure naming the key", err, se)
		}
	})
	t.Run("bad params refused before publishing", func(t *testing.T) {
		_, se, err := g.weft(req, "request", "x", "--recipe", web, "--param", "nonsense=1")
		if err == nil || !strings.Contains(se, "nonsense") {
			t.Fatalf("request with an unknown param: err %v, stderr %q", err, se)
		}
	})
	t.Run("unplaceable explained", func(t *testing.T) {
		so, se, err := g.weft(req, "request", "nowhere", "--recipe", web, "--sla", "region=mars", "--wait")
		if err == nil {
			t.Fatalf("an unplaceable request succeeded: %s", so)
		}
		if !strings.Contains(se, "no node placed nowhere") || !strings.Contains(se, "3 excluded by region=mars") {
			t.Fatalf("stderr %q: want the aggregated explanation", se)
		}
	})
	t.Run("batch job result fetched on another node", func(t *testing.T) {
		var job struct {
			State      string `json:"state"`
			Result     string `json:"result"`
			Node       string `json:"node"`
			InstanceID string `json:"instance_id"`
		}
		g.mustJSON(h1, &job, "job", "run", "--recipe", primes, "--param", "n=100000", "--wait", "--json")
		if job.State != "done" || job.Result == "" {
			t.Fatalf("job: %+v", job)
		}
		// Fetch it on a node that neither asked for it nor (necessarily) ran it.
		f := h2
		if job.Node == h2.peerID {
			f = req
		}
		out := filepath.Join(t.TempDir(), "result")
		if _, se, err := g.weft(f, "job", "result", job.Result, "--out", out); err != nil {
			t.Fatalf("job result on %s: %v: %s", f.name, err, se)
		}
		b, err := os.ReadFile(filepath.Join(out, "count.txt"))
		if err != nil || strings.TrimSpace(string(b)) != "9592" {
			t.Fatalf("count.txt: %q, %v; want 9592", b, err)
		}
		// Once its requester holds the result, the job's partition is freed
		// and the job still shows its result.
		host := g.byPeer(job.Node)
		mktPoll(t, 20*time.Second, func() error {
			var parts []struct {
				InstanceID string `json:"instance_id"`
			}
			if err := json.Unmarshal(g.weftOK(host, "partition", "list", "--json"), &parts); err != nil {
				return err
			}
			for _, p := range parts {
				if p.InstanceID == job.InstanceID {
					return fmt.Errorf("the finished job still holds a partition on %s", host.name)
				}
			}
			return nil
		})
		var again struct {
			State  string `json:"state"`
			Result string `json:"result"`
		}
		g.mustJSON(h1, &again, "job", "run", "--recipe", primes, "--param", "n=100000", "--wait", "--json")
		if again.State != "done" || again.Result != job.Result {
			t.Fatalf("the same job again: %+v, want done with %s", again, job.Result)
		}
	})
	if !haveHTTPD {
		t.Skip("weft tool httpd (run by the webserver example) is not in this binary; the web placement tests need it")
	}
	t.Run("veto hook", func(t *testing.T) {
		_, se, err := g.weft(req, "request", "veto-me", "--recipe", web, "--sla", "node="+h2.peerID, "--wait")
		if err == nil || !strings.Contains(se, "no veto- instances here") {
			t.Fatalf("vetoed request: err %v, stderr %q; want the hook's reason", err, se)
		}
	})
	t.Run("anti-affinity", func(t *testing.T) {
		var a, b mktInstance
		g.mustJSON(req, &a, "request", "aa-1", "--recipe", web, "--sla", "label.role=host", "--sla", "anti_affinity=pair", "--wait", "--json")
		g.mustJSON(req, &b, "request", "aa-2", "--recipe", web, "--sla", "label.role=host", "--sla", "anti_affinity=pair", "--wait", "--json")
		if a.Node == "" || a.Node == b.Node {
			t.Fatalf("anti-affine instances on %s and %s", a.Node, b.Node)
		}
		for _, n := range []string{"aa-1", "aa-2"} {
			g.mustJSON(req, &a, "request", n, "--state", "destroyed", "--wait", "--json")
		}
	})
	t.Run("pinned to a node", func(t *testing.T) {
		var in mktInstance
		g.mustJSON(req, &in, "request", "pinned", "--recipe", web, "--sla", "node="+h2.peerID, "--wait", "--json")
		if in.Node != h2.peerID || in.State != "started" {
			t.Fatalf("pinned instance: %+v; want started on %s", in, h2.peerID)
		}
		g.mustJSON(req, &in, "request", "pinned", "--recipe", web, "--sla", "node="+h2.peerID, "--state", "stopped", "--wait", "--json")
		if in.State != "stopped" || in.Node != h2.peerID {
			t.Fatalf("stopped instance: %+v", in)
		}
		g.mustJSON(req, &in, "request", "pinned", "--recipe", web, "--state", "destroyed", "--wait", "--json")
		if in.State != "destroyed" {
			t.Fatalf("destroyed instance: %+v", in)
		}
	})

	var placed mktInstance
	g.mustJSON(req, &placed, "request", "web", "--recipe", web, "--param", "message=woven", "--sla", "label.role=host", "--wait", "--json")
	host := g.byPeer(placed.Node)
	if placed.State != "started" || host == nil || host == req || placed.Connection["url"] == "" || placed.InstanceID == "" {
		t.Fatalf("placed: %+v; want started on a host with a url", placed)
	}
	mktPoll(t, 10*time.Second, func() error { return fetchPage(placed.Connection["url"], "woven") })
	// Requesting again with another parameter updates it in place.
	var updated mktInstance
	g.mustJSON(req, &updated, "request", "web", "--recipe", web, "--param", "message=rewoven", "--sla", "label.role=host", "--wait", "--json")
	if updated.Node != placed.Node || updated.InstanceID != placed.InstanceID {
		t.Fatalf("update moved the instance: %+v, before %+v", updated, placed)
	}
	// --wait returned only once the host applied the update: the page it
	// serves already holds the new message.
	if updated.State != "started" || updated.StatusGeneration < updated.Generation {
		t.Fatalf("update --wait returned before the host applied it: %+v", updated)
	}
	if err := fetchPage(updated.Connection["url"], "rewoven"); err != nil {
		t.Fatalf("right after update --wait: %v", err)
	}
	placed = updated
	var list []mktInstance
	g.mustJSON(req, &list, "instance", "list", "--json")
	found := false
	for _, in := range list {
		found = found || in.Name == "web" && in.Node == placed.Node
	}
	if !found {
		t.Fatalf("instance list: %+v", list)
	}

	g.kill(host)
	var moved mktInstance
	mktPoll(t, 45*time.Second, func() error {
		g.mustJSON(req, &moved, "instance", "show", "web", "--json")
		switch {
		case moved.Node == host.peerID || moved.Node == "":
			return fmt.Errorf("still on the killed host (state %s, %s)", moved.State, moved.Reason)
		case moved.State != "started":
			return fmt.Errorf("on %s in state %s (%s)", moved.Node, moved.State, moved.Reason)
		}
		return fetchPage(moved.Connection["url"], "rewoven")
	})
	if moved.Epoch <= placed.Epoch || moved.Connection["url"] == placed.Connection["url"] || g.byPeer(moved.Node) == req {
		t.Fatalf("after the kill: %+v; before: %+v", moved, placed)
	}

	// The contracts went to the ledger: the live nodes bill the instances
	// (including one the requester hosts itself) and their audits pass.
	var self mktInstance
	g.mustJSON(req, &self, "request", "self", "--recipe", web, "--sla", "node="+req.peerID, "--wait", "--json")
	if self.Node != req.peerID || self.State != "started" {
		t.Fatalf("self-hosted instance: %+v", self)
	}
	mktPoll(t, 20*time.Second, func() error {
		for _, n := range []*mktNode{req, g.byPeer(moved.Node)} {
			var a struct {
				OK       bool  `json:"ok"`
				Receipts int   `json:"receipts"`
				Problems []any `json:"problems"`
			}
			so, se, err := g.weft(n, "ledger", "audit", "--json")
			if jerr := json.Unmarshal([]byte(so), &a); jerr != nil {
				return fmt.Errorf("ledger audit on %s: %v %v: %s", n.name, err, jerr, se)
			}
			if !a.OK || a.Receipts < 3 {
				first := any(nil)
				if len(a.Problems) > 0 {
					first = a.Problems[0]
				}
				return fmt.Errorf("ledger audit on %s: ok %v, %d receipts, %d problems, the first: %v", n.name, a.OK, a.Receipts, len(a.Problems), first)
			}
		}
		return nil
	})

	// A request that asked to wait for capacity is placed when a fitting
	// node joins.
	var later mktInstance
	g.mustJSON(req, &later, "request", "later", "--recipe", web, "--sla", "region=late", "--sla", "wait_for_capacity=true", "--json")
	mktPoll(t, 10*time.Second, func() error {
		g.mustJSON(req, &later, "instance", "show", "later", "--json")
		if later.State != "waiting" || !strings.Contains(later.Reason, "excluded by region=late") {
			return fmt.Errorf("state %s (%s), want waiting with the explanation", later.State, later.Reason)
		}
		return nil
	})
	late := g.start("late", "--label", "region=late", "--slice", "500ms")
	mktPoll(t, 30*time.Second, func() error {
		g.mustJSON(req, &later, "instance", "show", "later", "--json")
		if later.Node != late.peerID || later.State != "started" {
			return fmt.Errorf("state %s on %.12s (%s)", later.State, later.Node, later.Reason)
		}
		return nil
	})
}
