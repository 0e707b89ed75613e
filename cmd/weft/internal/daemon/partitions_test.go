package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/ledger"
	"github.com/weftgrid/weft/partition"
)

// TestLocalInstancesAPI runs a batch recipe given inline through POST
// /v1/local/instances, follows it to completion and checks the partition
// listing, parameter validation and destroy.
func TestLocalInstancesAPI(t *testing.T) {
	cfg := config.Default()
	cfg.Node.DataDir = t.TempDir()
	cfg.Partitions.Count = 2
	cfg.Partitions.PortBase = 41000
	cfg.Partitions.Users = false
	e, token := testEnv(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := newPartitions(ctx, e, partitionDeps{}); err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any, out any) int {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		if out != nil {
			if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
				t.Fatalf("%s %s: %v: %s", method, path, err, rec.Body.String())
			}
		}
		return rec.Code
	}
	recipe := `
name = "count"
version = "1"
[params.n]
type = "int"
default = 3
max = 100
[types.default]
batch = true
[[types.default.processes]]
name = "main"
command = "/bin/sh"
args = ["-c", "seq {{.Params.n}} > $WEFT_OUT/seq.txt"]
`
	var bad api.ErrorBody
	if code := call("POST", "/v1/local/instances", map[string]any{"toml": recipe, "params": map[string]any{"n": 1000}}, &bad); code != http.StatusBadRequest {
		t.Errorf("out-of-range param: HTTP %d %s", code, bad.Error)
	}
	var st partition.InstanceStatus
	if code := call("POST", "/v1/local/instances", map[string]any{"name": "job", "toml": recipe, "params": map[string]any{"n": 5}}, &st); code != http.StatusOK {
		t.Fatalf("run: HTTP %d", code)
	}
	if st.ID != "local-job" {
		t.Fatalf("id %q", st.ID)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.Phase != partition.PhaseCompleted {
		if time.Now().After(deadline) || st.Phase == partition.PhaseFailed {
			t.Fatalf("instance: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
		call("GET", "/v1/local/instances/local-job", nil, &st)
	}
	out, err := os.ReadFile(filepath.Join(st.ResultDir, "seq.txt"))
	if err != nil || string(out) != "1\n2\n3\n4\n5\n" {
		t.Fatalf("seq.txt = %q, %v", out, err)
	}
	var parts []partition.PartitionStatus
	call("GET", "/v1/partitions", nil, &parts)
	if len(parts) != 2 || parts[st.Partition].InstanceID != "local-job" || parts[st.Partition].Phase != "completed" {
		t.Fatalf("partitions %+v", parts)
	}
	var list []partition.InstanceStatus
	call("GET", "/v1/local/instances", nil, &list)
	if len(list) != 1 {
		t.Fatalf("list %+v", list)
	}
	mfs, err := e.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "weft_partitions_free" {
			found = mf.GetMetric()[0].GetGauge().GetValue() == 1
		}
	}
	if !found {
		t.Error("weft_partitions_free is not 1 with one of two partitions used")
	}
	if code := call("DELETE", "/v1/local/instances/local-job", nil, &st); code != http.StatusOK {
		t.Fatalf("destroy: HTTP %d", code)
	}
	deadline = time.Now().Add(30 * time.Second)
	for call("GET", "/v1/local/instances/local-job", nil, nil) != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("not destroyed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A market instance's billing ends on its host when it is stopped or
// destroyed as asked, fails for good or completes; the node's own shutdown,
// a fenced copy's destruction or a local instance end nothing.
func TestBillingEndsWhenTheInstanceIsOver(t *testing.T) {
	market := partition.InstanceStatus{ID: "i", Requester: "12D3KooWxyz", Epoch: 2, State: partition.StateStarted}
	for _, c := range []struct {
		name  string
		edit  func(*partition.InstanceStatus)
		state string
	}{
		{"running", func(s *partition.InstanceStatus) { s.Phase = partition.PhaseRunning }, ""},
		{"stopped", func(s *partition.InstanceStatus) { s.State, s.Phase = partition.StateStopped, partition.PhaseStopped }, ledger.EndStopped},
		{"stopped by the node's shutdown", func(s *partition.InstanceStatus) { s.Phase = partition.PhaseStopped }, ""},
		{"destroyed", func(s *partition.InstanceStatus) {
			s.State, s.Phase = partition.StateDestroyed, partition.PhaseDestroyed
		}, ledger.EndDestroyed},
		{"fenced copy", func(s *partition.InstanceStatus) { s.Phase = partition.PhaseDestroyed }, ""},
		{"failed", func(s *partition.InstanceStatus) {
			s.Phase, s.Error = partition.PhaseFailed, "process main: exit status 3"
		}, ledger.EndFailed},
		{"completed", func(s *partition.InstanceStatus) { s.Phase = partition.PhaseCompleted }, ledger.EndDone},
		{"local", func(s *partition.InstanceStatus) { s.Requester, s.Phase = "", partition.PhaseFailed }, ""},
	} {
		st := market
		c.edit(&st)
		state, reason, ok := billingEnd(st)
		if state != c.state || ok != (c.state != "") {
			t.Errorf("%s: end %q %v, want %q", c.name, state, ok, c.state)
		}
		if c.state == ledger.EndFailed && reason != st.Error {
			t.Errorf("%s: reason %q, want the error", c.name, reason)
		}
	}
}
