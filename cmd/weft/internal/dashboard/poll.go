package dashboard

import (
	"context"
	"fmt"

	"github.com/weftgrid/weft/cmd/weft/internal/api"
)

// Source is one read route the broker polls for a topic: a typed API
// client call, and the volatile fields left out of its fingerprint.
type Source struct {
	Topic string
	// Read returns the route's answer as JSON.
	Read func(context.Context, *api.Client) ([]byte, error)
	// Ignore are the fields whose changes do not count (uptime, RTT, ...).
	Ignore []string
}

// Sources are the node's cheap read routes, per topic, that the broker
// polls while a page listens. The ledger's audit is too costly to poll;
// its heads change with every append.
var Sources = []Source{
	{TopicPeers, answer((*api.Client).Peers), []string{"rtt_ms"}},
	{TopicPeers, answer((*api.Client).Status), []string{"uptime_s", "rtt_ms"}},
	{TopicPartitions, answer((*api.Client).Partitions), []string{"checked_at"}},
	{TopicPartitions, answer((*api.Client).Hosted), nil},
	{TopicInstances, answer((*api.Client).Instances), []string{"updated_at"}},
	{TopicAuctions, answer((*api.Client).Auctions), nil},
	{TopicLedger, answer((*api.Client).LedgerHeads), nil},
	{TopicLedger, answer(func(c *api.Client, ctx context.Context) (api.Answer[[]api.LedgerEntry], error) {
		return c.LedgerEntries(ctx, "", 20)
	}), nil},
}

// answer turns a typed client method into a read of the answer's JSON.
func answer[T any](m func(*api.Client, context.Context) (api.Answer[T], error)) func(context.Context, *api.Client) ([]byte, error) {
	return func(ctx context.Context, c *api.Client) ([]byte, error) {
		a, err := m(c, ctx)
		return a.Raw, err
	}
}

// WatchAPI adds every Source, read through c, to the broker's polled
// sources (the node passes api.NewHandlerClient over its own API mux: in
// process, no socket). Call it before Start.
func (b *Broker) WatchAPI(c *api.Client) {
	for _, s := range Sources {
		b.Watch(s.Topic, s.Fetch(c))
	}
}

// Fetch returns a fetch of the source's answer through c, fingerprinted
// without its ignored fields.
func (s Source) Fetch(c *api.Client) FetchFunc {
	return func(ctx context.Context) ([]byte, error) {
		body, err := s.Read(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("dashboard: %w", err)
		}
		return Fingerprint(body, s.Ignore...), nil
	}
}
