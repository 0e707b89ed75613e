// Package cli holds weft's command-line interface. Each command group lives in
// its own file and registers itself with register from an init function, so
// the root command never needs editing when a group is added.
//
// Usage:
//
//	cli.Register(nodecmd.Order, nodecmd.New)  // cmd/weft/main.go: 'weft node'
//	os.Exit(cli.Main(os.Args[1:]))
//	root := cli.NewRoot(stdout, stderr)       // in tests: root.SetArgs(...); root.Execute()
//
// Conventions every command follows (docs/cli.md is the user's view):
//   - results on stdout, progress and errors on stderr; --json prints exactly
//     one JSON value on stdout (TestJSONEveryClientCommand enforces it for
//     every command of the tree);
//   - errors say what to do next (hints.go; api.Client's errors name the data
//     dir and how to start its node);
//   - waits and transfers longer than a second draw a spinner or byte bar
//     only when stderr is a terminal and --json is off (progress.go);
//   - arguments naming things on the node complete from it (completion.go);
//   - exit codes: ExitOK, ExitFailed, ExitUsage, ExitInterrupted.
//
// The client commands never link the daemon: 'weft node' lives in package
// nodecmd, which main registers (Register).
//
// Concurrency: NewRoot builds a fresh command tree each call, but the flags
// of 'weft node' bind package-level hook variables, so build one tree at a
// time; a tree runs one command at a time. A *progress is safe to use from
// its reader and the command's goroutine.
package cli
