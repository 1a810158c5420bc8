// Package bench is flashbench's load generator: it drives a server that
// implements the flash sale HTTP contract (docs/API.md) with named
// workloads, measures latency with HDR histograms, and audits the server's
// stock arithmetic over HTTP at the end of every run.
//
// It speaks HTTP only (a fasthttp client) and never imports the engine, so it
// can measure any implementation of the contract.
//
// Workloads (Config.Workload):
//
//   - hot: every worker asks for one unit of one product (Config.ProductID,
//     or a product of Config.HotStock units created through the admin API)
//     until it sells out, then keeps asking. Reports the units granted
//     against the stock (they must be equal), the sell-out time and the 409s
//     served after it, and its two phases as separate rows (phase.go): the
//     granted phase (the 201s) and the sold-out phase (the 409s).
//   - grants: hot on a product that never sells out (one of grantsStock
//     units it creates, or Config.ProductID), so that the 201 path is
//     measured alone.
//   - checkout: hold → order → signed payment webhook, 80% success by
//     default, with deliberate second order posts, sequential and
//     concurrent duplicate deliveries, contrary events for final orders and
//     webhooks for order ids that do not exist yet (they must be queued and
//     applied when the order is made). After the load it makes the orders of
//     still-queued early webhooks, then verifies every order's status and
//     every product's counts against its ledger.
//   - browse: GET /api/products/{id} of random products, one op in 20 a
//     GET /api/products.
//   - mixed: browse and checkout ops at Config.BrowseWeight:CheckoutWeight.
//   - ceiling: browse against a constant-response fasthttp server that
//     flashbench starts in a child process (itself, re-executed), the
//     throughput HTTP alone allows on the machine.
//
// Closed loop (Config.RatePerSec == 0): each of Config.Conns workers starts
// its next op when the last one ends. Open loop (RatePerSec > 0): ops are due
// at fixed intervals and the first request of each op is timed from when it
// was due, so a stalled server shows up in the latency instead of slowing
// the load down (no coordinated omission).
//
// Every run keeps a timeline, one entry per second of the load with its
// request count, p50, p99 and maximum latency (Result.Timeline), so that a
// stall shows when it happened; Config.Verbose prints it as it goes.
//
// RunSuite runs ceiling, browse, hot, grants and checkout in interleaved
// rounds and prints a Markdown table of medians with each row's share of the
// ceiling; StartServer runs a server binary on a free port for it.
//
// The audits that compare the harness's ledger with the server's counts
// assume flashbench is the only client changing stock during a run.
package bench
