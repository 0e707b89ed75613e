package cli

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/partition"
)

// TestPartitionStopWaitsForStopped: 'weft partition stop ID --wait' must not
// return while the processes still run (phase running right after the
// stop was asked), but once the phase is stopped; likewise 'partition run
// --wait' of an update waits for the new run, not the stale one.
func TestPartitionStopWaitsForStopped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		state partition.State
		stale bool
		final partition.Phase
	}{
		{"stop", []string{"partition", "stop", "local-web", "--wait"}, partition.StateStopped, false, partition.PhaseStopped},
		{"start of a stale run", []string{"partition", "start", "local-web", "--wait"}, partition.StateStarted, true, partition.PhaseRunning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			const token = "tok"
			var mu sync.Mutex
			polls := 0
			status := func() partition.InstanceStatus {
				mu.Lock()
				defer mu.Unlock()
				st := partition.InstanceStatus{ID: "local-web", State: tc.state, Phase: partition.PhaseRunning,
					Stale: tc.stale, Promises: []partition.PromiseStatus{}}
				if polls >= 3 { // the node got there after a few polls
					st.Phase, st.Stale = tc.final, false
				}
				return st
			}
			mux := http.NewServeMux()
			mux.HandleFunc("POST /v1/local/instances", func(w http.ResponseWriter, r *http.Request) {
				api.WriteJSON(w, http.StatusOK, status())
			})
			mux.HandleFunc("GET /v1/local/instances/{id}", func(w http.ResponseWriter, r *http.Request) {
				st := status()
				mu.Lock()
				polls++
				mu.Unlock()
				api.WriteJSON(w, http.StatusOK, st)
			})
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer "+token {
					api.WriteError(w, http.StatusUnauthorized, errors.New("api: bad token"))
					return
				}
				mux.ServeHTTP(w, r)
			}))
			defer srv.Close()
			if err := api.WriteEndpoint(dir, api.Endpoint{Addr: srv.Listener.Addr().String(), Token: token}); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, err := cliRun(t, append([]string{"--data-dir", dir, "--json"}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v: %v\n%s", tc.args, err, stderr)
			}
			var st partition.InstanceStatus
			if err := json.NewDecoder(strings.NewReader(stdout)).Decode(&st); err != nil {
				t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
			}
			if st.Phase != tc.final || st.Stale {
				t.Fatalf("--wait returned with phase %s (stale %v), want %s", st.Phase, st.Stale, tc.final)
			}
		})
	}
}
