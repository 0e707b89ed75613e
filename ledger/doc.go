// Package ledger is weft's usage ledger: signed entries (contracts, receipts,
// acknowledgements, disputes, grants, checkpoints) in per-author hash-linked
// logs, merged as a grow-only CRDT, stored crash-safely, replicated by gossip
// and anti-entropy, audited, and summed into statements and balances.
//
// Usage:
//
//	// Pricing (pure, integer pico-credits from µcr-per-hour prices):
//	amount := ledger.Amount(contract.Price, usage)
//
//	// A node's ledger over a bbolt file:
//	l, err := ledger.Open(ledger.Config{Path: "ledger.db", Signer: signer})
//	e, err := l.Append(ctx, ledger.Contract{...}) // signed, stored, fsynced
//	report := l.Audit()                           // problems, root
//
//	// The node's loops: receipts from metering, acks or disputes
//	// (Reachability), periodic checkpoints.
//	b := ledger.NewBiller(l, usageSource, reachability, ledger.BillerConfig{RequireSync: true})
//	b.Start(ctx)
//	cp := ledger.NewCheckpointer(l, 10*time.Minute)
//	cp.Start(ctx)
//
// Entries are canonical deterministic CBOR; an entry's CID (CIDv1, dag-cbor,
// sha2-256) is taken over its signed bytes; the signature is Ed25519 by the
// author's peer key over EntryDomain followed by the unsigned encoding.
// Amounts are integer pico-credits computed by Amount from prices in
// micro-credits per hour, identical on every node.
//
// Concurrency: Entry values are immutable after Decode or Sign and safe to
// share. Set is not safe for concurrent use. Ledger methods are safe for
// concurrent use; Close is idempotent and waits for its goroutines. Biller
// and Checkpointer run one goroutine each between Start and Close (both
// idempotent); a Reachability is called from the Biller's goroutine without
// any ledger lock held.
package ledger
