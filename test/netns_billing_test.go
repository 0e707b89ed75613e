//go:build linux

package test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// Six nodes in network namespaces; two instances run on two hosts; an
// uninvolved node is black-holed (its cable cut) for 20 s. Billing never
// depends on one peer: the hosts keep billing every slice through the
// other peers while it is gone, and once it is back and the instances are
// destroyed, every node's audit is clean, with one root and no unbilled
// slice.
func TestNetnsBlackHoledNodeDoesNotStallBilling(t *testing.T) {
	lab := newNetLab(t, 6)
	req, hosts, others := lab.hosts[0], lab.hosts[1:3], lab.hosts[3:]
	lab.start(req, "--preset", "local", "--mdns", "off", "--slice", "1s")
	for _, h := range hosts {
		lab.start(h, "--preset", "local", "--mdns", "off", "--slice", "1s", "--label", "role=host", "--bootstrap", req.addr)
	}
	for _, h := range others {
		lab.start(h, "--preset", "local", "--mdns", "off", "--slice", "1s", "--partitions", "0", "--bootstrap", req.addr)
	}
	mktPoll(t, 60*time.Second, func() error {
		for _, h := range lab.hosts {
			if n, err := lab.members(h); err != nil || n != len(lab.hosts) {
				return fmt.Errorf("%s sees %d members (%v), want %d", h.name, n, err, len(lab.hosts))
			}
		}
		return nil
	})
	web := repoFile(t, "recipes/examples/webserver.toml")
	for i, h := range hosts {
		var in mktInstance
		if err := lab.json(req, &in, "request", fmt.Sprintf("web%d", i), "--recipe", web, "--sla", "node="+h.peerID, "--wait"); err != nil {
			t.Fatal(err)
		}
		if in.State != "started" {
			t.Fatalf("web%d: %+v", i, in)
		}
	}
	acked := func(h *labHost) (billingAudit, error) {
		var a billingAudit
		out, _ := lab.weft(h, "ledger", "audit", "--json") // exits 1 when not ok
		if err := json.Unmarshal(out, &a); err != nil {
			return a, fmt.Errorf("audit on %s: %v: %s", h.name, err, out)
		}
		return a, nil
	}
	mktPoll(t, 30*time.Second, func() error {
		a, err := acked(req)
		if err == nil && a.Acked < 4 {
			err = fmt.Errorf("%d receipts acknowledged so far", a.Acked)
		}
		return err
	})

	// Black-hole an uninvolved node for 20 s: both instances keep being
	// billed, slice after slice, all along.
	before, err := acked(req)
	if err != nil {
		t.Fatal(err)
	}
	lab.cut(others[0])
	cutAt := time.Now()
	for time.Since(cutAt) < 20*time.Second {
		time.Sleep(time.Second)
	}
	during, err := acked(req)
	if err != nil {
		t.Fatal(err)
	}
	lab.plug(others[0])
	// 2 instances × ~20 one-second slices; allow for the slices still in
	// flight at either end.
	if got := during.Acked - before.Acked; got < 24 {
		t.Fatalf("%d receipts acknowledged during the 20 s outage of an uninvolved node, want about 40", got)
	}

	for i := range hosts {
		var gone mktInstance
		if err := lab.json(req, &gone, "request", fmt.Sprintf("web%d", i), "--recipe", web, "--state", "destroyed", "--wait"); err != nil {
			t.Fatal(err)
		}
	}
	mktPoll(t, 90*time.Second, func() error {
		roots := map[string]bool{}
		for _, h := range lab.hosts {
			a, err := acked(h)
			if err != nil {
				return err
			}
			if !a.OK || a.Unbilled != 0 {
				return fmt.Errorf("audit on %s: ok %v, %d unbilled, problems %+v", h.name, a.OK, a.Unbilled, a.Problems)
			}
			var hd struct {
				Root string `json:"root"`
			}
			out, _ := lab.weft(h, "ledger", "audit", "--json")
			_ = json.Unmarshal(out, &hd)
			roots[hd.Root] = true
		}
		if len(roots) != 1 {
			return fmt.Errorf("%d distinct roots", len(roots))
		}
		return nil
	})
}
