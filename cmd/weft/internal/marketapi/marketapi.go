// Package marketapi is the market's part of the node's local HTTP API:
// requests (POST /v1/requests), instances, auctions and hosted copies, and
// batch jobs (POST /v1/jobs, GET /v1/jobs/{id}, POST /v1/jobs/result), over
// the market engine, the node's content and its jobs. Request bodies are
// resolved here: the recipe (inline or by CID, fetched from the grid),
// parameters checked against its schema, resources from its software type,
// constraints parsed.
//
// Usage:
//
//	h := &marketapi.Handlers{Market: m, Content: content, Jobs: js, MaxRetries: 2}
//	h.Routes(apiServer)
//
// Concurrency: the handlers are safe for concurrent use.
package marketapi

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/jobs"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/scheduler"
	"github.com/weftgrid/weft/scheduler/schedrun"
)

// Handlers serve the market's routes.
type Handlers struct {
	// Market is the node's market engine.
	Market *scheduler.Market
	// Content resolves and stores recipes and fetches results.
	Content schedrun.Content
	// Jobs are the node's batch jobs.
	Jobs *jobs.Jobs
	// MaxRetries is a job's default re-placements ([market] max_retries).
	MaxRetries int
}

// Routes registers the market's routes on srv.
func (h *Handlers) Routes(srv *api.Server) {
	m := h.Market
	srv.HandleFunc("POST /v1/requests", h.handleRequest)
	srv.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, m.Instances()) })
	srv.HandleFunc("GET /v1/instances/{name}", h.handleInstance)
	srv.HandleFunc("GET /v1/auctions", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, m.Auctions()) })
	srv.HandleFunc("GET /v1/hosted", func(w http.ResponseWriter, r *http.Request) { api.WriteJSON(w, http.StatusOK, m.Hosted()) })
	srv.HandleFunc("POST /v1/jobs", h.HandleJobRun)
	srv.HandleFunc("GET /v1/jobs/{id}", h.handleJob)
	srv.HandleFunc("POST /v1/jobs/result", h.handleJobResult)
}

// requestError is an error with its HTTP status.
type requestError struct {
	status int
	err    error
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, fmt.Errorf(format, args...)}
}

// resolveRecipe stores an inline recipe or finds one by CID (fetching it
// from the grid), and returns it with its CID.
func (h *Handlers) resolveRecipe(ctx context.Context, in *api.Request) (*recipes.Recipe, string, error) {
	if in.RecipeTOML != "" {
		rc, err := recipes.Parse("recipe.toml", []byte(in.RecipeTOML))
		if err != nil {
			return nil, "", badRequest("market: recipe: %w", err)
		}
		c, err := h.Content.PutRecipe(rc)
		if err != nil {
			return nil, "", err
		}
		return rc, c.String(), nil
	}
	if in.RecipeCID == "" {
		return nil, "", badRequest("market: a recipe is required for a new instance (recipe_cid or recipe_toml; weft request NAME --recipe FILE|CID)")
	}
	c, err := cid.Decode(in.RecipeCID)
	if err != nil {
		return nil, "", badRequest("market: recipe %q is not a CID: %v", in.RecipeCID, err)
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rc, err := h.Content.Recipe(fctx, c)
	if err != nil {
		return nil, "", &requestError{http.StatusNotFound, fmt.Errorf("%w (publish it with weft recipe publish FILE, or pass --recipe FILE)", err)}
	}
	return rc, c.String(), nil
}

// buildSpec turns a request body into a market spec: the recipe resolved,
// params validated against its schema, resources from the software type,
// constraints parsed.
func (h *Handlers) buildSpec(ctx context.Context, in *api.Request, batch bool) (scheduler.RequestSpec, error) {
	var spec scheduler.RequestSpec
	state, err := scheduler.ParseState(in.State)
	if err != nil {
		return spec, badRequest("%w", err)
	}
	spec.Name, spec.SoftwareType, spec.State = in.Name, in.Type, state
	if state == scheduler.StateDestroyed && in.RecipeCID == "" && in.RecipeTOML == "" {
		v, err := h.Market.Instance(in.Name)
		if err != nil {
			return spec, &requestError{http.StatusNotFound, fmt.Errorf("market: no instance %s to destroy (list them with weft instance list)", in.Name)}
		}
		spec.RecipeCID, spec.SoftwareType, spec.Resources, spec.Batch = v.RecipeCID, v.SoftwareType, v.Resources, v.Batch
		return spec, scheduler.ApplySLA(&spec, in.SLA)
	}
	// A re-request reuses the stored recipe, type, parameters (each --param
	// overrides one) and constraints (unless --sla gives new ones).
	prev, hasPrev := h.Market.Spec(ctx, in.Name)
	hasPrev = hasPrev && !batch
	if hasPrev && in.RecipeCID == "" && in.RecipeTOML == "" {
		in.RecipeCID = prev.RecipeCID
		in.Type = cmp.Or(in.Type, prev.SoftwareType)
	}
	rc, c, err := h.resolveRecipe(ctx, in)
	if err != nil {
		return spec, err
	}
	st, err := rc.Type(in.Type)
	if err != nil {
		return spec, badRequest("market: %w", err)
	}
	if schema, _ := rc.Schema(in.Type); hasPrev {
		in.Params = scheduler.ReuseParams(prev.Params, in.Params, func(k string) bool { return schema[k] != nil })
	}
	if _, err := rc.ValidateParams(in.Type, in.Params); err != nil {
		return spec, badRequest("market: %w", err)
	}
	if batch && !st.Batch {
		tn := in.Type
		if tn == "" {
			tn = rc.DefaultType
		}
		return spec, badRequest("market: software type %q of recipe %s is not a batch job (use weft request for services)", tn, rc.Name)
	}
	spec.RecipeCID, spec.SoftwareType, spec.Params, spec.Batch = c, in.Type, in.Params, st.Batch
	spec.Resources = scheduler.Resources{CPUMillis: st.Resources.CPUMillis, MemoryBytes: int64(st.Resources.MemoryBytes), DiskBytes: int64(st.Resources.DiskBytes)}
	if err := scheduler.ApplySLA(&spec, in.SLA); err != nil {
		return spec, badRequest("%w", err)
	}
	if hasPrev && len(in.SLA) == 0 {
		scheduler.ReuseConstraints(&spec, prev)
	}
	return spec, nil
}

// WriteError answers err with the HTTP status of its kind: a bad request,
// a missing instance, or a failure.
func WriteError(w http.ResponseWriter, err error) {
	var re *requestError
	switch {
	case errors.As(err, &re):
		api.WriteError(w, re.status, err)
	case errors.Is(err, scheduler.ErrNotFound):
		api.WriteError(w, http.StatusNotFound, err)
	case errors.Is(err, scheduler.ErrInvalidRequest), errors.Is(err, scheduler.ErrUnknownConstraint),
		errors.Is(err, scheduler.ErrBadConstraint), errors.Is(err, scheduler.ErrTooLarge):
		api.WriteError(w, http.StatusBadRequest, err)
	default:
		api.WriteError(w, http.StatusInternalServerError, err)
	}
}

func (h *Handlers) handleRequest(w http.ResponseWriter, r *http.Request) {
	var in api.Request
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	if err := scheduler.ValidateName(in.Name); err != nil {
		WriteError(w, err)
		return
	}
	spec, err := h.buildSpec(r.Context(), &in, false)
	if err != nil {
		WriteError(w, err)
		return
	}
	v, err := h.Market.Request(r.Context(), spec)
	if err != nil {
		WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, v)
}

func (h *Handlers) handleInstance(w http.ResponseWriter, r *http.Request) {
	v, err := h.Market.Instance(r.PathValue("name"))
	if err != nil {
		WriteError(w, fmt.Errorf("%w: %s (list them with weft instance list)", err, r.PathValue("name")))
		return
	}
	api.WriteJSON(w, http.StatusOK, v)
}

// HandleJobRun serves POST /v1/jobs.
func (h *Handlers) HandleJobRun(w http.ResponseWriter, r *http.Request) {
	var in api.Request
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	// A job runs: a state asking for anything else (a stop or a destroy
	// sent here) must not start it.
	if in.State != "" && in.State != scheduler.StateStarted.String() {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("market: state %q: POST /v1/jobs only runs jobs; change a job's state with POST /v1/requests (weft request NAME --state %s)", in.State, in.State))
		return
	}
	in.State = ""
	named := in.Name != ""
	if !named {
		in.Name = "job-pending"
	}
	spec, err := h.buildSpec(r.Context(), &in, true)
	if err != nil {
		WriteError(w, err)
		return
	}
	if !named {
		spec.Name = jobs.Name(spec.RecipeCID, spec.SoftwareType, spec.Params)
	}
	spec.MaxRetries = h.MaxRetries
	if in.MaxRetries != nil {
		spec.MaxRetries = *in.MaxRetries
	}
	j, err := h.Jobs.Run(r.Context(), spec, named)
	if err != nil {
		WriteError(w, err)
		return
	}
	api.WriteJSON(w, http.StatusOK, j)
}

func (h *Handlers) handleJob(w http.ResponseWriter, r *http.Request) {
	v, err := h.Market.Instance(r.PathValue("id"))
	if err != nil || !v.Batch {
		WriteError(w, fmt.Errorf("%w: job %s", scheduler.ErrNotFound, r.PathValue("id")))
		return
	}
	api.WriteJSON(w, http.StatusOK, h.Jobs.View(v))
}

func (h *Handlers) handleJobResult(w http.ResponseWriter, r *http.Request) {
	var in api.JobResult
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	c, err := cid.Decode(in.CID)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("market: %q is not a CID: %w", in.CID, err))
		return
	}
	if !filepath.IsAbs(in.Out) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("market: out %q must be an absolute path", in.Out))
		return
	}
	var hints []peer.ID
	for _, v := range h.Market.Instances() {
		if v.Result == in.CID && v.Node != "" {
			if id, err := peer.Decode(v.Node); err == nil {
				hints = append(hints, id)
			}
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	if err := h.Content.FetchDir(ctx, c, in.Out, hints...); err != nil {
		status := http.StatusBadGateway
		if strings.Contains(err.Error(), "not a directory") {
			status = http.StatusBadRequest
		}
		api.WriteError(w, status, fmt.Errorf("market: result %s: %w", in.CID, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"cid": in.CID, "out": in.Out})
}
