// Package examples holds weft's example recipes (webserver, primes, site,
// textstats) as files a person can read and copy, and embeds them in the
// binary so that an installed weft (`weft demo`, `weft recipe examples`)
// works from any directory, without the source tree.
//
// Usage:
//
//	b, err := fs.ReadFile(examples.FS, "webserver.toml")
//
// Concurrency: FS is read-only and safe for concurrent use.
package examples

import "embed"

// FS holds every example recipe (*.toml) by its file name, e.g.
// "webserver.toml", at the root of the file system.
//
//go:embed *.toml
var FS embed.FS
