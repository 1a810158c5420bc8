// Package linearize checks the flash sale HTTP API the way databases are
// checked: many concurrent clients drive a real server over HTTP, every
// request is recorded with its call and return time, and the whole history
// must be linearizable against a sequential model of API.md, checked with
// github.com/anishathalye/porcupine.
//
// The package speaks HTTP only and never imports the engine: the model in
// model.go is an independent reading of the contract.
//
// What the model covers: products (available, reserved, sold, total), holds
// (active or ordered), orders (pending, paid, cancelled) with server-chosen
// ids, payment webhooks with idempotency keys (replays, reused keys) and
// webhooks that overtake their order's creation (202 queued, applied when
// the order is created), and hold idempotency keys including replayed 409s.
// Expiry is not modelled: runs use a long --hold-ttl and --order-ttl 0, so
// no hold or order expires while a history is recorded.
//
// Assumptions the workload keeps so the history partitions per product:
// a hold idempotency key is only ever sent with one product_id, and a
// webhook key only with one order_id (a reused key differs in qty, or in
// status/failure_reason). Requests refused before they reach the server
// (connection refused) are left out; requests that got no answer are kept
// with an unknown outcome and may have happened at any point after their
// call, or not at all.
package linearize
