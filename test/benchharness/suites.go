package main

// suites lists every benchmark `make bench` runs, by area of the brief.
var suites = []suite{
	// p2p: membership convergence and failure detection (simulated N=10,
	// 50, 100 in virtual time; 10 real hosts, libp2p vs net transport),
	// gossip rate at 10 nodes, idle RSS of one node (P7).
	{Name: "p2p", Pkg: "./p2p", Bench: ".", Benchtime: "1x", Timeout: "20m"},
	// recipes: parse, CID, parameter validation, canonical decoding.
	{Name: "recipes", Pkg: "./recipes", Bench: ".", Timeout: "10m"},
	// P8: a 64 MiB artifact fetched by CID vs a raw libp2p stream (Noise,
	// loopback), in the same run; also the store's per-chunk write.
	{Name: "transfer", Pkg: "./recipes/transfer", Bench: "RawStream|Fetch", Benchtime: "6x", Timeout: "20m"},
	{Name: "store", Pkg: "./recipes/store", Bench: ".", Timeout: "10m"},
	// P1, P2, P6: placement latency p50/p99 (N=10/50/100), placements/s and
	// CPU per placement on 50 nodes, messages and signature checks per
	// placement (N=10..200), failover after death is declared — on simnet.
	{Name: "market", Pkg: "./scheduler/simnet", Bench: ".", Benchtime: "200x", Timeout: "30m"},
	// market pure cores: Decide, auction, bid decode+verify, raw verify baseline.
	{Name: "market-core", Pkg: "./scheduler", Bench: ".", Timeout: "10m"},
}

// ratios are the brief's ratio goals, each computed from two medians of the
// same run.
var ratios = []ratio{
	// Both move 64 MiB per op, so the inverse ratio of times is the ratio of throughputs.
	{Name: "P8 artifact transfer / raw libp2p stream throughput", Num: metric{"BenchmarkRawStream", "sec/op"},
		Den: metric{"BenchmarkFetch", "sec/op"}, Goal: ">= 0.8", Min: 0.8},
}
