package marketapi

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/cmd/weft/internal/jobs"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/scheduler/simnet"

	"github.com/weftgrid/weft/scheduler/schedrun"
)

const namedJobRecipe = `name = "report"
version = "1"
[params.month]
type = "string"
[types.default]
batch = true
[[types.default.processes]]
name = "main"
command = "/bin/true"
`

// A job run again under its name with other parameters is another job:
// POST /v1/jobs must run it, not answer with the earlier run's result, and
// the job must not show that result as its own while the host applies the
// new run.
func TestNamedJobRunWithOtherParamsIsNotTheFinishedOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := simnetHandlers(t, 3, 2)

		run := func(month string) api.Job {
			t.Helper()
			b, _ := json.Marshal(api.Request{Name: "report", RecipeTOML: namedJobRecipe, Params: map[string]string{"month": month}})
			w := httptest.NewRecorder()
			h.HandleJobRun(w, httptest.NewRequest(http.MethodPost, "/v1/jobs", bytes.NewReader(b)))
			if w.Code != http.StatusOK {
				t.Fatalf("run %s: %d %s", month, w.Code, w.Body)
			}
			var j api.Job
			if err := json.Unmarshal(w.Body.Bytes(), &j); err != nil {
				t.Fatal(err)
			}
			return j
		}
		show := func() api.Job {
			v, err := h.Market.Instance("report")
			if err != nil {
				t.Fatal(err)
			}
			return h.Jobs.View(v)
		}
		run("jan")
		for deadline := time.Now().Add(30 * time.Second); show().State != "done"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("january job: %+v", show())
			}
		}
		before, _ := h.Market.Instance("report")
		if j := run("feb"); j.State == "done" {
			after, _ := h.Market.Instance("report")
			t.Fatalf("february run answered done (%s) without being requested (generation %d, was %d)", j.Result, after.Generation, before.Generation)
		}
		if j := run("jan"); j.State == "done" {
			t.Fatalf("january again, after february: answered done at once (%+v)", j)
		}
		for deadline := time.Now().Add(30 * time.Second); show().State != "done"; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("january rerun: %+v", show())
			}
		}
		if j := run("jan"); j.State != "done" || j.Result == "" {
			t.Fatalf("the same job again: %+v, want the finished one", j)
		}
	})
}

// simnetHandlers returns the market's handlers over the first of n nodes
// on a simulated network (inside a synctest bubble), with a content store
// of their own.
func simnetHandlers(t *testing.T, seed uint64, n int) *Handlers {
	t.Helper()
	net := simnet.New(simnet.Options{Seed: seed})
	t.Cleanup(net.Close)
	nodes, err := net.AddNodes(t.Context(), n, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := &Handlers{Market: nodes[0].Market, Content: schedrun.Content{Store: st}, MaxRetries: config.Default().Market.MaxRetries}
	if h.Jobs, err = jobs.Open("", h.Market, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	return h
}

// POST /v1/jobs only runs jobs. A body asking for another state (a stop or
// a destroy sent to the wrong route) must be refused, not start the job.
func TestJobRunRefusesAStateOtherThanStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := simnetHandlers(t, 5, 2)

		post := func(state string) int {
			b, _ := json.Marshal(api.Request{Name: "report", RecipeTOML: namedJobRecipe, Params: map[string]string{"month": "jan"}, State: state})
			w := httptest.NewRecorder()
			h.HandleJobRun(w, httptest.NewRequest(http.MethodPost, "/v1/jobs", bytes.NewReader(b)))
			return w.Code
		}
		for _, s := range []string{"destroyed", "stopped", "destroy"} {
			if code := post(s); code != http.StatusBadRequest {
				t.Errorf("state %q: HTTP %d, want 400", s, code)
			}
		}
		if v, err := h.Market.Instance("report"); err == nil {
			t.Fatalf("a job asked with another state was requested: %+v", v)
		}
		if code := post("started"); code != http.StatusOK {
			t.Fatalf("state started: HTTP %d", code)
		}
	})
}
