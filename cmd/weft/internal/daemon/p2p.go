package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"syscall"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pbnjay/memory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
	"github.com/weftgrid/weft/cmd/weft/internal/version"
	"github.com/weftgrid/weft/p2p"
	"github.com/weftgrid/weft/p2p/grid"
	"github.com/weftgrid/weft/partition"
)

// p2pSys is the p2p subsystem: the running node, which the others use
// (pubsub topics via node.JoinTopic, stream protocols under
// node.ProtocolPrefix(), the DHT via node.Routing(), membership via
// node.Members/SubscribeMembers, the capacity advert via node.SetAdvert),
// and the routes of the node's peers and grid.
type p2pSys struct {
	node *p2p.Node
}

// p2pConfig turns the [node] section into a p2p.Config.
func p2pConfig(e env) (p2p.Config, error) {
	c := e.cfg.Node
	pc := p2p.DefaultConfig()
	pc.DataDir = c.DataDir
	pc.Listen = c.Listen
	pc.Bootstrap = c.Bootstrap
	pc.GridFile = c.Grid
	preset, err := p2p.ParsePreset(c.Preset)
	if err != nil {
		return pc, err
	}
	pc.Preset = preset
	pc.Logger = e.log
	switch strings.ToLower(c.MDNS) {
	case "on":
		pc.MDNS = true
	case "off":
		pc.MDNS = false
	default:
		pc.MDNS = preset != p2p.PresetLocal
	}
	pc.DHTDiscovery = c.DHTDiscovery
	pc.NAT = c.NAT
	if pc.Reachability, err = p2p.ParseReachability(c.Reachability); err != nil {
		return pc, err
	}
	pc.Relays = c.Relays
	pc.ConnLow, pc.ConnHigh = c.ConnLow, c.ConnHigh
	pc.MaxMessageSize = c.MaxMessageBytes
	pc.OutboundQueue = c.OutboundQueue
	if strings.EqualFold(c.MemberlistTransport, "net") {
		pc.Transport = p2p.TransportNet
	}
	pc.MemberlistBind = c.MemberlistBind
	pc.Metrics = e.metrics
	pc.Advert = localAdvert(c.DataDir, c.Labels, e.cfg.Partitions.Count == 0)
	return pc, nil
}

// localAdvert is the node's initial capacity advert: all CPUs, total
// memory and the free space of the data dir (none for a requester-only node). The partitions subsystem
// refines it with node.SetAdvert.
func localAdvert(dataDir string, labels map[string]string, requesterOnly bool) p2p.Advert {
	if requesterOnly { // offers nothing, bids on nothing
		return p2p.Advert{Labels: labels, Version: version.String(), NoBids: true}
	}
	a := p2p.Advert{CPUMillis: int64(runtime.NumCPU()) * 1000, MemoryBytes: int64(memory.TotalMemory()), Labels: labels, Version: version.String()}
	var st syscall.Statfs_t
	if syscall.Statfs(dataDir, &st) == nil {
		a.DiskBytes = int64(st.Bavail) * int64(st.Bsize)
	}
	return a
}

// newP2P starts the p2p node and registers its routes, its metrics and
// its closer.
func newP2P(ctx context.Context, e env) (*p2pSys, error) {
	pc, err := p2pConfig(e)
	if err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := e.metrics.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
		}
	}
	n, err := p2p.New(ctx, pc)
	if err != nil {
		return nil, err
	}
	if e.cfg.Partitions.KeepOnStop {
		// In-place restart: no graceful leave, so requesters wait out
		// their grace instead of re-placing the instances at once.
		e.onClose(n.Abort)
	} else {
		e.onClose(n.Close)
	}
	s := &p2pSys{node: n}
	e.api.HandleFunc("GET /v1/peers", s.handlePeers)
	e.api.HandleFunc("GET /v1/grid", s.handleGrid)
	e.api.HandleFunc("POST /v1/grid/admit", s.handleGridChange(n.Admit))
	e.api.HandleFunc("POST /v1/grid/revoke", s.handleGridChange(n.Revoke))
	e.api.Handle("GET /metrics", promhttp.HandlerFor(e.metrics, promhttp.HandlerOpts{Registry: e.metrics}))
	return s, nil
}

// routeStatus registers GET /v1/status: the node's identity and view of
// the grid, then each subsystem's section, filled by sections in turn
// (each quick and safe for concurrent use).
func routeStatus(srv *api.Server, n *p2p.Node, sections ...func(*api.Status)) {
	srv.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		st := api.Status{
			PeerID:  n.ID().String(),
			Addrs:   []string{},
			Members: n.AliveCount(),
			Peers:   len(n.ConnectedPeers()),
			Grid:    n.GridName(),
			Preset:  n.Preset().String(),
			Version: version.String(),
			UptimeS: int64(n.Uptime().Seconds()),
			Limits:  n.Limits(),
			// With no partitions nothing runs here to confine; the
			// partitions' section replaces this.
			Sandbox: partition.SandboxStatus{Reasons: []string{"no partitions on this node"}},
		}
		for _, a := range n.Addrs() {
			st.Addrs = append(st.Addrs, a.String())
		}
		for _, f := range sections {
			f(&st)
		}
		api.WriteJSON(w, http.StatusOK, st)
	})
}

func (s *p2pSys) handlePeers(w http.ResponseWriter, r *http.Request) {
	n := s.node
	out := []api.Peer{}
	for _, m := range n.Members() {
		a := m.Advert
		pj := api.Peer{PeerID: m.ID.String(), State: m.State.String(), Self: m.ID == n.ID(), Addrs: []string{},
			Advert: api.Advert{CPUMillis: a.CPUMillis, MemoryBytes: a.MemoryBytes, DiskBytes: a.DiskBytes, FreePartitions: a.FreePartitions,
				Labels: a.Labels, Version: a.Version, NoBids: a.NoBids}}
		for _, a := range m.Addrs {
			pj.Addrs = append(pj.Addrs, a.String()+"/p2p/"+m.ID.String())
		}
		if pj.Advert.Labels == nil {
			pj.Advert.Labels = map[string]string{}
		}
		pj.RTTms = float64(n.RTT(m.ID).Microseconds()) / 1000
		pj.Reach = string(n.ReachOf(m.ID))
		if m.Unreachable {
			// memberlist keeps it alive (others reach it), but streams
			// from here fail: no reach and no round trip to show.
			pj.State, pj.Reach, pj.RTTms = "unreachable", string(p2p.ReachNone), 0
		}
		out = append(out, pj)
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (s *p2pSys) gridJSON(l grid.MemberList) api.Grid {
	n := s.node
	g := api.Grid{Grid: n.GridName(), ID: n.GridID(), Founder: n.IsFounder(), Version: l.Version, Members: []string{}, Revoked: []string{}}
	for _, p := range l.Members {
		g.Members = append(g.Members, p.String())
	}
	for _, p := range l.Revoked {
		g.Revoked = append(g.Revoked, p.String())
	}
	return g
}

func (s *p2pSys) handleGrid(w http.ResponseWriter, r *http.Request) {
	l, _ := s.node.MemberList()
	api.WriteJSON(w, http.StatusOK, s.gridJSON(l))
}

func (s *p2pSys) handleGridChange(f func(peer.ID) (grid.MemberList, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in api.GridChange
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("grid: body must be {\"peer_id\": \"...\"}: %w", err))
			return
		}
		p, err := peer.Decode(in.PeerID)
		if err != nil {
			api.WriteError(w, http.StatusBadRequest, fmt.Errorf("grid: peer_id %q: %w", in.PeerID, err))
			return
		}
		l, err := f(p)
		switch {
		case errors.Is(err, p2p.ErrNotFounder), errors.Is(err, p2p.ErrPublicGrid):
			api.WriteError(w, http.StatusForbidden, err)
			return
		case err != nil:
			api.WriteError(w, http.StatusBadRequest, err)
			return
		}
		api.WriteJSON(w, http.StatusOK, s.gridJSON(l))
	}
}
