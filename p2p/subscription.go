package p2p

import (
	"context"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// ReadSubscription is the read loop of a topic subscription, shared by the
// protocols that gossip (the market's announcements, the ledger's
// entries): it hands every message that did not come from self (a node
// handles what it publishes itself locally) to handle, in order, until ctx
// ends or the subscription is canceled. Messages have passed the topic's
// validator; handle runs on the loop and should not block for long.
func ReadSubscription(ctx context.Context, sub *pubsub.Subscription, self peer.ID, handle func(*pubsub.Message)) {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if m.ReceivedFrom == self {
			continue
		}
		handle(m)
	}
}
