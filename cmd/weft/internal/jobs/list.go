package jobs

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/scheduler"
)

// List returns this node's batch jobs, by name: those run through POST
// /v1/jobs and the batch instances it requested. A job destroyed without a
// result (by hand, or failed and then destroyed) is listed only with all.
func (j *Jobs) List(all bool) []api.JobEntry {
	out := []api.JobEntry{}
	for _, v := range j.market.Instances() {
		if !v.Batch || !v.Mine {
			continue
		}
		jv := j.View(v)
		if jv.State == scheduler.StateDestroyed.String() && !all {
			continue
		}
		e := api.JobEntry{Name: v.Name, State: jv.State, Reason: jv.Reason, Recipe: v.RecipeCID}
		if jv.Result != "" {
			r := jv.Result
			e.Result = &r
		}
		if v.Node != "" {
			n := v.Node
			e.Node = &n
		}
		if t, ok := j.times.Load(v.Name); ok {
			jt := t.(jobTimes)
			if !jt.Started.IsZero() {
				e.Started = &jt.Started
			}
			if !jt.Ended.IsZero() && jv.State == scheduler.StateDone.String() {
				e.Ended = &jt.Ended
			}
		}
		out = append(out, e)
	}
	return out
}

// Purge forgets the finished jobs (done, or destroyed) — or, with a name,
// that job only — from the registry and the market, and returns the names
// it purged. A job still running or pending is refused (scheduler.ErrNotDestroyed).
func (j *Jobs) Purge(ctx context.Context, name string) ([]string, error) {
	var purged []string
	for _, e := range j.List(true) {
		if name != "" && e.Name != name {
			continue
		}
		finished := e.State == scheduler.StateDone.String() || e.State == scheduler.StateDestroyed.String()
		if !finished {
			if name != "" {
				return nil, fmt.Errorf("%w: job %s is %s (it purges once done or destroyed)", scheduler.ErrNotDestroyed, name, e.State)
			}
			continue
		}
		if err := j.market.Purge(ctx, e.Name); err != nil {
			if name != "" {
				return nil, err
			}
			continue // done, but its instance is still being destroyed
		}
		j.forget(e.Name)
		purged = append(purged, e.Name)
		if j.Purged != nil {
			j.Purged(e.Name)
		}
	}
	if name != "" && len(purged) == 0 {
		return nil, fmt.Errorf("%w: job %s", scheduler.ErrNotFound, name)
	}
	if purged == nil {
		purged = []string{}
	}
	return purged, nil
}

// forget drops a job from the registry and its directory.
func (j *Jobs) forget(name string) {
	j.names.Delete(name)
	j.results.Delete(name)
	j.runs.Delete(name)
	j.times.Delete(name)
	if j.store != nil {
		if err := j.store.Delete(key(name)); err != nil {
			j.log.Warn("market: forgetting a job", "job", name, "err", err)
		}
	}
}

// Routes registers the job listing and purging routes on srv:
// GET /v1/jobs[?all=1], DELETE /v1/jobs (every finished job),
// DELETE /v1/jobs/{name}, and DELETE /v1/instances/{name} (a destroyed
// instance, job or not).
func (j *Jobs) Routes(srv *api.Server) {
	srv.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		api.WriteJSON(w, http.StatusOK, j.List(r.URL.Query().Get("all") != ""))
	})
	purge := func(w http.ResponseWriter, r *http.Request) {
		names, err := j.Purge(r.Context(), r.PathValue("name"))
		writePurge(w, names, err)
	}
	srv.HandleFunc("DELETE /v1/jobs", purge)
	srv.HandleFunc("DELETE /v1/jobs/{name}", purge)
	srv.HandleFunc("DELETE /v1/instances/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		err := j.market.Purge(r.Context(), name)
		if err == nil {
			j.forget(name)
			if j.Purged != nil {
				j.Purged(name)
			}
		}
		writePurge(w, []string{name}, err)
	})
}

func writePurge(w http.ResponseWriter, names []string, err error) {
	switch {
	case errors.Is(err, scheduler.ErrNotFound):
		api.WriteError(w, http.StatusNotFound, err)
	case errors.Is(err, scheduler.ErrNotDestroyed):
		api.WriteError(w, http.StatusConflict, err)
	case err != nil:
		api.WriteError(w, http.StatusInternalServerError, err)
	default:
		api.WriteJSON(w, http.StatusOK, names)
	}
}
