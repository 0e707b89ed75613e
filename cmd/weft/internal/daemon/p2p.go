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

// p2pState is the p2p subsystem's part of the Daemon.
//
// Other subsystems use d.node (the running *p2p.Node: pubsub topics via
// d.node.JoinTopic, stream protocols under d.node.ProtocolPrefix(), the DHT
// via d.node.Routing(), membership via d.node.Members/SubscribeMembers, the
// capacity advert via d.node.SetAdvert).
//
// statusExtras lets them fill their section of GET /v1/status (api.Status):
// append a function from your start function (startP2P runs first, so
// d.node is set by then):
//
//	d.statusExtras = append(d.statusExtras, func(st *api.Status) { st.Market = ... })
//
// The functions run on every status request, concurrently with each other's
// requests: they must be quick and safe for concurrent use.
type p2pState struct {
	node         *p2p.Node
	statusExtras []func(*api.Status)
}

// p2pConfig turns the [node] section into a p2p.Config.
func (d *Daemon) p2pConfig() (p2p.Config, error) {
	c := d.cfg.Node
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
	pc.Logger = d.log
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
	pc.Metrics = d.metrics
	pc.Advert = localAdvert(c.DataDir, c.Labels, d.cfg.Partitions.Count == 0)
	return pc, nil
}

// localAdvert is the node's initial capacity advert: all CPUs, total
// memory and the free space of the data dir (none for a requester-only node). The partitions subsystem
// refines it with d.node.SetAdvert.
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

// startP2P starts the p2p node, registers its API routes on d.api and its
// closer with d.onClose. From here on d.log carries the peer ID.
func (d *Daemon) startP2P(ctx context.Context) error {
	pc, err := d.p2pConfig()
	if err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := d.metrics.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	n, err := p2p.New(ctx, pc)
	if err != nil {
		return err
	}
	d.node = n
	d.log = d.log.With("peer", n.ID().String())
	if d.cfg.Partitions.KeepOnStop {
		// In-place restart: no graceful leave, so requesters wait out
		// their grace instead of re-placing the instances at once.
		d.onClose(n.Abort)
	} else {
		d.onClose(n.Close)
	}

	d.api.HandleFunc("GET /v1/status", d.handleStatus)
	d.api.HandleFunc("GET /v1/peers", d.handlePeers)
	d.api.HandleFunc("GET /v1/grid", d.handleGrid)
	d.api.HandleFunc("POST /v1/grid/admit", d.handleGridChange(n.Admit))
	d.api.HandleFunc("POST /v1/grid/revoke", d.handleGridChange(n.Revoke))
	d.api.Handle("GET /metrics", promhttp.HandlerFor(d.metrics, promhttp.HandlerOpts{Registry: d.metrics}))
	return nil
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	n := d.node
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
		// partitions subsystem replaces this.
		Sandbox: partition.SandboxStatus{Reasons: []string{"no partitions on this node"}},
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	for _, f := range d.statusExtras {
		f(&st)
	}
	api.WriteJSON(w, http.StatusOK, st)
}

func (d *Daemon) handlePeers(w http.ResponseWriter, r *http.Request) {
	n := d.node
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
		out = append(out, pj)
	}
	api.WriteJSON(w, http.StatusOK, out)
}

func (d *Daemon) gridJSON(l grid.MemberList) api.Grid {
	n := d.node
	g := api.Grid{Grid: n.GridName(), ID: n.GridID(), Founder: n.IsFounder(), Version: l.Version, Members: []string{}, Revoked: []string{}}
	for _, p := range l.Members {
		g.Members = append(g.Members, p.String())
	}
	for _, p := range l.Revoked {
		g.Revoked = append(g.Revoked, p.String())
	}
	return g
}

func (d *Daemon) handleGrid(w http.ResponseWriter, r *http.Request) {
	l, _ := d.node.MemberList()
	api.WriteJSON(w, http.StatusOK, d.gridJSON(l))
}

func (d *Daemon) handleGridChange(f func(peer.ID) (grid.MemberList, error)) http.HandlerFunc {
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
		api.WriteJSON(w, http.StatusOK, d.gridJSON(l))
	}
}
