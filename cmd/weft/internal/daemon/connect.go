package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/marketapi"
	"github.com/weftgrid/weft/p2p/tunnel"
	"github.com/weftgrid/weft/scheduler"
)

// TunnelUpgrade is the Upgrade token of GET /v1/instances/{name}/connect.
const TunnelUpgrade = "weft-tunnel"

// startTunnels serves tunnels to the ports of the instances this node
// hosts (for their requesters and delegates) and registers the API route
// that opens one to an instance of this node's.
func (s *marketSys) startTunnels(e env) {
	proto := s.deps.Node.ProtocolPrefix() + tunnel.Protocol
	srv := tunnel.NewServer(s.deps.Node.Host(), proto, s.tunnelTarget, s.log)
	e.onClose(srv.Close)
	e.api.HandleFunc("GET /v1/instances/{name}/connect", s.handleConnect)
}

// tunnelTarget authorizes a tunnel to a hosted instance's port and returns
// its address.
func (s *marketSys) tunnelTarget(ctx context.Context, from peer.ID, req tunnel.Request) (string, error) {
	id := scheduler.InstanceID(req.Instance)
	requester, delegates, ok := s.market.HostedAccess(ctx, id)
	if !ok {
		return "", errors.New("this node does not host that instance")
	}
	if from != requester && !slices.Contains(delegates, from) {
		return "", errors.New("only the instance's requester and its delegates may connect")
	}
	st, ok := s.deps.Parts.Get(req.Instance)
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
	host := s.host
	if host == "" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// handleConnect opens a tunnel to one of the named instance's ports and,
// once its host accepted, switches the HTTP connection to it (101) and
// pipes both ways. The instance is this node's (by name) or one it guards
// (by instance ID).
func (s *marketSys) handleConnect(w http.ResponseWriter, r *http.Request) {
	m, node := s.market, s.deps.Node
	if !strings.EqualFold(r.Header.Get("Upgrade"), TunnelUpgrade) {
		api.WriteError(w, http.StatusBadRequest, fmt.Errorf("connect needs Upgrade: %s", TunnelUpgrade))
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
	if host == node.ID() {
		addr, terr := s.tunnelTarget(ctx, node.ID(), req)
		if terr == nil {
			var dl net.Dialer
			remote, terr = dl.DialContext(ctx, "tcp", addr)
		}
		err, st = terr, remote
	} else {
		ts, oerr := tunnel.Open(ctx, node.Host(), host, node.ProtocolPrefix()+tunnel.Protocol, req)
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
	_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: " + TunnelUpgrade + "\r\nConnection: Upgrade\r\n\r\n")
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
