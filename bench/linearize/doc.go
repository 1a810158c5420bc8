// Package linearize checks the flash sale HTTP API the way databases are
// checked: many concurrent clients drive a real server over HTTP, every
// request is recorded with its call and return time, and the whole history
// must be linearizable against a sequential model of docs/API.md, checked with
// github.com/anishathalye/porcupine.
//
// The package speaks HTTP only and never imports the engine: the model is
// an independent reading of the contract.
//
//   - model.go, state.go: the sequential specification. Products
//     (available, reserved, sold, total), holds (active, ordered, expired),
//     orders (pending, paid, cancelled) whose ids the server picks (any
//     fresh id is accepted), hold and webhook idempotency keys (replays,
//     replayed 409s, reused keys), webhooks that overtake their order's
//     creation (202 queued, the first queued one decides the new order's
//     status), hold expiry and order payment timeouts.
//   - partition.go: per-product partitions (see partition for why that is
//     sound), and Consistency, the cross-product checks of ids.
//   - client.go, recorder.go, workload.go, sweep.go, expiry.go: the
//     history recorder. Seeded random clients over HTTP; a sweep of reads
//     after the run; expiries added as operations whose window is docs/API.md's
//     100 ms slack.
//   - check.go, explain.go, describe.go, dump.go: Check, and for a
//     violation a readable report of a shrunk failing history, porcupine's
//     HTML visualization ($LINEARIZE_VIS) and the history as JSON
//     ($LINEARIZE_DUMP) for TestRecheckSavedHistory.
//
// Requests that got no answer are kept with an unknown outcome: they took
// effect or not, at some instant after their call and before the death of
// the server they went to (Recorder.ServerDied), so a check spans kill -9
// and restart. Requests refused before they reached the server (connection
// refused) are left out, and so are unanswered reads.
//
// Assumptions the workload keeps so the history partitions per product:
// a hold idempotency key is only ever sent with one product_id, a webhook
// key only with one order_id (a reused key differs in qty, or in status or
// failure_reason), and a key is never used on both endpoints. Expiry is
// modelled for holds and orders whose timestamps an answer showed, and for
// holds that an unanswered request to a server that then died may have
// created; a hold from a request that merely timed out never expires in
// the model.
//
// Tests: go test ./bench/linearize runs the model's unit tests, the fake
// server with and without injected faults, and seeded runs of a few hundred
// requests against cmd/flashsale (plain, across kill -9, with expiry, and
// with both).
// LINEARIZE_LONG=1 adds runs of 2,000 requests by 16 clients, with and
// without three kills; LINEARIZE_SEED=n repeats one seed.
package linearize
