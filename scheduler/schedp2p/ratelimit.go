package schedp2p

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Announcement rates on the topic, per auctioneer.
const (
	// AnnounceRate is how many announcements per second an auctioneer may
	// have relayed by this node, after a burst of AnnounceBurst. Members
	// have one allowance each; auctioneers this node does not know as
	// members share one.
	AnnounceRate  = 32
	AnnounceBurst = 256
	// maxBuckets bounds the auctioneers tracked; beyond, the table starts over.
	maxBuckets = 8192
)

// rateLimiter is a token bucket per key.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	buckets map[peer.ID]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, buckets: map[peer.ID]*bucket{}, now: time.Now}
}

// allow takes one token of key's bucket, if it has one.
func (l *rateLimiter) allow(key peer.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			clear(l.buckets)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
