package transport

import "github.com/rs/zerolog"

// RefundLogger returns an engine.Config.OnRefundNeeded hook that logs, at
// warn level, a success that arrived for an order already cancelled: the
// customer was charged for nothing and needs a refund. The engine counts
// these (flashsale_refunds_needed_total); the hook runs on an actor
// goroutine and only writes one log line. The lines go through
// clientWarnSampler: a provider (or, without a webhook secret, anyone)
// sending successes for cancelled orders cannot flood the log; the counter
// counts every one.
func RefundLogger(log zerolog.Logger) func(orderID, productID uint64) {
	log = log.Sample(clientWarnSampler())
	return func(orderID, productID uint64) {
		log.Warn().Uint64("order_id", orderID).Uint64("product_id", productID).
			Msg("payment success for a cancelled order: refund needed")
	}
}
