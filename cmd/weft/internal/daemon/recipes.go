package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// recipesContentDir is the content store's directory inside the data dir.
const recipesContentDir = "content"

// recipesState is the recipes subsystem's part of the Daemon: the content
// store (recipes, artifacts, batch results) and the transfer service that
// serves it to peers and fetches from them.
//
// Other subsystems use:
//
//	d.recipesStore                         the *store.Store (nil before startRecipes)
//	d.recipesFetch(ctx, c, hints...)       make content c local (from the grid)
//	d.recipesGet(ctx, c, hints...)         a recipe by CID, fetched if needed
//	d.recipesAnnounce(c)                   record c as provided and announce it
type recipesState struct {
	recipesStore *store.Store
	recipesXfer  *transfer.Service // nil when the node has no p2p host
	recipesDur   struct{ fetch, reprovide time.Duration }

	recipesCancel context.CancelFunc
	recipesWG     sync.WaitGroup
}

// PublishRequest is the body of POST /v1/recipes.
type PublishRequest struct {
	// TOML is the recipe file's content.
	TOML string `json:"toml"`
	// File names the recipe in error messages (default "recipe.toml").
	File string `json:"file,omitempty"`
	// BaseDir resolves files given by source (default: sources are refused).
	BaseDir string `json:"base_dir,omitempty"`
}

// PublishResult is the answer of POST /v1/recipes: the recipe with its
// CID, and whether it could be announced in the DHT.
type PublishResult struct {
	recipes.Document
	// Provided is true when the provider record reached the DHT.
	Provided bool `json:"provided"`
	// ProvideError says why not, when Provided is false.
	ProvideError string `json:"provide_error,omitempty"`
}

// startRecipes opens the content store, starts the transfer protocol on
// the p2p host, plugs the store into the partitions and registers routes.
func (d *Daemon) startRecipes(ctx context.Context) error {
	st, err := store.Open(filepath.Join(d.cfg.Node.DataDir, recipesContentDir))
	if err != nil {
		return err
	}
	d.onClose(st.Close)
	d.recipesStore = st
	dur := d.cfg.Recipes.Durations()
	d.recipesDur.fetch, d.recipesDur.reprovide = dur.Fetch, dur.Reprovide
	log := d.log.With("subsystem", "recipes")

	if d.node != nil {
		tc := transfer.DefaultConfig()
		tc.ProtocolPrefix = string(d.node.ProtocolPrefix())
		tc.IdleTimeout = dur.Idle
		tc.MaxServing = d.cfg.Recipes.MaxServing
		tc.Parallel = d.cfg.Recipes.FetchParallel
		tr, err := transfer.New(d.node.Host(), st, d.node.Routing(), tc, log)
		if err != nil {
			return err
		}
		if err := tr.Start(ctx); err != nil {
			return err
		}
		d.onClose(tr.Close)
		d.recipesXfer = tr
		d.registerRecipesMetrics(tr)
	}

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.recipesCancel = cancel
	d.onClose(func() error { cancel(); d.recipesWG.Wait(); return nil })
	if d.recipesXfer != nil {
		d.recipesWG.Add(1)
		go d.reprovideLoop(bg, log)
	}

	d.setPartitionContent(PartitionContent{
		Fetch: func(ctx context.Context, c, dest string) error {
			id, err := cid.Decode(c)
			if err != nil {
				return fmt.Errorf("recipes: artifact %q is not a CID: %w", c, err)
			}
			if err := d.recipesFetch(ctx, id); err != nil {
				return err
			}
			rc, _, err := st.Open(id)
			if err != nil {
				return err
			}
			defer rc.Close()
			return recipesWriteFile(dest, rc)
		},
		PutDir: func(ctx context.Context, dir string) (string, error) {
			c, err := st.PutDir(dir)
			if err != nil {
				return "", err
			}
			d.recipesAnnounce(c)
			return c.String(), nil
		},
		Recipe: func(ctx context.Context, c string) (*recipes.Recipe, error) {
			id, err := cid.Decode(c)
			if err != nil {
				return nil, fmt.Errorf("%w: %q is not a CID: %v", store.ErrBadCID, c, err)
			}
			return d.recipesGet(ctx, id)
		},
	})

	d.statusExtras = append(d.statusExtras, func(m map[string]any) {
		c := map[string]any{"transfer": d.recipesXfer != nil}
		if d.recipesXfer != nil {
			s := d.recipesXfer.Stats()
			c["bytes_served"], c["bytes_fetched"], c["failed_attempts"] = s.BytesServed, s.BytesFetched, s.FailedAttempts
		}
		m["content"] = c
	})

	d.api.HandleFunc("POST /v1/recipes", d.handlePublishRecipe)
	d.api.HandleFunc("GET /v1/recipes", d.handleListRecipes)
	d.api.HandleFunc("GET /v1/recipes/{cid}", d.handleGetRecipe)
	d.api.HandleFunc("POST /v1/content", d.handlePutContent)
	d.api.HandleFunc("GET /v1/content/{cid}", d.handleGetContent)
	d.api.HandleFunc("GET /v1/content/{cid}/{path...}", d.handleGetContent)
	return nil
}

func (d *Daemon) registerRecipesMetrics(tr *transfer.Service) {
	for _, m := range []struct {
		name, help string
		f          func(transfer.Stats) int64
	}{
		{"weft_content_served_bytes_total", "Block bytes served to peers.", func(s transfer.Stats) int64 { return s.BytesServed }},
		{"weft_content_fetched_bytes_total", "Block bytes fetched from peers (verified).", func(s transfer.Stats) int64 { return s.BytesFetched }},
		{"weft_content_fetches_total", "Content fetches started.", func(s transfer.Stats) int64 { return s.Fetches }},
		{"weft_content_failed_attempts_total", "Fetch attempts that failed with one provider (mismatch, truncation, refusal).", func(s transfer.Stats) int64 { return s.FailedAttempts }},
	} {
		f := m.f
		_ = d.metrics.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help},
			func() float64 { return float64(f(tr.Stats())) }))
	}
}

// reprovideLoop announces every root of the store now and then every
// reprovide interval.
func (d *Daemon) reprovideLoop(ctx context.Context, log interface{ Debug(string, ...any) }) {
	defer d.recipesWG.Done()
	t := time.NewTimer(2 * time.Second) // let the DHT find peers first
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		roots, err := d.recipesStore.Roots()
		if err == nil {
			for _, c := range roots {
				if err := d.recipesXfer.Provide(ctx, c); err != nil {
					log.Debug("reprovide", "cid", c, "err", err)
				}
				if ctx.Err() != nil {
					return
				}
			}
		}
		t.Reset(d.recipesDur.reprovide)
	}
}

// recipesFetch makes the whole content c local, fetching it from the grid
// (hinted peers first) when it is not.
func (d *Daemon) recipesFetch(ctx context.Context, c cid.Cid, hints ...peer.ID) error {
	if err := store.CheckCID(c); err != nil {
		return err
	}
	if d.recipesStore.Has(c) {
		return nil
	}
	if d.recipesXfer == nil {
		return fmt.Errorf("%w: %s (and this node has no p2p host to fetch it)", store.ErrNotFound, c)
	}
	if err := d.recipesXfer.Fetch(ctx, c, hints...); err != nil {
		return err
	}
	_ = d.recipesStore.MarkRoot(c)
	return nil
}

// recipesGet returns the recipe c, fetched from the grid if needed.
func (d *Daemon) recipesGet(ctx context.Context, c cid.Cid, hints ...peer.ID) (*recipes.Recipe, error) {
	if c.Prefix().Codec != cid.DagCBOR {
		return nil, fmt.Errorf("%w: %s is not a recipe CID", store.ErrBadCID, c)
	}
	if err := d.recipesFetch(ctx, c, hints...); err != nil {
		return nil, err
	}
	return d.recipesStore.Recipe(c)
}

// recipesAnnounce records c as provided by this node and announces it in
// the DHT in the background.
func (d *Daemon) recipesAnnounce(c cid.Cid) {
	_ = d.recipesStore.MarkRoot(c)
	if d.recipesXfer == nil {
		return
	}
	d.recipesWG.Add(1)
	go func() {
		defer d.recipesWG.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = d.recipesXfer.Provide(ctx, c)
	}()
}

// recipesPublish stores a parsed recipe (resolving source files from
// baseDir) with its artifacts, and announces them. It returns whether the
// DHT took the provider record.
func (d *Daemon) recipesPublish(ctx context.Context, r *recipes.Recipe, baseDir string) (cid.Cid, error, error) {
	st := d.recipesStore
	err := r.ResolveSources(baseDir, func(p string) (cid.Cid, error) {
		if baseDir == "" {
			return cid.Undef, errors.New("files given by source need the recipe's directory (publish with the CLI)")
		}
		return st.PutFile(p)
	})
	if err != nil {
		return cid.Undef, nil, err
	}
	for _, a := range r.ArtifactCIDs() {
		if !st.Has(a) {
			if err := d.recipesFetch(ctx, a); err != nil {
				return cid.Undef, nil, fmt.Errorf("recipes: artifact %s is neither local nor on the grid: %w", a, err)
			}
		}
		_ = st.MarkRoot(a)
	}
	c, err := st.PutRecipe(r)
	if err != nil {
		return cid.Undef, nil, err
	}
	_ = st.MarkRoot(c)
	if d.recipesXfer == nil {
		return c, errors.New("this node has no p2p host"), nil
	}
	for _, a := range r.ArtifactCIDs() {
		d.recipesAnnounce(a)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return c, d.recipesXfer.Provide(pctx, c), nil
}

func (d *Daemon) handlePublishRecipe(w http.ResponseWriter, r *http.Request) {
	var in PublishRequest
	if err := api.DecodeJSON(r, &in); err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	if in.File == "" {
		in.File = "recipe.toml"
	}
	rc, err := recipes.Parse(in.File, []byte(in.TOML))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	c, perr, err := d.recipesPublish(r.Context(), rc, in.BaseDir)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	out := PublishResult{Document: recipes.Document{CID: c.String(), Recipe: rc}, Provided: perr == nil}
	if perr != nil {
		out.ProvideError = perr.Error()
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) handleListRecipes(w http.ResponseWriter, r *http.Request) {
	cs, err := d.recipesStore.Recipes()
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	out := []recipes.Document{}
	for _, c := range cs {
		if rc, err := d.recipesStore.Recipe(c); err == nil {
			out = append(out, recipes.Document{CID: c.String(), Recipe: rc})
		}
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// contentStatus maps content errors to HTTP statuses.
func contentStatus(err error) int {
	switch {
	case errors.Is(err, store.ErrBadCID):
		return http.StatusBadRequest
	case errors.Is(err, store.ErrNotFound), errors.Is(err, transfer.ErrNoProvider):
		return http.StatusNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func (d *Daemon) parseCIDParam(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	c, err := cid.Decode(r.PathValue("cid"))
	if err == nil {
		err = store.CheckCID(c)
	}
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("recipes: %q is not a content ID: %v", r.PathValue("cid"), err))
		return cid.Undef, false
	}
	return c, true
}

func (d *Daemon) handleGetRecipe(w http.ResponseWriter, r *http.Request) {
	c, ok := d.parseCIDParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.recipesDur.fetch)
	defer cancel()
	rc, err := d.recipesGet(ctx, c)
	if err != nil {
		api.WriteError(w, contentStatus(err), fmt.Errorf("recipes: recipe %s: %w", c, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, recipes.Document{CID: c.String(), Recipe: rc})
}

// handleGetContent serves content by CID (fetched from the grid if
// needed): a blob's bytes, a recipe as JSON, a tree's listing as JSON, or
// with a path a file inside a tree.
func (d *Daemon) handleGetContent(w http.ResponseWriter, r *http.Request) {
	c, ok := d.parseCIDParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.recipesDur.fetch)
	defer cancel()
	if err := d.recipesFetch(ctx, c); err != nil {
		api.WriteError(w, contentStatus(err), fmt.Errorf("recipes: content %s: %w", c, err))
		return
	}
	st := d.recipesStore
	kind := store.KindChunk
	if c.Prefix().Codec == cid.DagCBOR {
		b, err := st.Block(c)
		if err != nil {
			api.WriteError(w, contentStatus(err), err)
			return
		}
		kind = store.KindOf(c, b)
	}
	var rc io.ReadCloser
	var size int64
	var err error
	switch p := r.PathValue("path"); {
	case p != "":
		if kind != store.KindDir {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("recipes: %s is a %s, not a directory tree", c, kind))
			return
		}
		rc, size, err = st.OpenPath(c, p)
	case kind == store.KindRecipe:
		rcp, err := st.Recipe(c)
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, rcp.Doc())
		return
	case kind == store.KindDir:
		ents, err := st.ListDir(c)
		if err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, map[string]any{"cid": c.String(), "kind": "dir", "entries": ents})
		return
	default:
		rc, size, err = st.Open(c)
	}
	if err != nil {
		api.WriteError(w, contentStatus(err), err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc)
}

// handlePutContent stores the request body as a blob, or with ?dir=PATH the
// local directory tree PATH, and announces it.
func (d *Daemon) handlePutContent(w http.ResponseWriter, r *http.Request) {
	var c cid.Cid
	var err error
	if dir := r.URL.Query().Get("dir"); dir != "" {
		c, err = d.recipesStore.PutDir(dir)
	} else {
		c, err = d.recipesStore.Put(r.Body)
	}
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	d.recipesAnnounce(c)
	api.WriteJSON(w, http.StatusOK, map[string]string{"cid": c.String()})
}

// recipesWriteFile writes r into dest through a temporary file and a rename.
func recipesWriteFile(dest string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".fetch-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dest)
}
