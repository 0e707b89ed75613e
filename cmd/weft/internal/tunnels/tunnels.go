// Package tunnels wires weft instance connect into a node: it serves
// tunnels (p2p/tunnel) to the ports of the instances the node hosts, for
// their requesters and delegates only, and answers the local API's route
// GET /v1/instances/{name}/connect, which opens a tunnel to an instance the
// node requested or guards and, once its host accepted, switches the HTTP
// connection to it (101, Upgrade: weft-tunnel).
//
// Concurrency: a *Service is safe for concurrent use; Close ends the
// tunnels it serves and waits for them.
package tunnels

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/marketapi"
	"github.com/weftgrid/weft/p2p/tunnel"
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

// Ports finds a hosted instance's ports (*partition.Manager).
type Ports interface {
	Get(id string) (partition.InstanceStatus, bool)
}

// Service serves and opens tunnels.
type Service struct {
	h        host.Host
	proto    protocol.ID
	m        Market
	parts    Ports
	portHost string
	srv      *tunnel.Server
}

// Start serves tunnels to the ports of parts' instances on h under prefix
// (the grid's protocol prefix) and registers the API route on apiSrv.
// portHost is where the partitions' ports listen ("" = 127.0.0.1).
func Start(h host.Host, prefix string, parts Ports, portHost string, m Market, apiSrv *api.Server, log *slog.Logger) *Service {
	s := &Service{h: h, proto: protocol.ID(prefix) + tunnel.Protocol, m: m, parts: parts, portHost: portHost}
	s.srv = tunnel.NewServer(h, s.proto, s.target, log)
	apiSrv.HandleFunc("GET /v1/instances/{name}/connect", s.handleConnect)
	return s
}

// Close stops serving.
func (s *Service) Close() error { return s.srv.Close() }

// target authorizes a tunnel to a hosted instance's port and returns
// its address.
func (s *Service) target(ctx context.Context, from peer.ID, req tunnel.Request) (string, error) {
	id := scheduler.InstanceID(req.Instance)
	requester, delegates, ok := s.m.HostedAccess(ctx, id)
	if !ok {
		return "", errors.New("this node does not host that instance")
	}
	if from != requester && !slices.Contains(delegates, from) {
		return "", errors.New("only the instance's requester and its delegates may connect")
	}
	st, ok := s.parts.Get(req.Instance)
	if !ok || len(st.Ports) == 0 {
		return "", errors.New("the instance has no port")
	}
	port, ok := st.Ports[req.Port]
	if req.Port == "" {
		if len(st.Ports) > 1 {
			return "", fmt.Errorf("the instance has several ports: name one with --port (%s)", strings.Join(slices.Sorted(maps.Keys(st.Ports)), ", "))
		}
		for _, p := range st.Ports {
			port, ok = p, true
		}
	}
	if !ok {
		return "", fmt.Errorf("no port %q (the instance has %s)", req.Port, strings.Join(slices.Sorted(maps.Keys(st.Ports)), ", "))
	}
	host := s.portHost
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// handleConnect opens a tunnel to one of the named instance's ports and,
// once its host accepted, switches the HTTP connection to it (101) and
// pipes both ways. The instance is this node's (by name) or one it guards
// (by instance ID).
func (s *Service) handleConnect(w http.ResponseWriter, r *http.Request) {
	m := s.m
	if !strings.EqualFold(r.Header.Get("Upgrade"), api.TunnelUpgrade) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("connect needs Upgrade: %s", api.TunnelUpgrade))
		return
	}
	name := r.PathValue("name")
	v, err := m.Instance(name)
	if err != nil {
		i := slices.IndexFunc(m.Instances(), func(x scheduler.InstanceView) bool { return string(x.InstanceID) == name })
		if i < 0 {
			marketapi.WriteError(w, fmt.Errorf("%w: %s (list them with weft instance list)", err, name))
			return
		}
		v = m.Instances()[i]
	}
	host, err := peer.Decode(v.Node)
	if err != nil || v.State != scheduler.StateStarted {
		api.WriteError(w, http.StatusConflict, fmt.Errorf("market: %s is not running (state %s)", name, v.State))
		return
	}
	req := tunnel.Request{Instance: string(v.InstanceID), Port: r.URL.Query().Get("port")}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	var remote net.Conn
	var st interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}
	if host == s.h.ID() {
		addr, terr := s.target(ctx, s.h.ID(), req)
		if terr == nil {
			var dl net.Dialer
			remote, terr = dl.DialContext(ctx, "tcp", addr)
		}
		err, st = terr, remote
	} else {
		ts, oerr := tunnel.Open(ctx, s.h, host, s.proto, req)
		err = oerr
		if oerr == nil {
			st = ts
		}
	}
	if err != nil {
		api.WriteError(w, http.StatusBadGateway, fmt.Errorf("connect %s: %w", name, err))
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = st.Close()
		api.WriteError(w, http.StatusInternalServerError, errors.New("connect: the API server cannot switch protocols"))
		return
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		_ = st.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + api.TunnelUpgrade + "\r\nConnection: Upgrade\r\n\r\n")
	if err := rw.Flush(); err != nil {
		_ = conn.Close()
		_ = st.Close()
		return
	}
	// What the client sent after its request is in rw's reader.
	_ = tunnel.Pipe(&hijacked{Conn: conn, r: rw.Reader}, st)
}

// hijacked is a hijacked connection whose buffered input is read first.
type hijacked struct {
	net.Conn
	r interface{ Read([]byte) (int, error) }
}

func (h *hijacked) Read(p []byte) (int, error) { return h.r.Read(p) }

// CloseWrite closes the write half when the connection is TCP.
func (h *hijacked) CloseWrite() error {
	if tc, ok := h.Conn.(*net.TCPConn); ok {
		return tc.CloseWrite()
	}
	return h.Conn.Close()
}
