// Command weft is a peer-to-peer cloud fabric: every machine runs this one
// binary, joins a grid, bids on instance requests, runs the instances it wins
// in local partitions and bills them slice by slice into a replicated ledger.
//
// Run `weft --help` for the commands.
package main

import (
	"os"

	"github.com/weftgrid/weft/cmd/weft/internal/cli"
	"github.com/weftgrid/weft/cmd/weft/internal/nodecmd"
)

func main() {
	cli.Register(nodecmd.Order, nodecmd.New)
	os.Exit(cli.Main(os.Args[1:]))
}
