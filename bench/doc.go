// Package bench is flashbench's load generator: it drives a server that
// implements the flash sale HTTP contract (shared/API.md) with named
// workloads, measures latency with HDR histograms, and audits the server's
// stock arithmetic over HTTP at the end of every run.
//
// It speaks HTTP only (a fasthttp client) and never imports the engine, so it
// can measure any implementation of the contract.
//
// The audits that compare the harness's own ledger with the server's counts
// assume flashbench is the only client changing stock during a run.
package bench
