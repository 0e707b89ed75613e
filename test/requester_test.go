package test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRequesterSeat runs a requester-only node (--partitions 0) beside one
// host: the requester never bids and advertises no capacity, yet publishes
// requests, re-requests them without their recipe, and sees their
// versions, events, auctions and logs from its own node.
func TestRequesterSeat(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester", "--partitions", "0", "--slice", "500ms")
	host := g.start("host", "--slice", "500ms")
	g.converge()
	web := repoFile(t, "recipes/examples/webserver.toml")

	t.Run("version", func(t *testing.T) {
		so, se, err := g.weft(req, "version")
		if err != nil || !strings.HasPrefix(so, "weft ") {
			t.Fatalf("weft version: %v %q %q", err, so, se)
		}
		so2, _, err := g.weft(req, "--version")
		if err != nil || strings.SplitN(so, "\n", 2)[0] != strings.TrimSpace(so2) {
			t.Fatalf("weft --version %q, weft version %q (%v)", so2, so, err)
		}
		var st struct {
			Version string `json:"version"`
		}
		g.mustJSON(req, &st, "status", "--json")
		if "weft "+st.Version != strings.TrimSpace(so2) {
			t.Fatalf("status version %q, binary %q", st.Version, so2)
		}
		// The host advertises its version to the requester.
		mktPoll(t, 10*time.Second, func() error {
			var peers []struct {
				PeerID string `json:"peer_id"`
				Advert struct {
					Version string `json:"version"`
					NoBids  bool   `json:"no_bids"`
				} `json:"advert"`
			}
			g.mustJSON(req, &peers, "peers", "--json")
			for _, p := range peers {
				want := p.PeerID == req.peerID
				if p.Advert.Version != st.Version || p.Advert.NoBids != want {
					return fmt.Errorf("peer %s advertises version %q no_bids %v; want %q, %v", p.PeerID, p.Advert.Version, p.Advert.NoBids, st.Version, want)
				}
			}
			return nil
		})
	})

	t.Run("requester-only node", func(t *testing.T) {
		var st struct {
			Partitions struct {
				Total *int `json:"total"`
			} `json:"partitions"`
		}
		g.mustJSON(req, &st, "status", "--json")
		if st.Partitions.Total == nil || *st.Partitions.Total != 0 {
			t.Fatalf("status partitions.total = %v, want 0", st.Partitions.Total)
		}
	})

	var placed mktInstance
	g.mustJSON(req, &placed, "request", "web", "--recipe", web, "--param", "message=seat", "--wait", "--json")
	if placed.State != "started" || placed.Node != host.peerID {
		t.Fatalf("placed %+v; want started on the host %s", placed, host.peerID)
	}
	t.Run("re-request without the recipe", func(t *testing.T) {
		mktPoll(t, 10*time.Second, func() error { return fetchPage(placed.Connection["url"], "seat") })
		var in mktInstance
		g.mustJSON(req, &in, "request", "web", "--state", "stopped", "--wait", "--json")
		if in.State != "stopped" {
			t.Fatalf("stopped: %+v", in)
		}
		// The stop ends the contract's billing, in the requester's
		// replica too (the host's end, or the requester's own bound).
		mktPoll(t, 20*time.Second, func() error {
			_, endAt, state := billingOf(nil, ledgerEntries(g, req, "end"), ledgerEntries(g, req, "contract"), placed.InstanceID, placed.Epoch)
			if endAt == 0 || state != "stopped" {
				return fmt.Errorf("no end of billing of epoch %d in the requester's ledger (%q)", placed.Epoch, state)
			}
			return nil
		})
		// Started again: a new contract (epoch), on the host holding the
		// stopped copy.
		g.mustJSON(req, &in, "request", "web", "--state", "started", "--wait", "--json")
		if in.State != "started" || in.Node != host.peerID || in.Epoch <= placed.Epoch {
			t.Fatalf("started again: %+v, want a newer epoch than %d on the host", in, placed.Epoch)
		}
		// The stored parameters came back with the stored recipe.
		mktPoll(t, 10*time.Second, func() error { return fetchPage(in.Connection["url"], "seat") })
		// One --param overrides one value.
		g.mustJSON(req, &in, "request", "web", "--param", "message=reseated", "--wait", "--json")
		if err := fetchPage(in.Connection["url"], "reseated"); err != nil {
			t.Fatal(err)
		}
		placed = in
		// A new name still needs a recipe.
		if _, se, err := g.weft(req, "request", "nothing-yet", "--state", "started"); err == nil || !strings.Contains(se, "--recipe") {
			t.Fatalf("a new instance without --recipe: %v %s", err, se)
		}
	})

	t.Run("jobs and purges", func(t *testing.T) {
		primes := repoFile(t, "recipes/examples/primes.toml")
		var job struct {
			ID     string `json:"id"`
			Result string `json:"result"`
		}
		g.mustJSON(req, &job, "job", "run", "--recipe", primes, "--param", "n=1000", "--wait", "--json")
		type entry struct {
			Name    string  `json:"name"`
			State   string  `json:"state"`
			Result  *string `json:"result"`
			Node    *string `json:"node"`
			Started *string `json:"started"`
		}
		mktPoll(t, 20*time.Second, func() error {
			var jobs []map[string]json.RawMessage
			g.mustJSON(req, &jobs, "job", "list", "--json")
			var es []entry
			g.mustJSON(req, &es, "job", "list", "--json")
			for i, e := range es {
				for _, k := range []string{"name", "state", "result"} {
					if _, ok := jobs[i][k]; !ok {
						t.Fatalf("job list entry without %q: %v", k, jobs[i])
					}
				}
				if e.Name == job.ID && e.State == "done" && e.Result != nil && *e.Result == job.Result && e.Node != nil && *e.Node == host.peerID && e.Started != nil {
					return nil
				}
			}
			return fmt.Errorf("job %s not done with result %s in %+v", job.ID, job.Result, es)
		})
		// A destroyed instance leaves instance list, stays in --all until purged.
		var in mktInstance
		g.mustJSON(req, &in, "request", "brief", "--recipe", web, "--wait", "--json")
		if _, se, err := g.weft(req, "instance", "purge", "brief"); err == nil {
			t.Fatalf("purged a started instance: %s", se)
		}
		g.mustJSON(req, &in, "request", "brief", "--state", "destroyed", "--wait", "--json")
		has := func(all bool, name string) bool {
			args := []string{"instance", "list", "--json"}
			if all {
				args = append(args, "--all")
			}
			var list []mktInstance
			g.mustJSON(req, &list, args...)
			for _, v := range list {
				if v.Name == name {
					return true
				}
			}
			return false
		}
		if has(false, "brief") || !has(true, "brief") {
			t.Fatalf("destroyed instance: in list %v, in list --all %v", has(false, "brief"), has(true, "brief"))
		}
		var purged []string
		g.mustJSON(req, &purged, "instance", "purge", "brief", "--json")
		if has(true, "brief") {
			t.Fatal("purged instance still listed with --all")
		}
		// The finished job purges once its instance is destroyed.
		mktPoll(t, 20*time.Second, func() error {
			g.mustJSON(req, &purged, "job", "purge", "--json")
			if has(true, job.ID) {
				return fmt.Errorf("job %s still listed after purge %v", job.ID, purged)
			}
			return nil
		})
	})

	t.Run("events and why", func(t *testing.T) {
		mktPoll(t, 10*time.Second, func() error {
			var raw []map[string]json.RawMessage
			g.mustJSON(req, &raw, "instance", "events", "web", "--json")
			seen := map[string]bool{}
			for _, e := range raw {
				for _, k := range []string{"time", "kind", "node", "detail"} {
					if _, ok := e[k]; !ok {
						t.Fatalf("event without %q: %v", k, e)
					}
				}
				var kind string
				_ = json.Unmarshal(e["kind"], &kind)
				seen[kind] = true
				if kind == "requested" && string(e["node"]) != "null" {
					t.Fatalf("a request names a node: %v", e)
				}
				if kind == "started" && string(e["node"]) != `"`+host.peerID+`"` {
					t.Fatalf("started elsewhere than on the host: %v", e)
				}
			}
			for _, k := range []string{"requested", "auctioned", "awarded", "started", "stopped"} {
				if !seen[k] {
					return fmt.Errorf("no %q event in %d events", k, len(raw))
				}
			}
			return nil
		})
		var show struct {
			Events []struct {
				Kind string `json:"kind"`
			} `json:"events"`
		}
		g.mustJSON(req, &show, "instance", "show", "web", "--json")
		if len(show.Events) == 0 {
			t.Fatal("instance show has no events")
		}
		var why struct {
			Auction struct {
				Winner string `json:"winner"`
			} `json:"auction"`
			Ranked []struct {
				Node   string `json:"node"`
				Winner bool   `json:"winner"`
			} `json:"ranked"`
		}
		g.mustJSON(req, &why, "instance", "why", "web", "--json")
		if why.Auction.Winner != host.peerID || len(why.Ranked) != 1 || why.Ranked[0].Node != host.peerID || !why.Ranked[0].Winner {
			t.Fatalf("why: %+v", why)
		}
	})

	t.Run("remote logs", func(t *testing.T) {
		// The webserver writes "serving on http://…" to its log on the host.
		mktPoll(t, 10*time.Second, func() error {
			so, se, err := g.weft(req, "instance", "logs", "web", "--tail", "20")
			if err != nil || !strings.Contains(so, "==> httpd <==") || !strings.Contains(so, "serving on http://") {
				return fmt.Errorf("instance logs: %v %q %q", err, so, se)
			}
			return nil
		})
		var in mktInstance
		g.mustJSON(req, &in, "request", "web", "--state", "stopped", "--wait", "--json")
		// A stopped instance's logs: from the requester, and on the host.
		so, se, err := g.weft(req, "instance", "logs", "web", "--process", "httpd", "--tail", "5")
		if err != nil || !strings.Contains(so, "serving on http://") {
			t.Fatalf("logs of the stopped instance: %v %q %q", err, so, se)
		}
		so, se, err = g.weft(host, "partition", "logs", in.InstanceID, "--tail", "5")
		if err != nil || !strings.Contains(so, "serving on http://") {
			t.Fatalf("partition logs of the stopped instance on its host: %v %q %q", err, so, se)
		}
		if _, se, err := g.weft(req, "instance", "logs", "web", "--process", "../../etc/passwd"); err == nil {
			t.Fatalf("a path as process name was served: %s", se)
		}
		g.mustJSON(req, &in, "request", "web", "--state", "started", "--wait", "--json")
	})

	// Neither the requester's own auctions nor the host's list the
	// requester-only node as a bidder (nor a decliner).
	for _, n := range []*mktNode{req, host} {
		var auctions []struct {
			Bids []struct {
				Node string `json:"node"`
			} `json:"bids"`
			Declines []struct {
				Node string `json:"node"`
			} `json:"declines"`
		}
		apiGet(t, n, "/v1/auctions", &auctions)
		for _, a := range auctions {
			for _, b := range a.Bids {
				if b.Node == req.peerID {
					t.Fatalf("the requester-only node bid: %+v", auctions)
				}
			}
			for _, d := range a.Declines {
				if d.Node == req.peerID {
					t.Fatalf("the requester-only node declined (it is no bidder): %+v", auctions)
				}
			}
		}
	}
}

// apiGet reads path from n's local API into v.
func apiGet(t testing.TB, n *mktNode, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dir, "api.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ep struct{ Addr, Token string }
	if err := json.Unmarshal(b, &ep); err != nil {
		t.Fatal(err)
	}
	hr, _ := http.NewRequest(http.MethodGet, "http://"+ep.Addr+path, nil)
	hr.Header.Set("Authorization", "Bearer "+ep.Token)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestNodeDrain drains the host of an instance: the host stops bidding,
// its instance is re-placed on the other host (the requester's timeline
// says why), drain --wait returns once it hosts nothing, and undrain puts
// it back.
func TestNodeDrain(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester", "--partitions", "0", "--slice", "500ms")
	g.start("host1", "--slice", "500ms")
	g.start("host2", "--slice", "500ms")
	g.converge()
	web := repoFile(t, "recipes/examples/webserver.toml")
	var in mktInstance
	g.mustJSON(req, &in, "request", "web", "--recipe", web, "--param", "message=drained", "--wait", "--json")
	from := g.byPeer(in.Node)
	if from == nil || from == req {
		t.Fatalf("placed on %q", in.Node)
	}
	var d struct {
		Draining bool     `json:"draining"`
		Hosted   []string `json:"hosted"`
	}
	g.mustJSON(from, &d, "node", "drain", "--wait", "--json")
	if !d.Draining || len(d.Hosted) != 0 {
		t.Fatalf("drain --wait: %+v", d)
	}
	mktPoll(t, 30*time.Second, func() error {
		g.mustJSON(req, &in, "instance", "show", "web", "--json")
		if in.Node == from.peerID || in.State != "started" {
			return fmt.Errorf("not re-placed yet: %+v", in)
		}
		return nil
	})
	if err := fetchPage(in.Connection["url"], "drained"); err != nil {
		t.Fatal(err)
	}
	var events []struct {
		Kind   string `json:"kind"`
		Detail string `json:"detail"`
	}
	g.mustJSON(req, &events, "instance", "events", "web", "--json")
	found := false
	for _, e := range events {
		found = found || e.Kind == "replaced" && strings.Contains(e.Detail, "host draining")
	}
	if !found {
		t.Fatalf("no re-placement for draining in %+v", events)
	}
	// The drained node advertises no_bids until undrained.
	mktPoll(t, 10*time.Second, func() error {
		var peers []struct {
			PeerID string `json:"peer_id"`
			Advert struct {
				NoBids bool `json:"no_bids"`
			} `json:"advert"`
		}
		g.mustJSON(req, &peers, "peers", "--json")
		for _, p := range peers {
			if p.PeerID == from.peerID && !p.Advert.NoBids {
				return fmt.Errorf("the drained node advertises bids")
			}
		}
		return nil
	})
	g.mustJSON(from, &d, "node", "undrain", "--json")
	if d.Draining {
		t.Fatalf("undrain: %+v", d)
	}
}
