package main

// suites lists every benchmark `make bench` runs, by area of the brief.
var suites = []suite{
	// p2p: membership convergence and failure detection (simulated N=10,
	// 50, 100 in virtual time; 10 real hosts, libp2p vs net transport),
	// gossip rate at 10 nodes, idle RSS of one node (P7).
	{Name: "p2p", Pkg: "./p2p", Bench: ".", Benchtime: "1x", Timeout: "20m"},
}

// ratios are the brief's ratio goals, each computed from two medians of the
// same run.
var ratios = []ratio{}
