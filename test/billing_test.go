package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// billingAudit is the part of `weft ledger audit --json` these tests read.
type billingAudit struct {
	OK       bool `json:"ok"`
	Entries  int  `json:"entries"`
	Receipts int  `json:"receipts"`
	Acked    int  `json:"acked"`
	Unbilled int  `json:"unbilled"`
	Late     int  `json:"late"`
	Problems []struct {
		Code    string `json:"code"`
		Problem string `json:"problem"`
	} `json:"problems"`
	UnauthorizedGrants []string `json:"unauthorized_grants"`
}

// TestGridOfOneBills: a node alone is a grid of one. It places a request
// on itself, bills every slice and acknowledges its own receipts; a grant
// by it (it is no granter of the public grid) is refused before anything
// is written and moves no balance; a job that fails frees the node's only
// partition, and a request made right after, waiting for capacity, is
// placed there.
func TestGridOfOneBills(t *testing.T) {
	g := newMktGrid(t)
	n := g.start("solo", "--slice", "500ms", "--partitions", "1")
	web := repoFile(t, "recipes/examples/webserver.toml")

	var placed mktInstance
	g.mustJSON(n, &placed, "request", "web", "--recipe", web, "--param", "message=solo", "--wait", "--json")
	if placed.State != "started" || placed.Node != n.peerID {
		t.Fatalf("placed %+v, want started on the node itself", placed)
	}
	mktPoll(t, 30*time.Second, func() error {
		var a billingAudit
		so, _, _ := g.weft(n, "ledger", "audit", "--json")
		if err := json.Unmarshal([]byte(so), &a); err != nil {
			return err
		}
		if !a.OK || a.Receipts < 4 || a.Acked < 4 {
			return fmt.Errorf("audit ok %v, %d receipts, %d acked, problems %+v", a.OK, a.Receipts, a.Acked, a.Problems)
		}
		return nil
	})

	t.Run("a stranger's grant", func(t *testing.T) {
		var before []json.RawMessage
		g.mustJSON(n, &before, "ledger", "balance", "--json")
		so, se, err := g.weft(n, "ledger", "grant", n.peerID, "999999999999")
		if err == nil || !strings.Contains(se, "not a granter") {
			t.Fatalf("grant by a non-granter: err %v, stdout %q, stderr %q", err, so, se)
		}
		var after []struct {
			Peer    string `json:"peer"`
			Granted uint64 `json:"granted"`
		}
		g.mustJSON(n, &after, "ledger", "balance", "--json")
		for _, b := range after {
			if b.Granted != 0 {
				t.Fatalf("balance of %s moved by a refused grant: %+v", b.Peer, b)
			}
		}
	})

	t.Run("a failing job frees the partition", func(t *testing.T) {
		g.weftOK(n, "request", "web", "--recipe", web, "--state", "destroyed")
		mktPoll(t, 30*time.Second, func() error {
			var parts []struct {
				InstanceID string `json:"instance_id"`
			}
			if err := json.Unmarshal(g.weftOK(n, "partition", "list", "--json"), &parts); err != nil {
				return err
			}
			for _, p := range parts {
				if p.InstanceID != "" {
					return fmt.Errorf("partition still held by %s", p.InstanceID)
				}
			}
			return nil
		})
		fail := filepath.Join(t.TempDir(), "fail.toml")
		if err := os.WriteFile(fail, []byte(`name = "fails"
version = "1"
[types.default]
batch = true
timeout = "60s"
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "echo about to fail; exit 7"]
`), 0o644); err != nil {
			t.Fatal(err)
		}
		var job struct {
			State  string `json:"state"`
			Reason string `json:"reason"`
		}
		so, se, runErr := g.weft(n, "job", "run", "--recipe", fail, "--wait", "--json")
		if err := json.Unmarshal([]byte(so), &job); err != nil || job.State != "failed" || !strings.Contains(job.Reason, "exit status 7") || !strings.Contains(job.Reason, "about to fail") {
			t.Fatalf("failing job: %v %+v (exit %v, %s)", err, job, runErr, se)
		}
		start := time.Now()
		var next mktInstance
		g.mustJSON(n, &next, "request", "next", "--recipe", web, "--sla", "wait_for_capacity=true", "--json")
		mktPoll(t, 30*time.Second, func() error {
			g.mustJSON(n, &next, "instance", "show", "next", "--json")
			if next.State != "started" {
				return fmt.Errorf("next is %s (%s)", next.State, next.Reason)
			}
			return nil
		})
		t.Logf("placed %s after the job failed", time.Since(start).Round(time.Millisecond))
		var shown map[string]any
		g.mustJSON(n, &shown, "instance", "show", "next", "--json")
		for _, k := range []string{"state", "health", "reason", "restarts", "last_exit"} {
			if _, ok := shown[k]; !ok {
				t.Errorf("instance show --json lacks %q: %v", k, shown)
			}
		}
	})
}
