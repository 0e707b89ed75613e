package test

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// hostedPID is the pid of the first process of a local instance on n.
func hostedPID(t *testing.T, g *mktGrid, n *mktNode, id string) int {
	t.Helper()
	var st struct {
		Phase     string `json:"phase"`
		Processes []struct {
			PID     int  `json:"pid"`
			Running bool `json:"running"`
			Adopted bool `json:"adopted"`
		} `json:"processes"`
	}
	g.mustJSON(n, &st, "partition", "show", id, "--json")
	if len(st.Processes) == 0 || !st.Processes[0].Running || st.Processes[0].PID <= 0 {
		t.Fatalf("instance %s on %s: phase %s, processes %+v", id, n.name, st.Phase, st.Processes)
	}
	return st.Processes[0].PID
}

// A node started with --keep-instances restarts in place (an upgrade):
// SIGTERM leaves its instance running, and when it starts again it adopts
// the same process under the same contract — the instance never moves.
func TestMarketInPlaceRestartKeepsInstances(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester")
	host := g.start("host", "--label", "role=host", "--keep-instances")
	g.converge()
	web := repoFile(t, "recipes/examples/webserver.toml")
	var in mktInstance
	g.mustJSON(req, &in, "request", "web", "--recipe", web, "--param", "message=still here",
		"--sla", "label.role=host", "--sla", "grace=60s", "--wait", "--json")
	if in.State != "started" || in.Node != host.peerID {
		t.Fatalf("placed: %+v, want started on %s", in, host.peerID)
	}
	pid := hostedPID(t, g, host, in.InstanceID)

	g.stop(host) // SIGTERM
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("the instance's process %d ended with its node: %v", pid, err)
	}
	if err := fetchPage(in.Connection["url"], "still here"); err != nil {
		t.Fatalf("page while the node is down: %v", err)
	}

	back := g.restart(host, "--label", "role=host", "--keep-instances")
	g.converge()
	var now mktInstance
	mktPoll(t, 30*time.Second, func() error {
		g.mustJSON(req, &now, "instance", "show", "web", "--json")
		if now.Node != host.peerID || now.Epoch != in.Epoch || now.State != "started" {
			return fmt.Errorf("instance %s on %s at epoch %d (placed on %s at epoch %d)", now.State, now.Node, now.Epoch, host.peerID, in.Epoch)
		}
		return fetchPage(now.Connection["url"], "still here")
	})
	if got := hostedPID(t, g, back, in.InstanceID); got != pid {
		t.Fatalf("after the restart the instance runs as pid %d, want the adopted %d", got, pid)
	}
}
