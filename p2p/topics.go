package p2p

import (
	"context"
	"fmt"
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

// Penalty returns how many messages from p were rejected.
func (n *Node) Penalty(p peer.ID) int {
	n.penMu.Lock()
	defer n.penMu.Unlock()
	return n.penalties[p]
}

// appScore is gossipsub's application-specific score: -10 per rejection.
func (n *Node) appScore(p peer.ID) float64 { return -10 * float64(n.Penalty(p)) }

func (n *Node) penalise(p peer.ID, why string) {
	if p == n.id || p == "" {
		return
	}
	n.penMu.Lock()
	if n.penalties == nil {
		n.penalties = map[peer.ID]int{}
	}
	n.penalties[p]++
	c := n.penalties[p]
	n.penMu.Unlock()
	n.log.Debug("peer penalised", "from", p.String(), "why", why, "count", c)
	if c == n.cfg.PenaltyThreshold {
		n.log.Warn("peer banned for invalid messages", "from", p.String(), "count", c, "for", n.cfg.PenaltyBan)
		n.met.penalised.Inc()
		n.gater.ban(p, time.Now().Add(n.cfg.PenaltyBan))
		go n.host.Network().ClosePeer(p)
	}
}
