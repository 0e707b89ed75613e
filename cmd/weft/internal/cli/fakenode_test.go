package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/recipes"
)

// fakeNode answers the API routes the client commands use, from state it
// keeps (instances requested through it, recipes published to it), so the
// commands run end to end in-process without a grid. Instances requested
// with --wait reach their requested state once pendingFor has passed.
type fakeNode struct {
	t       *testing.T
	dir     string // data dir holding api.json
	srv     *httptest.Server
	token   string
	peerID  string
	logFile string

	pendingFor time.Duration
	notFounder bool // grid admit/revoke answer 403

	mu        sync.Mutex
	recipes   map[string]map[string]any
	instances map[string]*fakeInstance
}

type fakeInstance struct {
	name, recipe string
	batch        bool
	requested    time.Time
}

const fakePeer = "12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"

func newFakeNode(t *testing.T) *fakeNode {
	t.Helper()
	f := &fakeNode{t: t, dir: t.TempDir(), token: "tok-" + t.Name(), peerID: fakePeer,
		recipes: map[string]map[string]any{}, instances: map[string]*fakeInstance{}}
	f.logFile = filepath.Join(f.dir, "web.log")
	if err := os.WriteFile(f.logFile, []byte("serving on http://127.0.0.1:1/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, map[string]any{"peer_id": f.peerID, "addrs": []string{"/ip4/127.0.0.1/tcp/1/p2p/" + f.peerID},
			"members": 1, "peers": 0, "grid": "public", "preset": "local", "version": "test", "uptime_s": 1,
			"sandbox": map[string]any{"landlock_abi": 7, "fs": true, "bind_ports": true, "scoped_signals": true,
				"private_tmp": true, "disk_quota": false, "rlimits": true}})
	})
	mux.HandleFunc("POST /v1/login-code", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, map[string]any{"code": "0123456789abcdef0123456789abcdef", "expires_at": time.Now().Add(time.Minute)})
	})
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, []map[string]any{{"peer_id": f.peerID, "state": "alive", "self": true, "addrs": []string{}}})
	})
	grid := func(w http.ResponseWriter, r *http.Request) {
		f.json(w, api.Grid{Grid: "lab", ID: "g1", Founder: true, Version: 2, Members: []string{f.peerID}, Revoked: []string{}})
	}
	mux.HandleFunc("GET /v1/grid", grid)
	mux.HandleFunc("POST /v1/grid/{verb}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		nf := f.notFounder
		f.mu.Unlock()
		if nf {
			api.WriteError(w, http.StatusForbidden, errors.New("p2p: only the grid's founder can change its members"))
			return
		}
		grid(w, r)
	})
	mux.HandleFunc("POST /v1/recipes", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		rc, err := recipes.Parse(in["file"], []byte(in["toml"]))
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, err)
			return
		}
		m, _ := docMap(rc.Doc())
		m["provided"] = true
		f.mu.Lock()
		f.recipes[rc.CID().String()] = m
		f.mu.Unlock()
		f.json(w, m)
	})
	mux.HandleFunc("GET /v1/recipes", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := []map[string]any{}
		for _, m := range f.recipes {
			out = append(out, m)
		}
		f.json(w, out)
	})
	mux.HandleFunc("GET /v1/recipes/{cid}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		m, ok := f.recipes[r.PathValue("cid")]
		f.mu.Unlock()
		if !ok {
			api.WriteError(w, http.StatusNotFound, errors.New("recipes: not found"))
			return
		}
		f.json(w, m)
	})
	mux.HandleFunc("GET /v1/partitions", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, []partition.PartitionStatus{{Index: 0, Dir: f.dir, Ports: [2]int{20000, 20009}, InstanceID: "local-web",
			State: "busy", Phase: "running", Promises: []partition.PromiseStatus{}}})
	})
	local := func(w http.ResponseWriter, id string) {
		if id != "local-web" {
			api.WriteError(w, http.StatusNotFound, errors.New("partition: unknown instance: "+id))
			return
		}
		f.json(w, partition.InstanceStatus{ID: id, Name: "web", State: partition.StateStarted, Phase: partition.PhaseRunning,
			Promises: []partition.PromiseStatus{}, Connection: map[string]string{"url": "http://127.0.0.1:20000/"},
			Processes: []partition.ProcessStatus{{Name: "httpd", PID: 1, Running: true, Log: f.logFile}}})
	}
	mux.HandleFunc("GET /v1/local/instances/{id}", func(w http.ResponseWriter, r *http.Request) { local(w, r.PathValue("id")) })
	mux.HandleFunc("POST /v1/local/instances", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		_ = json.NewDecoder(r.Body).Decode(&in)
		id, _ := in["id"].(string)
		if id == "" {
			id = "local-web"
		}
		local(w, id)
	})
	mux.HandleFunc("POST /v1/requests", func(w http.ResponseWriter, r *http.Request) {
		var in api.Request
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.instances[in.Name] = &fakeInstance{name: in.Name, recipe: in.RecipeCID, requested: time.Now()}
		f.mu.Unlock()
		f.instance(w, in.Name)
	})
	mux.HandleFunc("GET /v1/instances", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		names := make([]string, 0, len(f.instances))
		for n := range f.instances {
			names = append(names, n)
		}
		f.mu.Unlock()
		out := []map[string]any{}
		for _, n := range names {
			out = append(out, f.view(n))
		}
		f.json(w, out)
	})
	mux.HandleFunc("GET /v1/instances/{name}", func(w http.ResponseWriter, r *http.Request) { f.instance(w, r.PathValue("name")) })
	mux.HandleFunc("POST /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var in api.Request
		_ = json.NewDecoder(r.Body).Decode(&in)
		f.mu.Lock()
		f.instances["job-1"] = &fakeInstance{name: "job-1", recipe: in.RecipeCID, batch: true, requested: time.Now()}
		f.mu.Unlock()
		f.job(w, "job-1")
	})
	mux.HandleFunc("GET /v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) { f.job(w, r.PathValue("id")) })
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, []map[string]any{{"name": "job-1", "state": "done", "result": "bafkreiresult", "node": fakePeer, "started": time.Now(), "ended": time.Now()}})
	})
	purged := func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if name == "" {
			name = "job-1"
		}
		f.json(w, []string{name})
	}
	mux.HandleFunc("GET /v1/instances/{name}/events", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, []map[string]any{{"time": time.Now(), "kind": "requested", "node": nil, "detail": "state started"}})
	})
	mux.HandleFunc("GET /v1/instances/{name}/why", func(w http.ResponseWriter, r *http.Request) {
		f.json(w, map[string]any{"auction": map[string]any{"winner": fakePeer, "bids": []any{}, "declines": []any{}},
			"ranked": []any{}, "ranking": "cheapest first", "summary": "1 bid(s)"})
	})
	logs := func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != "" && id != "local-web" {
			api.WriteError(w, http.StatusNotFound, errors.New("logs: partition: no such log: instance "+id+" has no partition on this node"))
			return
		}
		if p := r.URL.Query().Get("process"); p != "" && p != "httpd" {
			api.WriteError(w, http.StatusNotFound, errors.New("logs: no log of process "+p+" in this instance (its logs: httpd)"))
			return
		}
		if r.URL.Query().Get("format") == "json" {
			w.Header().Set("Content-Type", "application/x-ndjson")
			_, _ = w.Write([]byte(`{"process":"httpd","data":"listening\n"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte("==> httpd <==\nlistening\n"))
	}
	mux.HandleFunc("GET /v1/local/instances/{id}/logs", logs)
	mux.HandleFunc("GET /v1/instances/{name}/logs", logs)
	drain := func(w http.ResponseWriter, r *http.Request) {
		f.json(w, map[string]any{"draining": r.URL.Path != "/v1/node/undrain", "hosted": []string{}})
	}
	mux.HandleFunc("POST /v1/node/drain", drain)
	mux.HandleFunc("GET /v1/node/drain", drain)
	mux.HandleFunc("POST /v1/node/undrain", drain)
	mux.HandleFunc("DELETE /v1/jobs", purged)
	mux.HandleFunc("DELETE /v1/jobs/{name}", purged)
	mux.HandleFunc("DELETE /v1/instances/{name}", purged)
	mux.HandleFunc("POST /v1/jobs/result", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]string
		_ = json.NewDecoder(r.Body).Decode(&in)
		if err := os.WriteFile(filepath.Join(in["out"], "count"), []byte("9592\n"), 0o600); err != nil {
			api.WriteError(w, http.StatusInternalServerError, err)
			return
		}
		f.json(w, map[string]any{"cid": in["cid"], "out": in["out"], "files": 1})
	})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			api.WriteError(w, http.StatusUnauthorized, errors.New("api: bad token"))
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(f.srv.Close)
	if err := api.WriteEndpoint(f.dir, api.Endpoint{Addr: f.srv.Listener.Addr().String(), Token: f.token}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeNode) json(w http.ResponseWriter, v any) { api.WriteJSON(w, http.StatusOK, v) }

// view is an instance as GET /v1/instances/{name} shows it: pending until
// pendingFor passed since it was requested, then started (done for a job).
func (f *fakeNode) view(name string) map[string]any {
	f.mu.Lock()
	in := f.instances[name]
	f.mu.Unlock()
	m := map[string]any{"name": name, "instance_id": "i-" + name, "requested_state": "started", "mine": true,
		"recipe_cid": in.recipe, "batch": in.batch, "epoch": 0, "generation": 1, "status_generation": 0}
	switch {
	case time.Since(in.requested) < f.pendingFor:
		m["state"], m["reason"] = "pending", "auction open"
	case in.batch:
		m["state"], m["node"], m["result"], m["epoch"], m["status_generation"] = "done", f.peerID, "bafkreiresult", 1, 1
	default:
		m["state"], m["node"], m["epoch"], m["status_generation"] = "started", f.peerID, 1, 1
		m["connection"] = map[string]string{"url": "http://127.0.0.1:20000/"}
	}
	return m
}

func (f *fakeNode) instance(w http.ResponseWriter, name string) {
	f.mu.Lock()
	_, ok := f.instances[name]
	f.mu.Unlock()
	if !ok {
		api.WriteError(w, http.StatusNotFound, errors.New("scheduler: not found: "+name))
		return
	}
	f.json(w, f.view(name))
}

func (f *fakeNode) job(w http.ResponseWriter, id string) {
	f.mu.Lock()
	in, ok := f.instances[id]
	f.mu.Unlock()
	if !ok || !in.batch {
		api.WriteError(w, http.StatusNotFound, errors.New("scheduler: not found: job "+id))
		return
	}
	v := f.view(id)
	f.json(w, map[string]any{"id": id, "node": v["node"], "state": v["state"], "result": v["result"], "reason": v["reason"]})
}

// cliRun runs the CLI in-process with stdout and stderr in buffers.
func cliRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// exampleRecipe is the path of an example recipe of the source tree.
func exampleRecipe(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "..", "..", "recipes", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedAddr is a loopback address where nothing listens any more.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
