// Package schedrun connects a scheduler.Market to the node it runs on: the
// market's Runner over the partition manager (recipes resolved by CID from
// the content store or the grid, parameters validated, specs and statuses
// translated, batch results stored), the node's capacity, and the veto
// hook that runs an operator's command on each announcement.
//
// Usage:
//
//	r := schedrun.NewRunner(partitions, schedrun.Content{Store: st, Fetch: fetch, Announce: announce}, dataDir)
//	deps := scheduler.Deps{Runner: r, Veto: schedrun.CommandVeto{Command: hook, Timeout: 5 * time.Second}, ...}
//
// Concurrency: a Runner is safe for concurrent use; its Status, called on
// the market's state loop, does no I/O (storing a result directory and
// reading a failed run's log run on goroutines of their own). CommandVeto
// runs one process per call.
package schedrun
