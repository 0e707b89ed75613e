// Package scheduler is weft's market: requests, auctions, bids, awards,
// contracts, constraints and re-placement, with no master anywhere.
//
// A requester signs a Request and announces it (Announcement, on the grid's
// request topic, or directly to a bounded bidder set nearest the instance in
// the DHT keyspace). Nodes decide with the pure function Decide (resources,
// labels, constraints, their Policy) and answer the auctioneer directly with
// a signed Bid or Decline. The requester's Auction, a pure state machine,
// closes when every asked node answered, when enough bids are in, or at the
// end of its window; awards the cheapest bid (then best fit, lowest RTT, and
// a deterministic per-auction tie-break); the provider answers with an
// Accept; Award + Accept form the Contract, which carries an epoch and goes
// to the ledger (ContractSink). When nothing fits, the auction's explanation
// aggregates the declines ("no node placed web: 12 lacked memory, 3 excluded
// by region=eu").
//
// Hosts send signed Status (state and connection parameters) to the
// requester and the guardians named in the request's Delegation. When the
// membership loses the host for the request's grace, the requester
// re-auctions with the next epoch, or, if it is offline too, the first live
// guardian does. Contracts are totally ordered by Wins (epoch, then digest);
// a host that sees a contract that wins over its own stops its copy
// (ShouldStop) and bills nothing further. Statuses double as anti-entropy:
// a tracker that knows a winning contract answers a stale host's status
// with it.
//
// # Usage
//
//	store, err := scheduler.NewDirStore(filepath.Join(dataDir, "market"))
//	m, err := scheduler.New(scheduler.DefaultConfig(), privKey, scheduler.Deps{
//		Transport: t, Membership: mem, Runner: r, Contracts: ledgerSink, Store: store, Log: log,
//	})
//	err = m.Start(ctx)
//	// on every membership event: m.MembershipChanged()
//	defer m.Close()
//	spec := scheduler.RequestSpec{Name: "web", RecipeCID: c, Resources: res}
//	err = scheduler.ApplySLA(&spec, []string{"region=eu", "max_rtt=20ms"})
//	v, err := m.Request(ctx, spec)
//	v, err = m.Wait(ctx, "web", func(v scheduler.InstanceView) bool { ok, _ := scheduler.Reached(v); return ok })
//
// Package simnet runs many markets in one process over an in-memory
// network with per-link latencies, for tests and benchmarks.
//
// # Concurrency
//
// A Market's mutable state belongs to one goroutine (its state loop);
// public methods send it closures and wait, so they are safe for concurrent
// use. Outbound direct messages go through a bounded queue per peer, each
// served by its own sender goroutine with a short deadline, and
// announcements through their own: a slow Transport never blocks the loop,
// and a slow or unreachable peer delays only what is sent to it. The loop
// does no I/O of its own either: Store writes and ContractSink records go
// through an unbounded ordered queue to one goroutine (Close waits until
// it is drained), and its ticks come from Deps.Clock. Runner.Apply and
// VetoHook.Veto run in their own goroutines and report back to the loop.
// Observers registered with Observe run on the loop and must not block.
// Auction, Decide, Wins, ShouldStop, ShouldReplace, Guardians and BidderSet are pure and
// hold no locks.
package scheduler
