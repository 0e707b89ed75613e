// Package localapi serves the node's local-instance routes: GET
// /v1/partitions and /v1/local/instances (run, list, show, state change,
// destroy) over the partition manager, without the market — what weft
// partition run, show, start, stop and destroy call.
//
// Concurrency: the handlers run concurrently; the partition manager
// serializes what they apply.
package localapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// RecipeSource finds a recipe by CID, locally or on the grid (the recipes
// subsystem, content.Service).
type RecipeSource interface {
	RecipeByCID(ctx context.Context, cid string) (*recipes.Recipe, error)
}

// Handlers serves the local-instance routes.
type Handlers struct {
	// Parts are the node's partitions.
	Parts *partition.Manager
	// Recipes finds recipes by CID (nil: only inline recipes run).
	Recipes RecipeSource
	// Requester is the node's peer ID, recorded as the requester of what it
	// runs ("" without a p2p node).
	Requester string
}

// Routes registers the routes on srv.
func (h *Handlers) Routes(srv *api.Server) {
	srv.HandleFunc("GET /v1/partitions", h.handlePartitions)
	srv.HandleFunc("POST /v1/local/instances", h.handleLocalRun)
	srv.HandleFunc("GET /v1/local/instances", h.handleLocalList)
	srv.HandleFunc("GET /v1/local/instances/{id}", h.handleLocalGet)
	srv.HandleFunc("DELETE /v1/local/instances/{id}", h.handleLocalDestroy)
}

// ErrBadRequest marks errors that are the caller's fault (HTTP 400).
var ErrBadRequest = errors.New("localapi: bad request")

// Run validates req and applies it in a local partition: a new instance
// or an update (with a recipe), or a state change of a known instance
// (ID and State alone).
func (h *Handlers) Run(ctx context.Context, req api.LocalRun) (partition.InstanceStatus, error) {
	var rc *recipes.Recipe
	switch {
	case req.TOML != "" && req.RecipeCID != "":
		return partition.InstanceStatus{}, fmt.Errorf("%w: give recipe_cid or toml, not both", ErrBadRequest)
	case req.TOML != "":
		r, err := recipes.Parse("request", []byte(req.TOML))
		if err != nil {
			return partition.InstanceStatus{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		rc = r
	case req.RecipeCID != "":
		if h.Recipes == nil {
			return partition.InstanceStatus{}, errors.New("partitions: no recipe store to find the recipe in (send it inline with toml)")
		}
		r, err := h.Recipes.RecipeByCID(ctx, req.RecipeCID)
		if err != nil {
			return partition.InstanceStatus{}, err
		}
		rc = r
	default:
		if req.ID == "" || req.State == "" {
			return partition.InstanceStatus{}, fmt.Errorf("%w: give recipe_cid or toml", ErrBadRequest)
		}
	}
	state := partition.State(req.State)
	if state == "" {
		state = partition.StateStarted
	}
	if !state.Valid() {
		return partition.InstanceStatus{}, fmt.Errorf("%w: state %q (started, stopped or destroyed)", ErrBadRequest, req.State)
	}
	id := req.ID
	if id == "" && req.Name != "" {
		id = "local-" + req.Name
	}
	if id == "" {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		id = "local-" + hex.EncodeToString(b)
	}
	if rc == nil { // a state change of a known instance
		if err := h.Parts.SetState(id, state); err != nil {
			return partition.InstanceStatus{}, err
		}
	} else {
		strParams := make(map[string]string, len(req.Params))
		for k, v := range req.Params {
			switch x := v.(type) {
			case string:
				strParams[k] = x
			case float64:
				strParams[k] = strconv.FormatFloat(x, 'f', -1, 64)
			case bool:
				strParams[k] = strconv.FormatBool(x)
			default:
				return partition.InstanceStatus{}, fmt.Errorf("%w: param %s: %T is not a string, number or bool", ErrBadRequest, k, v)
			}
		}
		params, err := rc.ValidateParams(req.Type, strParams)
		if err != nil {
			return partition.InstanceStatus{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		spec := partition.InstanceSpec{ID: id, Name: req.Name, RecipeCID: req.RecipeCID, Recipe: rc, Type: req.Type,
			Params: params, State: state}
		spec.Requester = h.Requester
		if cur, ok := h.Parts.Get(id); ok {
			spec.Epoch = cur.Epoch
		}
		if err := h.Parts.Apply(spec); err != nil {
			return partition.InstanceStatus{}, err
		}
	}
	st, ok := h.Parts.Get(id)
	if !ok {
		st = partition.InstanceStatus{ID: id, State: state, Phase: partition.PhaseDestroyed, Partition: -1}
	}
	return st, nil
}

func (h *Handlers) handlePartitions(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.Parts.Partitions())
}

func (h *Handlers) handleLocalRun(w http.ResponseWriter, r *http.Request) {
	var req api.LocalRun
	if err := api.DecodeJSON(r, &req); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	st, err := h.Run(r.Context(), req)
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, partition.ErrInvalidSpec), errors.Is(err, recipes.ErrInvalid),
		errors.Is(err, recipes.ErrParams), errors.Is(err, recipes.ErrUnknownType), errors.Is(err, store.ErrBadCID):
		api.WriteError(w, http.StatusBadRequest, err)
	case errors.Is(err, partition.ErrNoFreePartition), errors.Is(err, partition.ErrStaleEpoch):
		api.WriteError(w, http.StatusConflict, err)
	case errors.Is(err, partition.ErrUnknownInstance), errors.Is(err, store.ErrNotFound), errors.Is(err, transfer.ErrNoProvider):
		api.WriteError(w, http.StatusNotFound, err)
	case err != nil:
		api.WriteError(w, http.StatusInternalServerError, err)
	default:
		api.WriteJSON(w, http.StatusOK, st)
	}
}

func (h *Handlers) handleLocalList(w http.ResponseWriter, r *http.Request) {
	api.WriteJSON(w, http.StatusOK, h.Parts.List())
}

func (h *Handlers) handleLocalGet(w http.ResponseWriter, r *http.Request) {
	st, ok := h.Parts.Get(r.PathValue("id"))
	if !ok {
		api.WriteError(w, http.StatusNotFound, fmt.Errorf("%w: %s", partition.ErrUnknownInstance, r.PathValue("id")))
		return
	}
	api.WriteJSON(w, http.StatusOK, st)
}

func (h *Handlers) handleLocalDestroy(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.Parts.SetState(id, partition.StateDestroyed); err != nil {
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	st, ok := h.Parts.Get(id)
	if !ok {
		st = partition.InstanceStatus{ID: id, State: partition.StateDestroyed, Phase: partition.PhaseDestroyed, Partition: -1}
	}
	api.WriteJSON(w, http.StatusOK, st)
}
