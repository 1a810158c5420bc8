// Package engine is the flash sale domain: products, holds, orders, payments,
// idempotency keys, queued webhooks and expiry. Each product is owned by one
// goroutine (its actor); commands reach it over a bounded channel, so stock is
// never locked. Every state change is a record handed to a Journal; answers are
// released only once the Journal says the record (and everything before it) is
// durable. Replay applies the same records through the same code.
//
// The package imports only the standard library.
package engine

import "time"

// ProductSpec describes a product to create (seed catalog or admin API).
type ProductSpec struct {
	ID         uint64 // 0 asks the engine to assign max(id)+1
	Name       string
	PriceCents int64
	TotalStock int64
	MaxPerHold int64 // 0 means DefaultMaxPerHold
}

// DefaultMaxPerHold is the max_per_hold of a product created without one.
const DefaultMaxPerHold = 10

// Product is a product with its stock counts. Total = Available + Reserved + Sold.
type Product struct {
	ID         uint64
	Name       string
	PriceCents int64
	TotalStock int64
	Available  int64
	Reserved   int64
	Sold       int64
	MaxPerHold int64
}

// HoldStatus is the state of a hold as clients see it.
type HoldStatus uint8

const (
	HoldActive HoldStatus = iota + 1
	HoldOrdered
	HoldExpired
)

func (s HoldStatus) String() string {
	switch s {
	case HoldActive:
		return "active"
	case HoldOrdered:
		return "ordered"
	case HoldExpired:
		return "expired"
	}
	return "unknown"
}

// Hold is a reservation of Qty units of a product until ExpiresAt.
type Hold struct {
	Token     HoldToken
	ProductID uint64
	Qty       int64
	ExpiresAt time.Time
	Status    HoldStatus
	OrderID   uint64 // set once Status is HoldOrdered
}

// OrderStatus is the state of an order. Paid and Cancelled are final.
type OrderStatus uint8

const (
	OrderPending OrderStatus = iota + 1
	OrderPaid
	OrderCancelled
)

func (s OrderStatus) String() string {
	switch s {
	case OrderPending:
		return "pending"
	case OrderPaid:
		return "paid"
	case OrderCancelled:
		return "cancelled"
	}
	return "unknown"
}

// FailureReasonPaymentTimeout is the failure_reason of an order cancelled by
// the order TTL.
const FailureReasonPaymentTimeout = "payment_timeout"

// Order is the pending, paid or cancelled purchase made from one hold.
type Order struct {
	ID            uint64
	ProductID     uint64
	Qty           int64
	AmountCents   int64
	Status        OrderStatus
	Token         HoldToken
	CreatedAt     time.Time
	UpdatedAt     time.Time
	FailureReason string
}

// Code is the outcome of a command: OK or a stable reason for refusing it.
// The transport maps each Code to one HTTP status and error code.
type Code uint8

const (
	OK Code = iota
	CodeProductNotFound
	CodeInsufficientStock // HoldReply.Available says how many units were available
	CodeQtyAboveMax       // qty above the product's max_per_hold
	CodeInvalidArgument   // qty < 1 or another value the transport should have refused
	CodeHoldNotFound
	CodeHoldExpired
	CodeOrderNotFound
	CodeKeyReused     // same idempotency key, different request
	CodeOverloaded    // an actor's queue is full; retry later
	CodeShuttingDown  // the engine is stopping
	CodeTooManyQueued // queued webhooks are at QueuedWebhooksMax
	CodeKeyTableFull  // idempotency keys use up IdempotencyKeyBytesMax
	CodeJournalFailed // the log failed; nothing was acknowledged
	CodeProductExists // admin create with an id already taken
	CodeUnavailable   // the journal cannot commit now (cluster: not the leader, no majority); nothing was acknowledged
)

var codeNames = [...]string{
	OK:                    "ok",
	CodeProductNotFound:   "product_not_found",
	CodeInsufficientStock: "insufficient_stock",
	CodeQtyAboveMax:       "validation_failed",
	CodeInvalidArgument:   "validation_failed",
	CodeHoldNotFound:      "hold_not_found",
	CodeHoldExpired:       "hold_expired",
	CodeOrderNotFound:     "order_not_found",
	CodeKeyReused:         "idempotency_key_reused",
	CodeOverloaded:        "overloaded",
	CodeShuttingDown:      "shutting_down",
	CodeTooManyQueued:     "too_many_queued_webhooks",
	CodeKeyTableFull:      "overloaded",
	CodeJournalFailed:     "internal_error",
	CodeProductExists:     "product_exists",
	CodeUnavailable:       "unavailable",
}

// String is the API error code of c (docs/API.md's "error" field).
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "internal_error"
}

// HoldReply answers CreateHold.
type HoldReply struct {
	Code      Code
	Hold      Hold  // when Code is OK
	Available int64 // when Code is CodeInsufficientStock: units available at that instant
	Replayed  bool  // the answer is a replay of an earlier request with the same key
}

// OrderReply answers CreateOrder.
type OrderReply struct {
	Code    Code
	Order   Order // when Code is OK
	Created bool  // true on the first use of the hold (HTTP 201), false on a repeat (200)
}

// Payment is a payment provider's report about one order.
type Payment struct {
	OrderID       uint64
	Success       bool
	FailureReason string // optional, kept on the order when Success is false
}

// PaymentReply answers ApplyPayment.
type PaymentReply struct {
	Code     Code
	OrderID  uint64
	Queued   bool        // the order does not exist yet; the event waits for it (HTTP 202)
	Status   OrderStatus // the order's status after the event, when not Queued
	Applied  bool        // the event changed the order (false: it was already final)
	Replayed bool        // the answer is a replay of an earlier delivery with the same key
}
