package p2p

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
)

// MemberTransport selects how memberlist traffic travels.
type MemberTransport int

const (
	// TransportLibp2p carries memberlist packets and streams on libp2p
	// streams, routed by node name (= peer ID): one port, one identity, the
	// grid key and relays for everything. The default.
	TransportLibp2p MemberTransport = iota
	// TransportNet uses memberlist's own UDP/TCP transport on
	// Config.MemberlistBind; kept to compare failure detection.
	TransportNet
)

// String returns "libp2p" or "net".
func (t MemberTransport) String() string {
	switch t {
	case TransportLibp2p:
		return "libp2p"
	case TransportNet:
		return "net"
	}
	return fmt.Sprintf("transport(%d)", int(t))
}

// Config configures a Node.
type Config struct {
	// DataDir holds identity.key (the Ed25519 identity), the grid founder
	// state and the latest signed member list. Required.
	DataDir string
	// Listen are the libp2p listen multiaddrs. Default TCP and QUIC on all
	// interfaces, port 4001 (QUIC is dropped on private grids).
	Listen []string
	// Bootstrap are full multiaddrs (ending /p2p/<id>) to join through.
	Bootstrap []string
	// GridFile is a private grid's file; empty means the public grid.
	GridFile string
	// Preset selects membership timings. Default PresetLAN.
	Preset Preset
	// Logger receives logs; default slog.Default().
	Logger *slog.Logger
	// Advert is the initial capacity advert carried in membership metadata.
	Advert Advert
	// MDNS enables LAN discovery by mDNS. Default true.
	MDNS bool
	// DHTDiscovery enables DHT rendezvous (advertise and find peers of the
	// grid). Default true.
	DHTDiscovery bool
	// DiscoveryInterval is how often bootstrap and rendezvous are retried
	// while alone, and rendezvous re-queried otherwise. Default 10 s.
	DiscoveryInterval time.Duration
	// NAT enables AutoNAT service, hole punching, UPnP port mapping, the
	// relay service (offered only when reachable) and AutoRelay (used only
	// when not). Default true.
	NAT bool
	// Reachability forces what AutoNAT would find out: ReachabilityPublic
	// serves circuit relays on whatever addresses the node has (private
	// ones included); ReachabilityPrivate reserves relay slots with the
	// configured relays and the grid's members that serve relays, and
	// advertises /p2p-circuit addresses through them. Default
	// ReachabilityAuto.
	Reachability Reachability
	// Relays are static relays (full multiaddrs ending /p2p/<id>) a node
	// behind NAT reserves a slot with first.
	Relays []string
	// ConnLow and ConnHigh are the connection manager watermarks. Default
	// 100 and 400.
	ConnLow, ConnHigh int
	// MaxMessageSize caps one pubsub message in bytes (hard limit for every
	// topic). Default 1 MiB.
	MaxMessageSize int
	// OutboundQueue is the per-peer pubsub outbound queue length and the
	// validation queue length, in messages. Default 4096.
	OutboundQueue int
	// Transport selects the memberlist transport. Default TransportLibp2p.
	Transport MemberTransport
	// MemberlistBind is the host:port of memberlist's own transport when
	// Transport is TransportNet. Default 127.0.0.1:0.
	MemberlistBind string
	// MemberlistJoin are host:port addresses joined when Transport is
	// TransportNet.
	MemberlistJoin []string
	// Tune, if set, adjusts the memberlist configuration after the preset
	// is applied (tests and benchmarks).
	Tune func(*memberlist.Config)
	// Metrics, if set, receives the node's and libp2p's Prometheus metrics.
	Metrics prometheus.Registerer
	// PenaltyThreshold is how many rejected pubsub messages from one peer
	// get it disconnected and refused for PenaltyBan. Default 32.
	PenaltyThreshold int
	// PenaltyBan is how long a penalised peer stays refused, and the
	// half-life of its rejection count. Default 10 min.
	PenaltyBan time.Duration
}

// DefaultConfig returns the defaults documented on Config's fields.
func DefaultConfig() Config {
	return Config{
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4001",
			"/ip4/0.0.0.0/udp/4001/quic-v1",
			"/ip6/::/tcp/4001",
			"/ip6/::/udp/4001/quic-v1",
		},
		Preset:            PresetLAN,
		MDNS:              true,
		DHTDiscovery:      true,
		DiscoveryInterval: 10 * time.Second,
		NAT:               true,
		ConnLow:           100,
		ConnHigh:          400,
		MaxMessageSize:    1 << 20,
		OutboundQueue:     4096,
		MemberlistBind:    "127.0.0.1:0",
		PenaltyThreshold:  32,
		PenaltyBan:        10 * time.Minute,
	}
}

// ErrConfig prefixes configuration errors.
var ErrConfig = errors.New("p2p: config")

func (c *Config) validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("%w: no data dir", ErrConfig)
	}
	if c.Preset < PresetLAN || c.Preset > PresetLocal {
		return fmt.Errorf("%w: bad preset %d", ErrConfig, c.Preset)
	}
	if c.ConnLow <= 0 || c.ConnHigh < c.ConnLow {
		return fmt.Errorf("%w: connection watermarks %d/%d", ErrConfig, c.ConnLow, c.ConnHigh)
	}
	if c.MaxMessageSize <= 0 || c.OutboundQueue <= 0 || c.DiscoveryInterval <= 0 {
		return fmt.Errorf("%w: message size, queue and discovery interval must be positive", ErrConfig)
	}
	if c.Reachability < ReachabilityAuto || c.Reachability > ReachabilityPrivate {
		return fmt.Errorf("%w: bad reachability %d", ErrConfig, c.Reachability)
	}
	if _, err := parseRelays(c.Relays); err != nil {
		return err
	}
	if c.PenaltyThreshold <= 0 || c.PenaltyBan <= 0 {
		return fmt.Errorf("%w: penalty threshold and ban must be positive", ErrConfig)
	}
	return nil
}
