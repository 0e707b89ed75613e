package api

import (
	"github.com/weftgrid/weft/partition"
)

// The answers of the node's own routes: GET /v1/status, GET /v1/peers and
// GET /v1/grid (with the admit and revoke routes). Each struct's fields
// are declared in the order of their JSON names, so that the node writes
// them sorted, as it did when it merged /v1/status in a map.

// Status is the body of GET /v1/status (weft status --json): the node's
// identity and view of the grid, and one section per subsystem. A section
// is absent (null in Go) when its subsystem does not run.
type Status struct {
	// Addrs are the node's full multiaddrs, each ending in /p2p/<peer_id>.
	Addrs []string `json:"addrs"`
	// Content is the recipes subsystem's content transfer.
	Content *ContentStatus `json:"content,omitempty"`
	// Grid is "public" or the private grid's name.
	Grid string `json:"grid"`
	// Ledger is the ledger's size, root and slice length.
	Ledger *LedgerStatus `json:"ledger,omitempty"`
	// Limits are the p2p layer's resource limits (p2p.Node.Limits) and,
	// under "partitions", the partitions' limits summary.
	Limits map[string]any `json:"limits"`
	// Market counts the market's placements and messages.
	Market *MarketStatus `json:"market,omitempty"`
	// Members is the number of alive members, self included.
	Members int `json:"members"`
	// Partitions are the node's partition slots and their limits.
	Partitions *PartitionsStatus `json:"partitions,omitempty"`
	// PeerID is the node's peer ID.
	PeerID string `json:"peer_id"`
	// Peers is the number of connected libp2p peers.
	Peers int `json:"peers"`
	// Preset is the p2p preset (local, lan, wan).
	Preset string `json:"preset"`
	// Sandbox says which protections confine recipes' processes here
	// (with no partitions, none, and a reason saying so).
	Sandbox partition.SandboxStatus `json:"sandbox"`
	// UptimeS is the node's uptime in seconds.
	UptimeS int64 `json:"uptime_s"`
	// Version is the weft build the node runs.
	Version string `json:"version"`
}

// ContentStatus is the "content" section of Status.
type ContentStatus struct {
	// ContentTransfer is present when the transfer service runs.
	*ContentTransfer
	// Transfer is true when content moves over p2p (a node with a host).
	Transfer bool `json:"transfer"`
}

// ContentTransfer counts the content transfer service's traffic.
type ContentTransfer struct {
	// BytesFetched and BytesServed count block data.
	BytesFetched int64 `json:"bytes_fetched"`
	BytesServed  int64 `json:"bytes_served"`
	// FailedAttempts counts failed provider attempts.
	FailedAttempts int64 `json:"failed_attempts"`
}

// LedgerStatus is the "ledger" section of Status.
type LedgerStatus struct {
	// Entries is the number of entries the node holds.
	Entries int `json:"entries"`
	// Root is the ledger's Merkle root, in hex.
	Root string `json:"root"`
	// Slice is the billing slice length (a Go duration, "1m0s").
	Slice string `json:"slice"`
}

// MarketStatus is the "market" section of Status: the engine's counters.
type MarketStatus struct {
	Dropped    uint64 `json:"dropped"`
	Fenced     uint64 `json:"fenced"`
	Placements uint64 `json:"placements"`
	Received   uint64 `json:"received"`
	Sent       uint64 `json:"sent"`
}

// PartitionsStatus is the "partitions" section of Status.
type PartitionsStatus struct {
	// Free is the number of partitions available for new instances.
	Free int `json:"free"`
	// Limits says which limits the host enforces on partitions.
	Limits partition.Limits `json:"limits"`
	// Total is the number of partition slots.
	Total int `json:"total"`
}

// Peer is one element of GET /v1/peers (weft peers --json): a grid member
// as this node sees it.
type Peer struct {
	PeerID string `json:"peer_id"`
	// State is alive, suspect, dead or unreachable (alive to the
	// membership, but this node's stream probes to it fail).
	State string `json:"state"`
	// Self marks this node.
	Self bool `json:"self,omitempty"`
	// Addrs are the member's multiaddrs, each ending in /p2p/<peer_id>.
	Addrs []string `json:"addrs"`
	// Advert is the member's capacity advert.
	Advert Advert `json:"advert"`
	// RTTms is the last measured round trip in milliseconds (0: none yet).
	RTTms float64 `json:"rtt_ms"`
	// Reach is how this node reaches the peer now: direct, relayed or
	// none (no connection at the moment, or unreachable).
	Reach string `json:"reach"`
}

// Advert is a member's capacity advert as the API shows it (p2p.Advert,
// with every field always present).
type Advert struct {
	// CPUMillis is the CPU offered, in thousandths of a core.
	CPUMillis int64 `json:"cpu_millis"`
	// MemoryBytes and DiskBytes are the memory and disk offered, in bytes.
	MemoryBytes int64 `json:"memory_bytes"`
	DiskBytes   int64 `json:"disk_bytes"`
	// FreePartitions is the number of free partitions.
	FreePartitions int `json:"free_partitions"`
	// Labels are the member's key=value labels (never null).
	Labels map[string]string `json:"labels"`
	// Version is the weft build the member runs ("" when it does not say).
	Version string `json:"version"`
	// NoBids is true for a member that does not bid (requester-only or
	// draining).
	NoBids bool `json:"no_bids"`
}

// Grid is the body of GET /v1/grid and of the admit and revoke answers
// (weft grid show): the grid and its current signed member list.
type Grid struct {
	// Grid is "public" or the private grid's name; ID its ID.
	Grid string `json:"grid"`
	ID   string `json:"id"`
	// Founder is true on the founder's node.
	Founder bool `json:"founder"`
	// Version is the member list's version.
	Version uint64   `json:"version"`
	Members []string `json:"members"`
	Revoked []string `json:"revoked"`
}

// GridChange is the body of POST /v1/grid/admit and /v1/grid/revoke.
type GridChange struct {
	PeerID string `json:"peer_id"`
}
