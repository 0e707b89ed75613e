// Package transfertest holds fakes for testing code that uses package
// transfer: an in-memory provider routing shared by several hosts, standing
// in for the DHT.
//
// Usage:
//
//	mr := transfertest.NewMemRouting()
//	svcA, _ := transfer.New(hostA, storeA, mr.For(hostA), cfg, log)
//	svcB, _ := transfer.New(hostB, storeB, mr.For(hostB), cfg, log)
//	svcA.Provide(ctx, c)     // recorded under hostA
//	svcB.Fetch(ctx, c)       // finds hostA through mr
//
// Concurrency: MemRouting is safe for concurrent use.
package transfertest
