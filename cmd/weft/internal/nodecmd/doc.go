// Package nodecmd is the 'weft node' command: the node's flags (one file
// per config section, each registering its hook from an init function) and
// the run of the daemon. It is apart from package cli so that the client
// commands do not link the daemon; main wires it into the command tree.
//
// Usage:
//
//	cli.Register(nodecmd.Order, nodecmd.New) // cmd/weft/main.go, before cli.Main
//
// Concurrency: the flags bind package-level hook variables: build one
// command tree at a time.
package nodecmd
