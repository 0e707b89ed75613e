// Package content is the node's recipes subsystem: the content store
// (recipes, artifacts, batch results) and the transfer service that serves
// it to peers and fetches from them, with its local HTTP routes, metrics
// and status. The partitions and the market use it through Fetch, Recipe,
// Announce and the partition.Fetcher / partition.ResultStore methods.
//
// Usage:
//
//	c, err := content.Open(ctx, dataDir, cfg.Recipes, node, log) // node may be nil: no transfer
//	defer c.Close()
//	c.Routes(apiServer); c.Metrics(registry)
//
// Concurrency: a *Service is safe for concurrent use; Close waits for its
// goroutines.
package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/config"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes"
	"github.com/weftgrid/weft/recipes/atomicfile"
	"github.com/weftgrid/weft/recipes/store"
	"github.com/weftgrid/weft/recipes/transfer"
)

// Dir is the content store's directory inside the data dir.
const Dir = "content"

// Service is the recipes subsystem: the content store and, on a node
// with a p2p host, the transfer service.
type Service struct {
	// Store is the content store.
	Store *store.Store
	xfer  *transfer.Service // nil when the node has no p2p host
	dur   config.RecipesDurations
	log   *slog.Logger

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closers []func() error
}

var (
	_ partition.Fetcher     = (*Service)(nil)
	_ partition.ResultStore = (*Service)(nil)
)

// Open opens the content store in dataDir and, when node is not nil,
// starts the transfer protocol on its host and the reprovide loop.
func Open(ctx context.Context, dataDir string, cfg config.RecipesConfig, node *p2p.Node, log *slog.Logger) (*Service, error) {
	st, err := store.Open(filepath.Join(dataDir, Dir))
	if err != nil {
		return nil, err
	}
	s := &Service{Store: st, dur: cfg.Durations(), log: log}
	s.closers = append(s.closers, st.Close)
	if node != nil {
		tc := transfer.DefaultConfig()
		tc.ProtocolPrefix = string(node.ProtocolPrefix())
		tc.IdleTimeout = s.dur.Idle
		tc.MaxServing = cfg.MaxServing
		tc.Parallel = cfg.FetchParallel
		tr, err := transfer.New(node.Host(), st, node.Routing(), tc, log)
		if err == nil {
			err = tr.Start(ctx)
		}
		if err != nil {
			_ = s.Close()
			return nil, err
		}
		s.closers = append(s.closers, tr.Close)
		s.xfer = tr
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	if s.xfer != nil {
		s.wg.Add(1)
		go s.reprovideLoop(bg)
	}
	return s, nil
}

// Close stops the background work, the transfer service and the store.
func (s *Service) Close() error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// Transfer is the transfer service (nil on a node without a p2p host).
func (s *Service) Transfer() *transfer.Service { return s.xfer }

// Routes registers the recipes and content routes on srv.
func (s *Service) Routes(srv *api.Server) {
	srv.HandleFunc("POST /v1/recipes", s.handlePublishRecipe)
	srv.HandleFunc("GET /v1/recipes", s.handleListRecipes)
	srv.HandleFunc("GET /v1/recipes/{cid}", s.handleGetRecipe)
	srv.HandleFunc("POST /v1/content", s.handlePutContent)
	srv.HandleFunc("GET /v1/content/{cid}", s.handleGetContent)
	srv.HandleFunc("GET /v1/content/{cid}/{path...}", s.handleGetContent)
}

// Status is the "content" section of GET /v1/status.
func (s *Service) Status() *api.ContentStatus {
	c := &api.ContentStatus{Transfer: s.xfer != nil}
	if s.xfer != nil {
		st := s.xfer.Stats()
		c.ContentTransfer = &api.ContentTransfer{BytesServed: st.BytesServed, BytesFetched: st.BytesFetched, FailedAttempts: st.FailedAttempts}
	}
	return c
}

// FetchFile implements partition.Fetcher: the artifact cid, fetched from
// the grid if needed, written to dest.
func (s *Service) FetchFile(ctx context.Context, c, dest string) error {
	id, err := cid.Decode(c)
	if err != nil {
		return fmt.Errorf("recipes: artifact %q is not a CID: %w", c, err)
	}
	if err := s.Fetch(ctx, id); err != nil {
		return err
	}
	rc, _, err := s.Store.Open(id)
	if err != nil {
		return err
	}
	defer rc.Close()
	return atomicfile.Write(dest, func(w io.Writer) error { _, err := io.Copy(w, rc); return err })
}

// PutDir implements partition.ResultStore: it stores a directory tree (a
// batch result), announces it and returns its CID.
func (s *Service) PutDir(ctx context.Context, dir string) (string, error) {
	c, err := s.Store.PutDir(dir)
	if err != nil {
		return "", err
	}
	s.Announce(c)
	return c.String(), nil
}

// RecipeByCID returns the recipe whose CID is c (a string), fetched from
// the grid if needed.
func (s *Service) RecipeByCID(ctx context.Context, c string) (*recipes.Recipe, error) {
	id, err := cid.Decode(c)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not a CID: %v", store.ErrBadCID, c, err)
	}
	return s.Recipe(ctx, id)
}

// Metrics registers the transfer counters (none without a p2p host).
func (s *Service) Metrics(reg prometheus.Registerer) {
	tr := s.xfer
	if tr == nil {
		return
	}
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
		_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: m.name, Help: m.help},
			func() float64 { return float64(f(tr.Stats())) }))
	}
}

// reprovideLoop announces every root of the store now and then every
// reprovide interval.
func (s *Service) reprovideLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTimer(2 * time.Second) // let the DHT find peers first
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		roots, err := s.Store.Roots()
		if err == nil {
			for _, c := range roots {
				if err := s.xfer.Provide(ctx, c); err != nil {
					s.log.Debug("reprovide", "cid", c, "err", err)
				}
				if ctx.Err() != nil {
					return
				}
			}
		}
		t.Reset(s.dur.Reprovide)
	}
}

// Fetch makes the whole content c local, fetching it from the grid
// (hinted peers first) when it is not.
func (s *Service) Fetch(ctx context.Context, c cid.Cid, hints ...peer.ID) error {
	if err := store.CheckCID(c); err != nil {
		return err
	}
	if s.Store.Has(c) {
		return nil
	}
	if s.xfer == nil {
		return fmt.Errorf("%w: %s (and this node has no p2p host to fetch it)", store.ErrNotFound, c)
	}
	if err := s.xfer.Fetch(ctx, c, hints...); err != nil {
		return err
	}
	_ = s.Store.MarkRoot(c)
	return nil
}

// Recipe returns the recipe c, fetched from the grid if needed.
func (s *Service) Recipe(ctx context.Context, c cid.Cid, hints ...peer.ID) (*recipes.Recipe, error) {
	if c.Prefix().Codec != cid.DagCBOR {
		return nil, fmt.Errorf("%w: %s is not a recipe CID", store.ErrBadCID, c)
	}
	if err := s.Fetch(ctx, c, hints...); err != nil {
		return nil, err
	}
	return s.Store.Recipe(c)
}

// Announce records c as provided by this node and announces it in
// the DHT in the background.
func (s *Service) Announce(c cid.Cid) {
	_ = s.Store.MarkRoot(c)
	if s.xfer == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = s.xfer.Provide(ctx, c)
	}()
}

// Publish stores a parsed recipe (resolving source files from
// baseDir) with its artifacts, and announces them. It returns whether the
// DHT took the provider record.
func (s *Service) Publish(ctx context.Context, r *recipes.Recipe, baseDir string) (cid.Cid, error, error) {
	st := s.Store
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
			if err := s.Fetch(ctx, a); err != nil {
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
	if s.xfer == nil {
		return c, errors.New("this node has no p2p host"), nil
	}
	for _, a := range r.ArtifactCIDs() {
		s.Announce(a)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return c, s.xfer.Provide(pctx, c), nil
}

func (s *Service) handlePublishRecipe(w http.ResponseWriter, r *http.Request) {
	var in api.PublishRecipe
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
	c, perr, err := s.Publish(r.Context(), rc, in.BaseDir)
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	out := api.PublishedRecipe{Document: recipes.Document{CID: c.String(), Recipe: rc}, Provided: perr == nil}
	if perr != nil {
		out.ProvideError = perr.Error()
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *Service) handleListRecipes(w http.ResponseWriter, r *http.Request) {
	cs, err := s.Store.Recipes()
	if err != nil {
		api.WriteError(w, http.StatusInternalServerError, err)
		return
	}
	out := []recipes.Document{}
	for _, c := range cs {
		if rc, err := s.Store.Recipe(c); err == nil {
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

func (s *Service) parseCIDParam(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
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

func (s *Service) handleGetRecipe(w http.ResponseWriter, r *http.Request) {
	c, ok := s.parseCIDParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.dur.Fetch)
	defer cancel()
	rc, err := s.Recipe(ctx, c)
	if err != nil {
		api.WriteError(w, contentStatus(err), fmt.Errorf("recipes: recipe %s: %w", c, err))
		return
	}
	api.WriteJSON(w, http.StatusOK, recipes.Document{CID: c.String(), Recipe: rc})
}

// handleGetContent serves content by CID (fetched from the grid if
// needed): a blob's bytes, a recipe as JSON, a tree's listing as JSON, or
// with a path a file inside a tree.
func (s *Service) handleGetContent(w http.ResponseWriter, r *http.Request) {
	c, ok := s.parseCIDParam(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.dur.Fetch)
	defer cancel()
	if err := s.Fetch(ctx, c); err != nil {
		api.WriteError(w, contentStatus(err), fmt.Errorf("recipes: content %s: %w", c, err))
		return
	}
	st := s.Store
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
func (s *Service) handlePutContent(w http.ResponseWriter, r *http.Request) {
	var c cid.Cid
	var err error
	if dir := r.URL.Query().Get("dir"); dir != "" {
		c, err = s.Store.PutDir(dir)
	} else {
		c, err = s.Store.Put(r.Body)
	}
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	s.Announce(c)
	api.WriteJSON(w, http.StatusOK, map[string]string{"cid": c.String()})
}
