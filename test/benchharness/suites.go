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
	// P8Ratio alternates a raw transfer and a fetch on the same connection;
	// P8Ceiling measures what bounds that ratio on this machine.
	{Name: "transfer", Pkg: "./recipes/transfer", Bench: "RawStream|Fetch|P8Ratio|P8Ceiling", Benchtime: "6x", Timeout: "20m"},
	{Name: "store", Pkg: "./recipes/store", Bench: ".", Timeout: "10m"},
	// A 16 MiB artifact fetched through the CLI from one provider and from
	// three, each behind an 80 Mbit/s uplink (network namespaces, tc tbf;
	// root and iproute2).
	{Name: "swarm", Pkg: "./test", Bench: "NetnsFetch", Benchtime: "3x", Timeout: "10m"},
	// P1, P2, P6: placement latency p50/p99 (N=10/50/100), placements/s and
	// CPU per placement on 50 nodes, messages and signature checks per
	// placement (N=10..200), failover after death is declared — on simnet.
	{Name: "market", Pkg: "./scheduler/simnet", Bench: ".", Benchtime: "200x", Timeout: "30m"},
	// market pure cores: Decide, auction, bid decode+verify, raw verify baseline.
	{Name: "market-core", Pkg: "./scheduler", Bench: ".", Timeout: "10m"},
	// market messages over a real libp2p stream vs a raw stream.
	{Name: "market-stream", Pkg: "./scheduler/schedp2p", Bench: "MarketDirectMessage", Timeout: "10m"},
	// P1 and P6 as a user sees them: real `weft node` processes on
	// loopback, placement through the CLI and SIGKILL of the host.
	{Name: "grid", Pkg: "./test", Bench: "MarketPlacement|MarketFailover", Benchtime: "5x", Count: 3, Timeout: "30m"},
	// P3 ingest vs raw verify, P5 convergence of 50 replicas after a heal.
	{Name: "ledger", Pkg: "./ledger", Bench: "VerifyRaw|Ingest|Converge50", Benchtime: "1x", Timeout: "30m"},
	// P4: a fresh node catching up a 1M-receipt ledger vs verifying the
	// same 1M signatures (three runs: each verifies 2M signatures).
	{Name: "ledger-catchup", Pkg: "./ledger", Bench: "CatchUp$", Benchtime: "1x", Count: 3, Timeout: "60m",
		Env: []string{"WEFT_LEDGER_CATCHUP_N=1000000"}},
	// partitions: start latency vs a bare fork/exec, metering cost, and the
	// supervisor's CPU with 50 live instances vs none.
	{Name: "partitions", Pkg: "./partition", Bench: "StartLatency|MeteringSlice|SandboxStart", Benchtime: "30x", Timeout: "10m"},
	{Name: "partitions-50", Pkg: "./partition", Bench: "Supervise50", Benchtime: "1x", Timeout: "10m"},
	// dashboard: event fan-out and snapshot fingerprinting.
	{Name: "dashboard", Pkg: "./cmd/weft/internal/dashboard", Bench: ".", Timeout: "10m"},
}

// ratios are the brief's ratio goals, each computed from two medians of the
// same run.
var ratios = []ratio{
	// Both move 64 MiB per op, so the inverse ratio of times is the ratio of throughputs.
	{Name: "P8 artifact fetch / raw libp2p stream throughput (interleaved)", Num: metric{"BenchmarkP8Ratio", "fetch-B/s"},
		Den: metric{"BenchmarkP8Ratio", "raw-B/s"}, Goal: ">= 0.8", Min: 0.8},
	{Name: "P8 artifact fetch / raw libp2p stream throughput (separate runs)", Num: metric{"BenchmarkRawStream", "sec/op"},
		Den: metric{"BenchmarkFetch", "sec/op"}, Goal: ">= 0.8", Min: 0.8},
	// P3 and P4 against the brief's baseline (raw Ed25519 verification,
	// one signature at a time with crypto/ed25519) and against the batch
	// verifier the ledger uses, alone: the strict figure of what ingest adds.
	{Name: "P3 ledger ingest / raw Ed25519 verify rate (crypto/ed25519, one by one)", Num: metric{"BenchmarkIngest", "receipts/s"},
		Den: metric{"BenchmarkIngest", "verifies/s"}, Goal: ">= 0.70", Min: 0.70},
	{Name: "P3 ledger ingest / batch verify rate of the same signatures (curve25519-voi)", Num: metric{"BenchmarkIngest", "receipts/s"},
		Den: metric{"BenchmarkIngest", "batch-verifies/s"}, Goal: ">= 0.70", Min: 0.70},
	{Name: "P4 catch-up of 1M receipts / verifying 1M signatures (crypto/ed25519, one by one)", Num: metric{"BenchmarkCatchUp", "s/catchup"},
		Den: metric{"BenchmarkCatchUp", "s/verify"}, Goal: "<= 1.3", Max: 1.3},
	{Name: "P4 catch-up of 1M receipts / batch-verifying the 1M signatures (curve25519-voi)", Num: metric{"BenchmarkCatchUp", "s/catchup"},
		Den: metric{"BenchmarkCatchUp", "s/batch-verify"}, Goal: "<= 1.3", Max: 1.3},
	{Name: "Partition start latency, sandboxed / without the sandbox (alternating, same run)", Num: metric{"BenchmarkSandboxStart", "sandboxed-ms"},
		Den: metric{"BenchmarkSandboxStart", "plain-ms"}, Goal: "<= 1.2", Max: 1.2},
	{Name: "Node CPU per instance start, sandboxed / without the sandbox (alternating, same run)", Num: metric{"BenchmarkSandboxStart", "sandboxed-cpu-ms"},
		Den: metric{"BenchmarkSandboxStart", "plain-cpu-ms"}, Goal: "(reported)"},
	{Name: "P2 signature checks per placement, N=200 / N=10", Num: metric{"BenchmarkMessagesPerPlacement/bidders=8/N=200", "sigchecks/placement"},
		Den: metric{"BenchmarkMessagesPerPlacement/bidders=8/N=10", "sigchecks/placement"}, Goal: "flat (<= 1.5)", Max: 1.5},
	{Name: "P2 messages per placement, N=200 / N=10", Num: metric{"BenchmarkMessagesPerPlacement/bidders=8/N=200", "msgs/placement"},
		Den: metric{"BenchmarkMessagesPerPlacement/bidders=8/N=10", "msgs/placement"}, Goal: "flat (<= 1.5)", Max: 1.5},
}

// goals are the brief's absolute goals, checked against one median.
var goals = []goal{
	{Name: "P1 placement p50, 50 nodes (simulated network)", M: metric{"BenchmarkPlacementLatency/bidders=8/N=50", "p50-ms"}, Goal: "<= 250 ms", Max: 250},
	{Name: "P1 placement p99, 50 nodes (simulated network)", M: metric{"BenchmarkPlacementLatency/bidders=8/N=50", "p99-ms"}, Goal: "<= 1000 ms", Max: 1000},
	{Name: "P1 placement p50, real nodes through the CLI", M: metric{"BenchmarkMarketPlacement", "p50-ms"}, Goal: "<= 250 ms", Max: 250},
	{Name: "P2 placements/s, 50 nodes, 2 cores", M: metric{"BenchmarkPlacementThroughput/N=50/bidders=8", "placements/s"}, Goal: ">= 300", Min: 300},
	{Name: "P5 convergence after a heal, 50 replicas", M: metric{"BenchmarkConverge50", "ms/converge"}, Goal: "<= 2000 ms", Max: 2000},
	{Name: "P6 re-placement after death is declared (simulated)", M: metric{"BenchmarkFailover", "p50-ms"}, Goal: "<= 3000 ms", Max: 3000},
	{Name: "P6 SIGKILL of the host to serving again (real nodes, LAN preset)", M: metric{"BenchmarkMarketFailover/preset=lan", "kill-to-serving-p50-ms"}, Goal: "<= 10000 ms", Max: 10000},
	{Name: "P6 death declared to serving again (real nodes, LAN preset)", M: metric{"BenchmarkMarketFailover/preset=lan", "declared-to-serving-p50-ms"}, Goal: "<= 3000 ms", Max: 3000},
	{Name: "P7 idle node RSS", M: metric{"BenchmarkIdleRSS", "rss-MiB"}, Goal: "<= 40 MB (38.1 MiB)", Max: 38.1},
}
