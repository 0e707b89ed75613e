// Package settle is the bridge between the market (package scheduler) and
// the ledger: it turns what the market agreed into what the ledger records
// and checks, and what the ledger knows into what the market acts on.
//
// It holds the pure rules both sides rely on:
//
//   - Contract converts a signed market contract (award and acceptance)
//     into a ledger contract; CheckContract verifies a ledger contract
//     against that evidence (the ledger's Config.ContractCheck).
//   - Price and UsageFromMeter convert the market's price list and a
//     metered period into the ledger's price and usage vector.
//   - BillerConfig is the billing loop's configuration on a node.
//   - ReachVerdict decides, for a requester, whether a receipt's instance
//     was reachable on its provider (acknowledge or dispute).
//   - Stale picks the local copies a newer contract in the ledger fences.
//
// The cores stay independent: scheduler and ledger never import each
// other; settle imports both (and nothing networked), and the node wires
// it between them. The slice length is a time.Duration everywhere here.
//
// Concurrency: every function is pure and safe for concurrent use.
package settle
