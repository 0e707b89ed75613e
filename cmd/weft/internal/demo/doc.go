// Package demo runs weft's end-to-end demonstration: a local grid of real
// node processes on loopback that publishes the example recipes, auctions and
// serves a web server, runs a batch job, loses the web server's host and
// places the instance again, accrues receipts, audits the ledger on every
// node and prints a statement. `weft demo` is its command.
//
// Every step verifies its own result against the CLI and API contracts of
// the node, recipe, market and ledger issues; the run stops at the first step
// it cannot verify, and Summary.OK is true only when every planned step
// passed. Nothing is reported as done that was not checked.
//
// # Usage
//
//	cfg := demo.DefaultConfig()
//	cfg.Nodes = 3
//	sum, err := demo.Run(ctx, cfg, os.Stdout, os.Stderr)
//	// sum.OK, sum.PlacementMS, sum.Root ...
//
// Run starts the nodes as separate OS processes (the weft binary's `node`
// command), each in its own process group and data directory under one
// temporary folder; it talks to them by running the binary's client commands
// with --json (the contract surface) and reads /v1/status and /v1/auctions
// through the local API client. When Run returns, every process it started
// and every folder it made are gone, also when ctx is cancelled (Ctrl-C).
// With Config.Keep the grid stays up until ctx is cancelled.
//
// The steps are a list (Steps) of named functions that each return a
// verified Outcome; Summarize turns their results into the JSON summary and
// is pure.
//
// # Concurrency
//
// Run is synchronous and may be called from one goroutine at a time per
// Config.WorkDir; steps run one after another, and a step may poll several
// nodes in parallel internally. The package keeps no global state except
// the process-wide child-subreaper flag set on Linux so that processes
// orphaned by a killed node can still be found and stopped.
package demo
