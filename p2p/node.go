package p2p

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/pnet"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/weftgrid/weft/p2p/grid"
)

// ErrClosed is returned by operations on a closed Node.
var ErrClosed = errors.New("p2p: node closed")

// PublicGrid is the name of the public grid.
const PublicGrid = "public"

// Node is a running weft p2p node: a libp2p host, the DHT, gossipsub and the
// membership of its grid.
type Node struct {
	cfg    Config
	log    *slog.Logger
	priv   crypto.PrivKey
	id     peer.ID
	host   host.Host
	dht    *dht.IpfsDHT
	ps     *pubsub.PubSub
	ml     *memberlist.Memberlist
	mlConf *memberlist.Config
	tr     *streamTransport // nil with TransportNet
	disc   *drouting.RoutingDiscovery
	limits rcmgr.ConcreteLimitConfig
	gater  *gater
	grid   *grid.File // nil on the public grid
	prefix protocol.ID
	table  *memberTable
	// tableFor is table once membership started, for what runs on the
	// host's goroutines from the start (the relay's ACL).
	tableFor atomic.Pointer[memberTable]
	met      *metrics
	start    time.Time

	listMu  sync.Mutex
	storeMu sync.Mutex // serialises writes of the member list file
	// storedVersion is the version of the member list file (under storeMu).
	storedVersion uint64
	penMu         sync.Mutex
	penalties     map[peer.ID]*penalty

	advertMu sync.Mutex
	meta     Meta
	metaB    []byte

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	aborted   atomic.Bool
	closeOnce sync.Once
	closeErr  error
	closers   []func() error
	// staticRelays feed AutoRelay first (ReachabilityAuto).
	staticRelays []peer.AddrInfo
	// relay keeps relay slots when the node is told it is private (nil
	// otherwise).
	relay *relayKeeper
	// reach probes every alive member by stream (see reach.go).
	reach *reachWatch
}

// New starts a node: identity, host, DHT, pubsub, membership and discovery.
// The node is joined to whatever bootstrap peers answered when New returns;
// discovery keeps running in the background until Close.
func New(ctx context.Context, cfg Config) (_ *Node, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	priv, err := LoadOrCreateIdentity(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log.With("peer", id.String()), priv: priv, id: id, start: time.Now()}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	n.met = newMetrics(cfg.Metrics)
	n.prefix = protocol.ID("/weft/" + PublicGrid)
	if cfg.GridFile != "" {
		f, err := grid.ReadFile(cfg.GridFile)
		if err != nil {
			return nil, err
		}
		n.grid = &f
		n.prefix = protocol.ID("/weft/" + f.ID)
	}
	n.gater = newGater(n)
	if n.grid != nil {
		if err := n.loadMemberList(); err != nil {
			return nil, err
		}
	}
	if err := n.startHost(); err != nil {
		return nil, err
	}
	if err := n.startDHT(ctx); err != nil {
		return nil, err
	}
	if err := n.startPubSub(); err != nil {
		return nil, err
	}
	if n.grid != nil {
		n.startGridSync()
	}
	if err := n.startMembership(); err != nil {
		return nil, err
	}
	n.startDiscovery(ctx)
	n.reach = newReachWatch(n, cfg.Preset.ReachTimings())
	n.wg.Add(1)
	go n.reach.run(n.ctx)
	if n.relay != nil {
		n.wg.Add(1)
		go n.relay.run(n.ctx)
	}
	n.log.Info("p2p node started", "grid", n.GridName(), "addrs", n.Addrs(), "preset", cfg.Preset.String(), "transport", cfg.Transport.String(),
		"reachability", cfg.Reachability.String())
	return n, nil
}

func (n *Node) startHost() error {
	cfg := n.cfg
	listen := cfg.Listen
	if n.grid != nil {
		// The private-network key works on stream transports only.
		listen = nil
		for _, a := range cfg.Listen {
			if strings.Contains(a, "/quic") || strings.Contains(a, "/webtransport") || strings.Contains(a, "/webrtc") {
				continue
			}
			listen = append(listen, a)
		}
		if len(listen) == 0 {
			return fmt.Errorf("%w: private grids need a TCP listen address (QUIC is excluded by the network key)", ErrConfig)
		}
	}
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	n.limits = limits.AutoScale()
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(n.limits))
	if err != nil {
		return fmt.Errorf("p2p: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(cfg.ConnLow, cfg.ConnHigh, connmgr.WithGracePeriod(time.Minute))
	if err != nil {
		rm.Close()
		return fmt.Errorf("p2p: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(n.priv),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.ConnectionGater(n.gater),
		libp2p.UserAgent("weft"),
	}
	if n.grid != nil {
		opts = append(opts, libp2p.PrivateNetwork(pnet.PSK(n.grid.PSK)))
	} else {
		opts = append(opts, libp2p.Transport(quic.NewTransport))
	}
	static, err := parseRelays(cfg.Relays)
	if err != nil {
		rm.Close()
		return err
	}
	opts = append(opts, libp2p.AddrsFactory(n.addrsFactory))
	switch cfg.Reachability {
	case ReachabilityPublic:
		// Serve relays whatever AutoNAT would say, on every address the
		// node has: on a private network its members are all "private".
		opts = append(opts,
			libp2p.ForceReachabilityPublic(),
			libp2p.EnableRelayService(relayv2.WithResources(RelayResources()), relayv2.WithACL(relayACL{n}),
				relayv2.WithReservationAddressFilter(func(ma.Multiaddr) bool { return true })),
			libp2p.EnableHolePunching(),
		)
		if cfg.NAT {
			opts = append(opts, libp2p.EnableNATService())
		}
	case ReachabilityPrivate:
		// Reserve slots with relays weft picks itself (relayKeeper).
		opts = append(opts, libp2p.ForceReachabilityPrivate(), libp2p.EnableHolePunching())
		if cfg.NAT {
			opts = append(opts, libp2p.NATPortMap())
		}
		n.relay = newRelayKeeper(n, static)
	default:
		if cfg.NAT {
			n.staticRelays = static
			opts = append(opts,
				libp2p.NATPortMap(),
				libp2p.EnableNATService(),
				libp2p.EnableHolePunching(),
				libp2p.EnableRelayService(relayv2.WithResources(RelayResources()), relayv2.WithACL(relayACL{n})),
				libp2p.EnableAutoRelayWithPeerSource(n.relayCandidates),
			)
		}
	}
	if cfg.Metrics != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Metrics))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return fmt.Errorf("p2p: host: %w", err)
	}
	n.host = h
	n.closers = append(n.closers, h.Close)
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) { n.onConnected(c) },
	})
	return nil
}

// relayCandidates feeds AutoRelay with the static relays, then connected
// peers, when behind NAT.
func (n *Node) relayCandidates(ctx context.Context, num int) <-chan peer.AddrInfo {
	ch := make(chan peer.AddrInfo, num)
	go func() {
		defer close(ch)
		for _, ai := range n.staticRelays {
			if num == 0 {
				return
			}
			select {
			case ch <- ai:
				num--
			case <-ctx.Done():
				return
			}
		}
		for _, p := range n.host.Network().Peers() {
			if num == 0 {
				return
			}
			select {
			case ch <- n.host.Peerstore().PeerInfo(p):
				num--
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

func (n *Node) startDHT(ctx context.Context) error {
	d, err := dht.New(n.host,
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(n.prefix),
		dht.QueryFilter(func(_ any, _ peer.AddrInfo) bool { return true }),
		dht.RoutingTableFilter(func(_ any, _ peer.ID) bool { return true }),
	)
	if err != nil {
		return fmt.Errorf("p2p: dht: %w", err)
	}
	n.dht = d
	n.closers = append(n.closers, d.Close)
	n.disc = drouting.NewRoutingDiscovery(d)
	return nil
}

func (n *Node) startPubSub() error {
	params := &pubsub.PeerScoreParams{
		SkipAtomicValidation: true,
		AppSpecificScore:     n.appScore,
		AppSpecificWeight:    1,
		DecayInterval:        time.Second,
		DecayToZero:          0.01,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:   -100,
		PublishThreshold:  -200,
		GraylistThreshold: -400,
		AcceptPXThreshold: 10,
	}
	ps, err := pubsub.NewGossipSub(n.ctx, n.host,
		pubsub.WithMessageSigning(true),
		pubsub.WithStrictSignatureVerification(true),
		pubsub.WithMaxMessageSize(n.cfg.MaxMessageSize),
		pubsub.WithPeerOutboundQueueSize(n.cfg.OutboundQueue),
		pubsub.WithValidateQueueSize(n.cfg.OutboundQueue),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithDiscovery(n.disc),
		pubsub.WithFloodPublish(true),
	)
	if err != nil {
		return fmt.Errorf("p2p: pubsub: %w", err)
	}
	n.ps = ps
	return nil
}

// Close leaves the membership gracefully, then stops discovery, pubsub, the
// DHT and the host. It is idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		var errs []error
		if n.ml != nil && !n.aborted.Load() {
			if err := n.setMeta(n.Advert(), true); err == nil {
				_ = n.ml.UpdateNode(n.leaveTimeout())
			}
			if err := n.ml.Leave(n.leaveTimeout()); err != nil {
				n.log.Warn("leave", "err", err)
			}
		}
		if n.ml != nil {
			errs = append(errs, n.ml.Shutdown())
		}
		n.cancel()
		for i := len(n.closers) - 1; i >= 0; i-- {
			errs = append(errs, n.closers[i]())
		}
		n.wg.Wait()
		if n.table != nil {
			n.table.close()
		}
		n.closeErr = errors.Join(errs...)
		if n.host != nil {
			n.log.Info("p2p node stopped")
		}
	})
	return n.closeErr
}

// Abort stops the node without leaving the membership, as a crash would:
// the others must detect the failure. For fault tests.
func (n *Node) Abort() error {
	n.aborted.Store(true)
	return n.Close()
}

func (n *Node) leaveTimeout() time.Duration {
	if n.mlConf == nil {
		return time.Second
	}
	return 2 * n.mlConf.ProbeInterval
}

// ID returns the node's peer ID.
func (n *Node) ID() peer.ID { return n.id }

// PrivKey returns the node's identity key (Ed25519).
func (n *Node) PrivKey() crypto.PrivKey { return n.priv }

// Host returns the libp2p host.
func (n *Node) Host() host.Host { return n.host }

// PubSub returns the gossipsub router. Prefer JoinTopic, which namespaces
// the topic per grid and installs a validator.
func (n *Node) PubSub() *pubsub.PubSub { return n.ps }

// Routing returns the Kademlia DHT (Provide, FindProvidersAsync, FindPeer).
func (n *Node) Routing() routing.Routing { return n.dht }

// ProtocolPrefix is "/weft/public" or "/weft/<grid-id>"; build stream
// protocol IDs from it, e.g. n.ProtocolPrefix()+"/recipes/fetch/1".
func (n *Node) ProtocolPrefix() protocol.ID { return n.prefix }

// GridName is "public" or the private grid's name.
func (n *Node) GridName() string {
	if n.grid == nil {
		return PublicGrid
	}
	return n.grid.Name
}

// GridID is "public" or the private grid's ID.
func (n *Node) GridID() string {
	if n.grid == nil {
		return PublicGrid
	}
	return n.grid.ID
}

// DataDir returns the node's data directory.
func (n *Node) DataDir() string { return n.cfg.DataDir }

// Preset returns the timing preset in use.
func (n *Node) Preset() Preset { return n.cfg.Preset }

// Uptime is the time since New.
func (n *Node) Uptime() time.Duration { return time.Since(n.start) }

// Addrs returns the node's full addresses, each ending in /p2p/<id>.
func (n *Node) Addrs() []ma.Multiaddr {
	suffix, _ := ma.NewComponent("p2p", n.id.String())
	var out []ma.Multiaddr
	for _, a := range n.host.Addrs() {
		out = append(out, a.Encapsulate(suffix.Multiaddr()))
	}
	return out
}

// AddrInfo returns the node's ID and addresses.
func (n *Node) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: n.id, Addrs: n.host.Addrs()}
}

// RTT returns the peerstore's latency EWMA for p, 0 if unknown.
func (n *Node) RTT(p peer.ID) time.Duration { return n.host.Peerstore().LatencyEWMA(p) }

// ConnectedPeers returns the peers with an open libp2p connection.
func (n *Node) ConnectedPeers() []peer.ID { return n.host.Network().Peers() }

// Limits returns the resource manager's limits, for display.
func (n *Node) Limits() map[string]any {
	s := n.limits.ToPartialLimitConfig().System
	return map[string]any{
		"system_conns":        s.Conns,
		"system_conns_in":     s.ConnsInbound,
		"system_streams":      s.Streams,
		"system_memory_bytes": s.Memory,
		"system_fd":           s.FD,
		"conn_low":            n.cfg.ConnLow,
		"conn_high":           n.cfg.ConnHigh,
		"max_message_bytes":   n.cfg.MaxMessageSize,
		"outbound_queue":      n.cfg.OutboundQueue,
	}
}

func protocolID(s string) protocol.ID { return protocol.ID(s) }
