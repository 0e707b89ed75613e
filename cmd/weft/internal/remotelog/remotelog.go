// Package remotelog wires instance logs into a node: it serves the logs of
// the instances the node hosts over libp2p (p2p/logstream) to their
// requesters and delegates only, and answers the local API's log routes —
// GET /v1/local/instances/{id}/logs (an instance in this node's
// partitions, running or stopped) and GET /v1/instances/{name}/logs (an
// instance this node requested or guards, read from its host).
//
// Both routes take process=NAME, tail=N, since=DURATION and follow=1, and
// answer text: each process's lines after a "==> NAME <==" line; with
// format=json, one JSON object per line, {"process", "data"}.
//
// Concurrency: a *Service is safe for concurrent use; Close ends the
// streams it serves and waits for them.
package remotelog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/p2p/logstream"
	"github.com/weftgrid/weft/partition"
	"github.com/weftgrid/weft/scheduler"
)

// Market is what the service needs of the market engine (*scheduler.Market).
type Market interface {
	Instance(name string) (scheduler.InstanceView, error)
	Instances() []scheduler.InstanceView
	// HostedAccess names who may reach an instance this node hosts.
	HostedAccess(ctx context.Context, id scheduler.InstanceID) (requester peer.ID, delegates []peer.ID, ok bool)
}

// Service serves and fetches instance logs.
type Service struct {
	h     host.Host
	proto protocol.ID
	src   logstream.Source
	m     Market
	srv   *logstream.Server
}

// Start serves the logs of src's instances on h under prefix (the grid's
// protocol prefix) and registers the API routes on apiSrv. m may be nil
// (no market: only the local route).
func Start(h host.Host, prefix string, src logstream.Source, m Market, apiSrv *api.Server, log *slog.Logger) *Service {
	s := &Service{h: h, proto: protocol.ID(prefix + logstream.Protocol), src: src, m: m}
	s.srv = logstream.NewServer(h, s.proto, src, s.authorize, log)
	apiSrv.HandleFunc("GET /v1/local/instances/{id}/logs", s.handleLocal)
	if m != nil {
		apiSrv.HandleFunc("GET /v1/instances/{name}/logs", s.handleInstance)
	}
	return s
}

// Close stops serving.
func (s *Service) Close() error { return s.srv.Close() }

// Authorize lets from read instance's logs when it is the instance's
// requester or one of its delegates (the rule of weft instance connect),
// and the instance is hosted here under a confirmed contract.
func Authorize(ctx context.Context, m Market, from peer.ID, instance string) error {
	if m == nil {
		return errors.New("this node runs no market")
	}
	requester, delegates, ok := m.HostedAccess(ctx, scheduler.InstanceID(instance))
	if !ok {
		return errors.New("this node does not host that instance")
	}
	if from != requester && !slices.Contains(delegates, from) {
		return errors.New("only the instance's requester and its delegates may read its logs")
	}
	return nil
}

func (s *Service) authorize(ctx context.Context, from peer.ID, instance string) error {
	return Authorize(ctx, s.m, from, instance)
}

// parseRequest reads the query of a log route.
func parseRequest(r *http.Request, instance string) (logstream.Request, error) {
	q := r.URL.Query()
	req := logstream.Request{Instance: instance, Process: q.Get("process"), Follow: q.Get("follow") != ""}
	if t := q.Get("tail"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 || n > logstream.MaxTail {
			return req, fmt.Errorf("logs: tail=%q: want 0..%d lines", t, logstream.MaxTail)
		}
		req.Tail = n
	}
	if d := q.Get("since"); d != "" {
		v, err := time.ParseDuration(d)
		if err != nil || v < 0 {
			return req, fmt.Errorf("logs: since=%q: want a duration such as 10m", d)
		}
		req.Since = v
	}
	if _, err := req.Encode(); err != nil {
		return req, err
	}
	return req, nil
}

func (s *Service) handleLocal(w http.ResponseWriter, r *http.Request) {
	req, err := parseRequest(r, r.PathValue("id"))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	s.serveLocal(w, r, req)
}

// serveLocal answers req from this node's partitions.
func (s *Service) serveLocal(w http.ResponseWriter, r *http.Request, req logstream.Request) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		_ = logstream.Serve(ctx, s.src, req, pw, nil)
		_ = pw.Close()
	}()
	write(w, r, logstream.NewReader(pr, pr.Close))
}

func (s *Service) handleInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	v, err := s.m.Instance(name)
	if err != nil {
		i := slices.IndexFunc(s.m.Instances(), func(x scheduler.InstanceView) bool { return string(x.InstanceID) == name })
		if i < 0 {
			api.WriteError(w, http.StatusNotFound, fmt.Errorf("%w: %s (list them with weft instance list --all)", scheduler.ErrNotFound, name))
			return
		}
		v = s.m.Instances()[i]
	}
	req, err := parseRequest(r, string(v.InstanceID))
	if err != nil {
		api.WriteError(w, http.StatusBadRequest, err)
		return
	}
	host, err := peer.Decode(v.Node)
	if err != nil {
		api.WriteError(w, http.StatusConflict, fmt.Errorf("logs: %s is not placed on any node (state %s)", name, v.State))
		return
	}
	if host == s.h.ID() {
		s.serveLocal(w, r, req)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	rd, err := logstream.Open(ctx, s.h, host, s.proto, req)
	if err != nil {
		api.WriteError(w, http.StatusBadGateway, fmt.Errorf("logs of %s from its host %s: %w", name, host, err))
		return
	}
	defer rd.Close()
	write(w, r, rd)
}

// write copies rd's frames to the HTTP answer: text, or JSON lines with
// format=json. A refusal before anything was written becomes an API error.
func write(w http.ResponseWriter, r *http.Request, rd *logstream.Reader) {
	asJSON := r.URL.Query().Get("format") == "json"
	started := false
	begin := func() {
		if !started {
			if asJSON {
				w.Header().Set("Content-Type", "application/x-ndjson")
			} else {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			}
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	fl, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	cur := ""
	for {
		f, err := rd.Next()
		if err != nil {
			if !started {
				status := http.StatusBadGateway
				if errors.Is(err, logstream.ErrRefused) {
					status = http.StatusNotFound
				}
				api.WriteError(w, status, fmt.Errorf("logs: %w", err))
				return
			}
			if !asJSON {
				fmt.Fprintf(w, "\n[logs ended: %v]\n", err)
			}
			return
		}
		begin()
		switch f.Type {
		case logstream.FrameLog:
			cur = string(f.Payload)
			if !asJSON {
				fmt.Fprintf(w, "==> %s <==\n", cur)
			}
		case logstream.FrameData:
			if asJSON {
				_ = enc.Encode(map[string]string{"process": cur, "data": string(f.Payload)})
			} else {
				_, _ = w.Write(f.Payload)
			}
		case logstream.FrameEnd:
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
}

var _ logstream.Source = (*partition.Manager)(nil)
