package p2p

import (
	"context"
	"fmt"
	"math"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TopicName returns the grid-namespaced name of topic name:
// ProtocolPrefix()+"/topic/"+name.
func (n *Node) TopicName(name string) string { return string(n.prefix) + "/topic/" + name }

// JoinTopic joins the grid's topic name with validator v and a per-message
// size limit maxSize (bytes; at most Config.MaxMessageSize). Messages larger
// than maxSize, and messages v rejects, are rejected and count against the
// peer that sent them: its gossipsub score drops, and after
// Config.PenaltyThreshold rejections it is disconnected and refused for
// Config.PenaltyBan. v must not be nil: every topic has a validator.
func (n *Node) JoinTopic(name string, v pubsub.ValidatorEx, maxSize int) (*pubsub.Topic, error) {
	if v == nil {
		return nil, fmt.Errorf("p2p: topic %s: a validator is required", name)
	}
	if maxSize <= 0 || maxSize > n.cfg.MaxMessageSize {
		maxSize = n.cfg.MaxMessageSize
	}
	full := n.TopicName(name)
	wrapped := func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		if len(m.Data) > maxSize {
			n.met.rejected.WithLabelValues("oversized").Inc()
			n.penalise(m.ReceivedFrom, "oversized message on "+name)
			return pubsub.ValidationReject
		}
		r := v(ctx, from, m)
		if r == pubsub.ValidationReject {
			n.met.rejected.WithLabelValues("invalid").Inc()
			n.penalise(m.ReceivedFrom, "invalid message on "+name)
		}
		return r
	}
	if err := n.ps.RegisterTopicValidator(full, pubsub.ValidatorEx(wrapped)); err != nil {
		return nil, fmt.Errorf("p2p: topic %s: %w", name, err)
	}
	t, err := n.ps.Join(full)
	if err != nil {
		_ = n.ps.UnregisterTopicValidator(full)
		return nil, fmt.Errorf("p2p: topic %s: %w", name, err)
	}
	return t, nil
}

// penalty is one peer's record of rejected messages.
type penalty struct {
	v           float64   // rejections, decayed to at
	at          time.Time // when v was last updated
	bannedUntil time.Time // end of the last ban
}

// maxPenaltyRecords bounds the penalty table before decayed records are swept.
const maxPenaltyRecords = 4096

// decayedLocked returns e's rejection count at now: it halves every
// PenaltyBan, so that a peer is not held to old rejections forever.
func (n *Node) decayedLocked(e *penalty, now time.Time) float64 {
	if e == nil {
		return 0
	}
	dt := now.Sub(e.at)
	if dt <= 0 {
		return e.v
	}
	return e.v * math.Exp2(-float64(dt)/float64(n.cfg.PenaltyBan))
}

// Penalty returns how many messages from p were rejected, decayed: the
// count halves every Config.PenaltyBan.
func (n *Node) Penalty(p peer.ID) int {
	n.penMu.Lock()
	defer n.penMu.Unlock()
	return int(math.Round(n.decayedLocked(n.penalties[p], time.Now())))
}

// appScore is gossipsub's application-specific score: -10 per rejection.
func (n *Node) appScore(p peer.ID) float64 { return -10 * float64(n.Penalty(p)) }

func (n *Node) penalise(p peer.ID, why string) {
	if p == n.id || p == "" {
		return
	}
	now := time.Now()
	n.penMu.Lock()
	if n.penalties == nil {
		n.penalties = map[peer.ID]*penalty{}
	}
	if len(n.penalties) >= maxPenaltyRecords {
		for q, e := range n.penalties {
			if n.decayedLocked(e, now) < 0.5 && !now.Before(e.bannedUntil) {
				delete(n.penalties, q)
			}
		}
	}
	e := n.penalties[p]
	if e == nil {
		e = &penalty{}
		n.penalties[p] = e
	}
	e.v, e.at = n.decayedLocked(e, now)+1, now
	c := int(math.Round(e.v))
	// Ban whenever the count reaches the threshold outside a ban, so that a
	// peer that goes on after its ban expires is banned again.
	ban := c >= n.cfg.PenaltyThreshold && !now.Before(e.bannedUntil)
	if ban {
		e.bannedUntil = now.Add(n.cfg.PenaltyBan)
	}
	n.penMu.Unlock()
	n.log.Debug("peer penalised", "from", p.String(), "why", why, "count", c)
	if ban {
		n.log.Warn("peer banned for invalid messages", "from", p.String(), "count", c, "for", n.cfg.PenaltyBan)
		n.met.penalised.Inc()
		n.gater.ban(p, now.Add(n.cfg.PenaltyBan))
		go n.host.Network().ClosePeer(p)
	}
}
