package scheduler

import (
	"fmt"
	"time"
)

// Config tunes a Market.
type Config struct {
	// Auction tunes the auctions this node runs as requester or guardian.
	Auction AuctionConfig
	// Policy is this node's bidding policy.
	Policy Policy
	// BidderSet, if > 0, sends each announcement directly to at most this
	// many members nearest the instance in the DHT keyspace (after dropping
	// those whose advert cannot fit), instead of broadcasting it, so the
	// messages per placement stay flat however large the grid. Default 0.
	BidderSet int
	// Tick is the period of the state loop's timer (auction windows, host
	// loss, status). Default 25ms.
	Tick time.Duration
	// MemberRefresh is how often the loop re-reads the membership (host
	// loss detection, bidder sets). Default 200ms.
	MemberRefresh time.Duration
	// StatusInterval is how often a host re-sends an unchanged status to
	// the requester and guardians (anti-entropy and fencing). Default 2s.
	StatusInterval time.Duration
	// Grace is the default time a host may be missing from the membership
	// before its instances are re-placed (per request: Request.Grace).
	// Default 0: re-place as soon as the membership declares it dead.
	Grace time.Duration
	// Guardians is the default number of guardians a request delegates to.
	// Default 3.
	Guardians int
	// GuardianRefresh is how long a guardian may be missing before the
	// requester re-signs its requests with a fresh guardian list. Default 30s.
	GuardianRefresh time.Duration
	// BidTTL is how long a bid stays valid. Default 10s.
	BidTTL time.Duration
	// WaitRetry is how often a request waiting for capacity is re-auctioned.
	// Default 2s.
	WaitRetry time.Duration
	// MaxPenalty: a peer whose penalty (1 per invalid message) reaches it is
	// ignored until it decays (halved every PenaltyDecay). Defaults 20, 10s.
	MaxPenalty   int
	PenaltyDecay time.Duration
	// SilentAfter: a host that has sent no status for this long counts as
	// lost (and its instances are re-placed after their grace) even while
	// the membership says it is alive — SWIM's indirect probes keep a host
	// alive that others reach and this node cannot (a split bridged by a
	// third party). 0 disables it. Default 3 × StatusInterval (6s).
	SilentAfter time.Duration
	// SendQueue bounds the announcements waiting to be broadcast (beyond
	// it they are dropped and counted). Default 4096.
	SendQueue int
	// PeerQueue bounds the direct messages waiting for one peer: each peer
	// has its own queue and sender, so a slow or unreachable peer delays
	// only what is sent to it. When it is full the oldest message is
	// dropped (and counted). Default 256.
	PeerQueue int
	// SendTimeout bounds one direct message: dialing, opening the stream
	// and writing (market messages are small: seconds, not the
	// connection's keepalive). After a failed send, what waited for that
	// peer meanwhile is dropped. Default 3s.
	SendTimeout time.Duration
	// HookTimeout bounds a veto hook call. Default 5s.
	HookTimeout time.Duration
	// History is how many finished auctions Auctions() keeps. Default 256.
	History int
	// NoBids makes a node that never bids: a requester-only node (no
	// partitions). It ignores announcements, advertises no_bids so that
	// auctioneers leave it out of their bidder sets, and still requests,
	// tracks and guards instances. SetBidding turns bidding off and on at
	// run time (drain). Default false.
	NoBids bool
}

// DefaultConfig returns the defaults (LAN-grade timings).
func DefaultConfig() Config {
	return Config{
		Auction:         DefaultAuctionConfig(),
		Policy:          Policy{MaxLoad: 1},
		Tick:            25 * time.Millisecond,
		MemberRefresh:   200 * time.Millisecond,
		StatusInterval:  2 * time.Second,
		Guardians:       3,
		GuardianRefresh: 30 * time.Second,
		BidTTL:          10 * time.Second,
		WaitRetry:       2 * time.Second,
		MaxPenalty:      20,
		PenaltyDecay:    10 * time.Second,
		SilentAfter:     6 * time.Second,
		SendQueue:       4096,
		PeerQueue:       256,
		SendTimeout:     3 * time.Second,
		HookTimeout:     5 * time.Second,
		History:         256,
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if err := c.Auction.validate(); err != nil {
		return err
	}
	if c.BidderSet < 0 || c.Tick <= 0 || c.MemberRefresh <= 0 || c.StatusInterval <= 0 || c.Grace < 0 || c.Guardians < 0 || c.Guardians > MaxGuardians ||
		c.BidTTL <= 0 || c.GuardianRefresh <= 0 || c.WaitRetry <= 0 || c.MaxPenalty <= 0 || c.PenaltyDecay <= 0 || c.SilentAfter < 0 || c.SendQueue <= 0 || c.PeerQueue <= 0 || c.SendTimeout <= 0 ||
		c.HookTimeout <= 0 || c.History < 0 {
		return fmt.Errorf("%w: market config out of range", ErrInvalidRequest)
	}
	if !c.Policy.Prices.valid() || c.Policy.MaxLoad < 0 || c.Policy.MaxLoad > 1 {
		return fmt.Errorf("%w: policy out of range", ErrInvalidRequest)
	}
	return nil
}
