// Package dashboard is the web dashboard every weft node serves on its local
// API address: an HTML page, a stylesheet and a script embedded in the
// binary (no build step, nothing fetched from the internet), and a
// server-sent event stream that tells the page which section to refetch.
//
// The page is a public shell; all data comes from the node's authenticated
// JSON routes (/v1/status, /v1/peers, /v1/partitions, /v1/instances,
// /v1/auctions, /v1/ledger/...), which the browser reaches with the cookie
// that GET /login?code=CODE sets for a one-time code ('weft ui' prints that
// URL). A route a node does not serve (404) shows as "not available on this
// node".
//
// Usage:
//
//	b, _ := dashboard.NewBroker(dashboard.DefaultConfig(), log)
//	b.Watch(dashboard.TopicPeers, fetchPeers) // polled while a page listens
//	dashboard.Register(apiServer, b)          // GET /, /assets/, /v1/events, /v1/dashboard
//	b.Start(ctx)
//	defer b.Close()
//	b.Notify(dashboard.TopicLedger)           // push a change at once
//
// Concurrency: a Broker is safe for concurrent use. Notify never blocks: it
// marks the topic pending on every open stream, and each stream's goroutine
// writes its pending topics (coalesced) when it next runs. Watched sources
// are polled by one goroutine, only while at least one stream is open.
package dashboard
