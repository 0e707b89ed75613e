package test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestMarketGuardianAndFencing: the requester goes offline, then the host
// of its instance is killed; a guardian named in the request re-places the
// instance on the other labelled host. The killed host is then restarted:
// its partitions bring back the old copy (epoch 1), which the node stops
// once it learns of the newer contract. Last, the requester restarts and
// still knows its instance, on its new host.
func TestMarketGuardianAndFencing(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester")
	g.start("host1", "--label", "role=host")
	g.start("host2", "--label", "role=host")
	g.start("other")
	g.converge()
	if _, _, err := g.weft(req, "tool", "httpd", "--help"); err != nil {
		t.Skip("weft tool httpd (run by the webserver example) is not in this binary")
	}
	web := repoFile(t, "recipes/examples/webserver.toml")
	var placed mktInstance
	g.mustJSON(req, &placed, "request", "web", "--recipe", web, "--param", "message=guarded", "--sla", "label.role=host", "--wait", "--json")
	host := g.byPeer(placed.Node)
	if host == nil || placed.State != "started" {
		t.Fatalf("placed: %+v", placed)
	}
	// The guardians learn of the placement.
	mktPoll(t, 10*time.Second, func() error {
		for _, n := range g.nodes {
			if n == req || n == host {
				continue
			}
			var list []mktInstance
			g.mustJSON(n, &list, "instance", "list", "--json")
			for _, in := range list {
				if in.InstanceID == placed.InstanceID && in.Node == placed.Node {
					return nil
				}
			}
		}
		return fmt.Errorf("no guardian tracks the instance yet")
	})

	g.stop(req)
	g.kill(host)
	var moved mktInstance
	var by *mktNode
	mktPoll(t, 45*time.Second, func() error {
		seen := ""
		for _, n := range g.nodes {
			if n.killed {
				continue
			}
			var list []mktInstance
			g.mustJSON(n, &list, "instance", "list", "--json")
			for _, in := range list {
				seen += fmt.Sprintf(" %s: %s on %.12s epoch %d (%s);", n.name, in.State, in.Node, in.Epoch, in.Reason)
				if in.InstanceID == placed.InstanceID && in.Node != "" && in.Node != host.peerID && in.State == "started" {
					if err := fetchPage(in.Connection["url"], "guarded"); err != nil {
						return err
					}
					moved, by = in, n
					return nil
				}
			}
		}
		return fmt.Errorf("no live node sees the instance re-placed:%s", seen)
	})
	if moved.Epoch <= placed.Epoch || g.byPeer(moved.Node) == nil {
		t.Fatalf("re-placed by guardian %s: %+v", by.name, moved)
	}

	// The old host comes back with its stale copy; the newer contract
	// reaches it through the ledger and the copy is destroyed.
	back := g.restart(host, "--label", "role=host")
	mktPoll(t, 45*time.Second, func() error {
		var parts []struct {
			InstanceID string `json:"instance_id"`
			Phase      string `json:"phase"`
		}
		if err := json.Unmarshal(g.weftOK(back, "partition", "list", "--json"), &parts); err != nil {
			return err
		}
		for _, p := range parts {
			if p.InstanceID == placed.InstanceID {
				return fmt.Errorf("the restarted host still has the stale copy (phase %s)", p.Phase)
			}
		}
		return nil
	})
	if err := fetchPage(moved.Connection["url"], "guarded"); err != nil {
		t.Fatalf("the re-placed instance stopped serving: %v", err)
	}

	// The requester comes back: it still knows its instance, now on the
	// node the guardian chose.
	req2 := g.restart(req)
	mktPoll(t, 30*time.Second, func() error {
		var in mktInstance
		if err := json.Unmarshal(g.weftOK(req2, "instance", "show", "web", "--json"), &in); err != nil {
			return err
		}
		if in.Node != moved.Node || in.State != "started" || in.Epoch != moved.Epoch {
			return fmt.Errorf("the restarted requester sees %s on %.12s epoch %d (%s)", in.State, in.Node, in.Epoch, in.Reason)
		}
		return nil
	})

	// The guardian wrote the re-placement's contract itself, under the
	// requester's delegation: every node's audit accepts it (it used to
	// report bad_contract, and ok false, for good) and counts no unbilled
	// slice.
	mktPoll(t, 45*time.Second, func() error {
		for _, n := range g.nodes {
			if n.killed {
				continue
			}
			var a billingAudit
			so, _, _ := g.weft(n, "ledger", "audit", "--json") // exits 1 when not ok
			if err := json.Unmarshal([]byte(so), &a); err != nil {
				return fmt.Errorf("audit on %s: %v", n.name, err)
			}
			if !a.OK || a.Unbilled != 0 || a.Entries == 0 {
				return fmt.Errorf("audit on %s: ok %v, %d entries, %d unbilled, problems %+v", n.name, a.OK, a.Entries, a.Unbilled, a.Problems)
			}
		}
		return nil
	})
}
