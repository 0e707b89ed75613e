package scheduler

import (
	"errors"
	"testing"
	"time"
)

// An announcement from an auctioneer whose clock is a few seconds behind
// the bidder's (well within MaxClockSkew, which future timestamps are
// allowed) must still be accepted: the default window plus award timeout
// is only 2.5 s, so a 3 s skew made every bidder drop — and penalize —
// every announcement of that node.
func TestAnnouncementToleratesClockSkewBehind(t *testing.T) {
	s := testSigner(t, 1)
	cfg := DefaultAuctionConfig()
	ann := testAnnouncement(testRequest(s.ID(), "web"), 1)
	ann.Expires = ann.Issued + int64(cfg.Window+cfg.AwardTimeout)
	env := s.Sign(KindAnnounce, ann)
	// The bidder's clock is 3 s ahead of the auctioneer's.
	if _, err := OpenAnnouncement(&env, t0.Add(3*time.Second)); err != nil {
		t.Fatalf("announcement from a node 3s behind rejected: %v", err)
	}
	// Long expired is still a replay.
	if _, err := OpenAnnouncement(&env, t0.Add(cfg.Window+cfg.AwardTimeout+MaxClockSkew+time.Second)); !errors.Is(err, ErrReplay) {
		t.Fatalf("expired announcement: %v", err)
	}
}
