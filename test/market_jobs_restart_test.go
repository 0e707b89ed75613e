package test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestFinishedJobSurvivesRequesterRestart: a job whose result the
// requester holds is released (its partition freed) and keeps showing done
// with its result, also after the requester restarts; running it again
// returns it instead of running it anew.
func TestFinishedJobSurvivesRequesterRestart(t *testing.T) {
	g := newMktGrid(t)
	req := g.start("requester")
	host := g.start("host")
	g.converge()
	primes := repoFile(t, "recipes/examples/primes.toml")

	var job struct {
		ID         string `json:"id"`
		State      string `json:"state"`
		Result     string `json:"result"`
		InstanceID string `json:"instance_id"`
	}
	g.mustJSON(req, &job, "job", "run", "--recipe", primes, "--param", "n=1000", "--sla", "node="+host.peerID, "--wait", "--json")
	if job.State != "done" || job.Result == "" {
		t.Fatalf("job: %+v", job)
	}
	mktPoll(t, 20*time.Second, func() error {
		var parts []struct {
			InstanceID string `json:"instance_id"`
		}
		if err := json.Unmarshal(g.weftOK(host, "partition", "list", "--json"), &parts); err != nil {
			return err
		}
		for _, p := range parts {
			if p.InstanceID == job.InstanceID {
				return fmt.Errorf("the finished job still holds a partition on the host")
			}
		}
		return nil
	})

	g.stop(req)
	req = g.restart(req)
	g.converge()
	var shown struct {
		State  string `json:"state"`
		Result string `json:"result"`
	}
	g.mustJSON(req, &shown, "job", "show", job.ID, "--json")
	if shown.State != "done" || shown.Result != job.Result {
		t.Fatalf("after the requester's restart the job shows %+v, want done with %s", shown, job.Result)
	}
}
