package engine

import "sync"

type commandKind uint8

const (
	cmdHold commandKind = iota + 1
	cmdGetHold
	cmdOrder
	cmdGetOrder
	cmdPayment
	cmdRestock
	cmdSync // does nothing: its answer means every earlier change is durable
)

// command is one request to an actor and, once done is signalled, its answer.
// Commands are pooled: the hot path allocates none.
type command struct {
	kind commandKind

	// inputs
	qty     int64
	token   HoldToken
	orderID uint64
	payment Payment
	claim   *keyClaim // set when the request carried an idempotency key

	// outputs, written by the actor before done is signalled
	code      Code
	available int64
	hold      Hold
	order     Order
	created   bool
	applied   bool
	product   Product

	done chan struct{} // capacity 1: the actor never blocks on it
}

var commandPool = sync.Pool{New: func() any { return &command{done: make(chan struct{}, 1)} }}

func getCommand(kind commandKind) *command {
	c := commandPool.Get().(*command)
	done := c.done
	*c = command{kind: kind, done: done}
	return c
}

func putCommand(c *command) {
	c.claim = nil
	c.payment = Payment{}
	c.order = Order{}
	c.product = Product{}
	commandPool.Put(c)
}
