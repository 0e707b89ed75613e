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
	UnauthorizedGrants []string  `json:"unauthorized_grants"`
	AsOf               time.Time `json:"as_of"`
}

// ledgerEntry is an entry of `weft ledger entries --json` with the body
// fields of receipts and ends these tests read.
type ledgerEntry struct {
	CID    string `json:"cid"`
	Kind   string `json:"kind"`
	Author string `json:"author"`
	Body   struct {
		Contract struct {
			CID string `json:"/"`
		} `json:"contract"`
		Receipt struct {
			CID string `json:"/"`
		} `json:"receipt"`
		InstanceID string `json:"instance_id"`
		Epoch      uint64 `json:"epoch"`
		Slice      uint64 `json:"slice"`
		FromNanos  int64  `json:"from_ns"`
		ToNanos    int64  `json:"to_ns"`
		AtNanos    int64  `json:"at_ns"`
		State      string `json:"state"`
		Reason     string `json:"reason"`
	} `json:"body"`
}

// ledgerEntries returns n's entries of kind (newest first).
func ledgerEntries(g *mktGrid, n *mktNode, kind string) []ledgerEntry {
	var es []ledgerEntry
	g.mustJSON(n, &es, "ledger", "entries", "--kind", kind, "--limit", "100000", "--json")
	return es
}

// billingOf returns the receipts of instance at epoch in es, and the
// earliest end of billing of that contract among ends (0: none).
func billingOf(receipts, ends []ledgerEntry, contracts []ledgerEntry, instance string, epoch uint64) (rs []ledgerEntry, endAt int64, endState string) {
	ids := map[string]bool{}
	for _, c := range contracts {
		if c.Body.InstanceID == instance && c.Body.Epoch == epoch {
			ids[c.CID] = true
		}
	}
	for _, r := range receipts {
		if r.Body.InstanceID == instance && r.Body.Epoch == epoch {
			rs = append(rs, r)
			ids[r.Body.Contract.CID] = true
		}
	}
	for _, e := range ends {
		if ids[e.Body.Contract.CID] && (endAt == 0 || e.Body.AtNanos < endAt) {
			endAt, endState = e.Body.AtNanos, e.Body.State
		}
	}
	return rs, endAt, endState
}

// TestGridOfOneBills: a node alone is a grid of one. It places a request
// on itself, bills every slice and acknowledges its own receipts; a grant
// by it (it is no granter of the public grid) is refused before anything
// is written and moves no balance; a stop ends the instance's billing (the
// last receipt covers the partial slice up to it) and a start bills again
// under a new epoch; a job that fails frees the node's only partition, and
// a request made right after, waiting for capacity, is placed there; a
// service that crash-loops past its restart budget (2, from the node's
// config) fails for good with its reason, frees the partition and stops
// billing; once the grace has passed, nothing is unbilled.
func TestGridOfOneBills(t *testing.T) {
	g := newMktGrid(t)
	cfg := filepath.Join(t.TempDir(), "weft.toml")
	if err := os.WriteFile(cfg, []byte("[partitions]\nrestart_budget = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := g.start("solo", "--slice", "500ms", "--partitions", "1", "--config", cfg)
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
		so, se, err := g.weft(n, "ledger", "grant", n.peerID, "1000000")
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

	// over names the contracts whose billing ended, and when their stop
	// or destruction was asked for (zero: it failed).
	type over struct {
		name, instance string
		epoch          uint64
		asked          time.Time
	}
	var ended []over
	var destroyAsked time.Time

	t.Run("a stop ends billing", func(t *testing.T) {
		asked := time.Now()
		var stopped mktInstance
		g.mustJSON(n, &stopped, "request", "web", "--state", "stopped", "--wait", "--json")
		if stopped.State != "stopped" || stopped.Epoch != placed.Epoch {
			t.Fatalf("stopped %+v", stopped)
		}
		ended = append(ended, over{"web (stopped)", placed.InstanceID, placed.Epoch, asked})
		// The host's end of billing, at the stop; the last receipt is
		// the partial slice up to it.
		mktPoll(t, 20*time.Second, func() error {
			rs, endAt, state := billingOf(ledgerEntries(g, n, "receipt"), ledgerEntries(g, n, "end"), ledgerEntries(g, n, "contract"), placed.InstanceID, placed.Epoch)
			if endAt == 0 || state != "stopped" {
				return fmt.Errorf("no end of billing yet (%q)", state)
			}
			for _, r := range rs {
				// (Up to the stop; a slice that ended before the host's
				// end was in its ledger is billed whole.)
				if r.Body.FromNanos < endAt && r.Body.ToNanos >= endAt {
					if r.Body.ToNanos != endAt {
						t.Logf("the stop's slice %d billed to %d, after the stop at %d", r.Body.Slice, r.Body.ToNanos, endAt)
					}
					return nil
				}
			}
			return fmt.Errorf("no receipt of the partial slice up to the stop at %d among %d", endAt, len(rs))
		})
		// Started again: a new epoch on the same node, billed again.
		var again mktInstance
		g.mustJSON(n, &again, "request", "web", "--state", "started", "--wait", "--json")
		if again.State != "started" || again.Epoch <= placed.Epoch || again.Node != n.peerID {
			t.Fatalf("started again %+v, want a newer epoch than %d", again, placed.Epoch)
		}
		mktPoll(t, 20*time.Second, func() error {
			rs, _, _ := billingOf(ledgerEntries(g, n, "receipt"), nil, nil, again.InstanceID, again.Epoch)
			if len(rs) < 2 {
				return fmt.Errorf("%d receipts under epoch %d", len(rs), again.Epoch)
			}
			return nil
		})
		ended = append(ended, over{"web (destroyed)", again.InstanceID, again.Epoch, time.Time{}})
	})

	t.Run("a failing job frees the partition", func(t *testing.T) {
		destroyAsked = time.Now()
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

	t.Run("a crash-looping service fails for good", func(t *testing.T) {
		g.weftOK(n, "request", "next", "--state", "destroyed", "--wait")
		loop := filepath.Join(t.TempDir(), "crashloop.toml")
		if err := os.WriteFile(loop, []byte(`name = "crashloop"
version = "1"
[types.default]
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "echo crashing again; exit 3"]
restart = "always"
`), 0o644); err != nil {
			t.Fatal(err)
		}
		var crash mktInstance
		g.mustJSON(n, &crash, "request", "crash", "--recipe", loop, "--json")
		var shown map[string]any
		mktPoll(t, 60*time.Second, func() error {
			g.mustJSON(n, &shown, "instance", "show", "crash", "--json")
			if shown["state"] != "failed" {
				return fmt.Errorf("crash is %v (%v)", shown["state"], shown["reason"])
			}
			return nil
		})
		for _, k := range []string{"state", "health", "reason", "restarts", "last_exit"} {
			if _, ok := shown[k]; !ok {
				t.Errorf("instance show --json lacks %q: %v", k, shown)
			}
		}
		reason, _ := shown["reason"].(string)
		if shown["health"] != "failing" || !strings.Contains(reason, "exit status 3") || !strings.Contains(reason, "restart budget exhausted") {
			t.Fatalf("failed crash loop: %v", shown)
		}
		g.mustJSON(n, &crash, "instance", "show", "crash", "--json")
		ended = append(ended, over{"crash (failed)", crash.InstanceID, crash.Epoch, time.Time{}})
		mktPoll(t, 20*time.Second, func() error {
			_, endAt, state := billingOf(nil, ledgerEntries(g, n, "end"), ledgerEntries(g, n, "contract"), crash.InstanceID, crash.Epoch)
			if endAt == 0 || state != "failed" {
				return fmt.Errorf("no end of billing yet (%q)", state)
			}
			return nil
		})

		// Its partition is free: a request waiting for capacity is placed.
		start := time.Now()
		var after mktInstance
		g.mustJSON(n, &after, "request", "after", "--recipe", web, "--sla", "wait_for_capacity=true", "--json")
		mktPoll(t, 30*time.Second, func() error {
			g.mustJSON(n, &after, "instance", "show", "after", "--json")
			if after.State != "started" {
				return fmt.Errorf("after is %s (%s)", after.State, after.Reason)
			}
			return nil
		})
		t.Logf("placed %s after the crash loop failed", time.Since(start).Round(time.Millisecond))
	})

	// No contract whose billing ended has a receipt for a slice that began
	// after its end, and once the grace has passed since the last end,
	// nothing is unbilled and the audit is clean.
	var lastEnd int64
	receipts, ends, contracts := ledgerEntries(g, n, "receipt"), ledgerEntries(g, n, "end"), ledgerEntries(g, n, "contract")
	disputed := map[string]string{}
	for _, d := range ledgerEntries(g, n, "dispute") {
		disputed[d.Body.Receipt.CID] = d.Body.Reason
	}
	for _, o := range ended {
		rs, endAt, _ := billingOf(receipts, ends, contracts, o.instance, o.epoch)
		if o.name == "web (destroyed)" {
			o.asked = destroyAsked
		}
		if !o.asked.IsZero() {
			// A stop or destruction is no fault of the host: the slices
			// it falls in, up to the end, are acknowledged.
			for _, r := range rs {
				if why, ok := disputed[r.CID]; ok && r.Body.ToNanos > o.asked.UnixNano() {
					t.Errorf("%s: slice %d, during the stop, disputed: %s", o.name, r.Body.Slice, why)
				}
			}
		}
		if endAt == 0 {
			t.Errorf("%s: no end of billing", o.name)
		}
		for _, r := range rs {
			if endAt != 0 && r.Body.FromNanos >= endAt {
				t.Errorf("%s: receipt for slice %d from %d, after the end at %d", o.name, r.Body.Slice, r.Body.FromNanos, endAt)
			}
		}
		lastEnd = max(lastEnd, endAt)
	}
	mktPoll(t, 90*time.Second, func() error {
		var a billingAudit
		so, _, _ := g.weft(n, "ledger", "audit", "--json")
		if err := json.Unmarshal([]byte(so), &a); err != nil {
			return err
		}
		if a.AsOf.UnixNano() < lastEnd+int64(35*time.Second) {
			return fmt.Errorf("audit as of %s, the grace since the last end has not passed", a.AsOf)
		}
		if !a.OK || a.Unbilled != 0 {
			return fmt.Errorf("audit ok %v, unbilled %d, problems %+v", a.OK, a.Unbilled, a.Problems)
		}
		return nil
	})
}
