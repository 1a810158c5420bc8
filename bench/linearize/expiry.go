package linearize

import (
	"time"

	"github.com/anishathalye/porcupine"
)

// ExpirySlack is how late docs/API.md lets an expiry come: an expired hold never
// counts once its expires_at has passed by more than 100 ms.
const ExpirySlack = 100 * time.Millisecond

// clockSlack widens each expiry window by this much on both sides, for the
// millisecond precision of timestamps and for reading the wall clock at a
// slightly different instant than the monotonic one.
const clockSlack = 5 * time.Millisecond

// AddExpiries records, for every hold whose expires_at an answer showed,
// an expiry that happens at some instant from expires_at to expires_at +
// ExpirySlack; and, when orderTTL > 0, for every order whose created_at an
// answer showed, an expiry of its payment window from created_at+orderTTL
// to ExpirySlack later (docs/API.md states no slack for orders; the model
// grants them the holds' one). A hold whose creation got no answer but
// whose server died may exist under its placeholder name: it expires
// holdTTL after some instant between the request's call and the death.
// Expiries are recorded as operations of client id client. Timestamps are
// the server's wall clock, which shares the machine's clock with the
// recorder.
func AddExpiries(rec *Recorder, holdTTL, orderTTL time.Duration, client int) {
	holds := map[string]time.Time{}
	orders := map[uint64]time.Time{}
	for _, op := range rec.History() {
		in, out := op.Input.(Input), op.Output.(Output)
		if in.Kind == KindHold && out.Unknown && op.Return != Never {
			ttl, slack := int64(holdTTL), int64(ExpirySlack+clockSlack)
			rec.Record(porcupine.Operation{ClientId: client, Input: Input{Kind: KindExpireHold, Token: placeholderName(in.Seq)},
				Call: op.Call + ttl - int64(clockSlack), Return: op.Return + ttl + slack, Output: Output{}})
		}
		at, ok := op.Metadata.(Meta)
		if !ok {
			continue
		}
		if !at.ExpiresAt.IsZero() && out.Token != "" {
			holds[out.Token] = at.ExpiresAt
		}
		if !at.CreatedAt.IsZero() && out.OrderID != 0 {
			orders[out.OrderID] = at.CreatedAt
		}
	}
	for token, at := range holds {
		rec.Record(rec.window(client, Input{Kind: KindExpireHold, Token: token}, at))
	}
	if orderTTL <= 0 {
		return
	}
	for id, created := range orders {
		rec.Record(rec.window(client, Input{Kind: KindExpireOrder, OrderID: id}, created.Add(orderTTL)))
	}
}

// window is the operation of an expiry due at wall-clock time due.
func (r *Recorder) window(client int, in Input, due time.Time) porcupine.Operation {
	call := due.Sub(r.startWall) - clockSlack
	ret := due.Sub(r.startWall) + ExpirySlack + clockSlack
	return porcupine.Operation{ClientId: client, Input: in, Call: int64(call), Return: int64(ret), Output: Output{}}
}
