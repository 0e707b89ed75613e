package config

import (
	"fmt"
	"net"
	"strings"
)

// NodeConfig is the [node] section: identity, networking, membership, logs
// and the local API.
type NodeConfig struct {
	// DataDir is the node data directory. Default ~/.weft (or $WEFT_DATA_DIR).
	DataDir string `toml:"data_dir"`
	// API is the local API listen address (loopback). Default 127.0.0.1:7070;
	// port 0 picks a free one.
	API string `toml:"api"`
	// APIAllowRemote lets API listen on an address other than loopback
	// (anyone who reaches it can try the token; the node warns at start).
	// Default false: such an address is refused.
	APIAllowRemote bool `toml:"api_allow_remote"`
	// Listen are the libp2p listen multiaddrs. Default TCP and QUIC on
	// port 4001, IPv4 and IPv6. QUIC is dropped on private grids.
	Listen []string `toml:"listen"`
	// Bootstrap are full multiaddrs (ending /p2p/<peer-id>) to join through.
	// Default none.
	Bootstrap []string `toml:"bootstrap"`
	// Grid is a private grid's file (from 'weft grid init'). Default "" =
	// the public grid.
	Grid string `toml:"grid"`
	// Preset is the membership timing preset: lan, wan or local. Default lan.
	Preset string `toml:"preset"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `toml:"log_format"`
	// MDNS is LAN discovery by mDNS: auto (on unless preset is local), on or
	// off. Default auto.
	MDNS string `toml:"mdns"`
	// DHTDiscovery enables DHT rendezvous discovery. Default true.
	DHTDiscovery bool `toml:"dht_discovery"`
	// NAT enables UPnP port mapping, AutoNAT service, hole punching and the
	// relay service when reachable. Default true.
	NAT bool `toml:"nat"`
	// Reachability forces what AutoNAT would find out: auto, public (serve
	// circuit relays on whatever addresses the node has, private ones
	// included) or private (behind NAT: reserve relay slots with the relays
	// below and the grid's members that serve relays, and advertise
	// /p2p-circuit addresses). Default auto.
	Reachability string `toml:"reachability"`
	// Relays are static relays (full multiaddrs ending /p2p/<peer-id>) a
	// node behind NAT reserves a slot with first. Default none.
	Relays []string `toml:"relays"`
	// ConnLow and ConnHigh are the connection manager watermarks, in
	// connections. Default 100 and 400.
	ConnLow  int `toml:"conn_low"`
	ConnHigh int `toml:"conn_high"`
	// MaxMessageBytes caps one pubsub message, in bytes. Default 1048576.
	MaxMessageBytes int `toml:"max_message_bytes"`
	// OutboundQueue is the per-peer pubsub outbound queue (and validation
	// queue), in messages. Default 4096.
	OutboundQueue int `toml:"outbound_queue"`
	// MemberlistTransport is libp2p (memberlist over libp2p streams) or net
	// (memberlist's own UDP/TCP on MemberlistBind; no grid key, for
	// comparison only). Default libp2p.
	MemberlistTransport string `toml:"memberlist_transport"`
	// MemberlistBind is host:port for the net transport. Default 127.0.0.1:0.
	MemberlistBind string `toml:"memberlist_bind"`
	// Labels are key=value labels advertised to the grid. Default none.
	Labels map[string]string `toml:"labels"`
}

func defaultNode() NodeConfig {
	return NodeConfig{
		API: "127.0.0.1:7070",
		Listen: []string{
			"/ip4/0.0.0.0/tcp/4001",
			"/ip4/0.0.0.0/udp/4001/quic-v1",
			"/ip6/::/tcp/4001",
			"/ip6/::/udp/4001/quic-v1",
		},
		Preset:              "lan",
		LogLevel:            "info",
		LogFormat:           "text",
		MDNS:                "auto",
		DHTDiscovery:        true,
		NAT:                 true,
		Reachability:        "auto",
		ConnLow:             100,
		ConnHigh:            400,
		MaxMessageBytes:     1 << 20,
		OutboundQueue:       4096,
		MemberlistTransport: "libp2p",
		MemberlistBind:      "127.0.0.1:0",
	}
}

func oneOf(key, v string, allowed ...string) error {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return nil
		}
	}
	return fmt.Errorf("node.%s: %q is not one of %s", key, v, strings.Join(allowed, ", "))
}

func (c *NodeConfig) validate() error {
	host, _, err := net.SplitHostPort(c.API)
	if err != nil {
		return fmt.Errorf("node.api: %q: %w", c.API, err)
	}
	if !c.APIAllowRemote && !LoopbackHost(host) {
		return fmt.Errorf("node.api: %q is not a loopback address: the API would be reachable from the network; "+
			"set node.api_allow_remote = true (or --api-allow-remote) if that is meant", c.API)
	}
	for _, chk := range []error{
		oneOf("preset", c.Preset, "lan", "wan", "local"),
		oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error"),
		oneOf("log_format", c.LogFormat, "text", "json"),
		oneOf("mdns", c.MDNS, "auto", "on", "off"),
		oneOf("memberlist_transport", c.MemberlistTransport, "libp2p", "net"),
		oneOf("reachability", c.Reachability, "auto", "public", "private"),
	} {
		if chk != nil {
			return chk
		}
	}
	if len(c.Listen) == 0 {
		return fmt.Errorf("node.listen: at least one address is needed")
	}
	if c.ConnLow <= 0 || c.ConnHigh < c.ConnLow {
		return fmt.Errorf("node.conn_low/conn_high: need 0 < low <= high, got %d/%d", c.ConnLow, c.ConnHigh)
	}
	if c.MaxMessageBytes <= 0 || c.OutboundQueue <= 0 {
		return fmt.Errorf("node.max_message_bytes and node.outbound_queue must be positive")
	}
	return nil
}

// LoopbackHost reports whether host (of a HOST:PORT listen address) only
// listens on loopback: "localhost" or a loopback IP ("" and unspecified
// addresses listen everywhere).
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
