package linearize

import (
	"fmt"
	"slices"

	"github.com/anishathalye/porcupine"
)

// routes maps what answers (and order hints) revealed to the product they belong to: hold
// tokens (from hold, order and hold-read answers) and order ids (from order,
// order-read and hold-read answers).
type routes struct {
	tokenProduct map[string]uint64
	orderProduct map[uint64]uint64
	orderToken   map[uint64]string
	conflicts    []string
}

func learnRoutes(history []porcupine.Operation) routes {
	r := routes{tokenProduct: map[string]uint64{}, orderProduct: map[uint64]uint64{}, orderToken: map[uint64]string{}}
	for _, op := range history {
		out := op.Output.(Output)
		if out.Unknown || out.HTTP >= 300 || out.ProductID == 0 {
			continue
		}
		if out.Token != "" {
			r.token(out.Token, out.ProductID)
		}
		if out.OrderID != 0 {
			r.order(out.OrderID, out.ProductID, out.Token)
		}
	}
	for _, op := range history {
		in := op.Input.(Input)
		if in.Kind == KindHold && op.Output.(Output).Unknown {
			r.tokenProduct[placeholderName(in.Seq)] = in.ProductID
		}
		if p, ok := r.tokenProduct[in.Token]; ok && in.Kind == KindOrder && in.HintOrderID != 0 {
			r.order(in.HintOrderID, p, in.Token)
		}
	}
	return r
}

func (r *routes) token(token string, product uint64) {
	if p, ok := r.tokenProduct[token]; ok && p != product {
		r.conflicts = append(r.conflicts, fmt.Sprintf("hold %s reported for product %d and for product %d", token, p, product))
		return
	}
	r.tokenProduct[token] = product
}

func (r *routes) order(id, product uint64, token string) {
	if p, ok := r.orderProduct[id]; ok && p != product {
		r.conflicts = append(r.conflicts, fmt.Sprintf("order %d reported for product %d and for product %d", id, p, product))
		return
	}
	r.orderProduct[id] = product
	if t, ok := r.orderToken[id]; ok && t != token && token != "" {
		r.conflicts = append(r.conflicts, fmt.Sprintf("order %d reported for hold %s and for hold %s: one id, two orders", id, t, token))
		return
	}
	if token != "" {
		r.orderToken[id] = token
	}
}

// partKey names the partition an operation belongs to: its product
// ("p1"), or, for requests naming an order or hold that no answer ever tied
// to a product, that order id or token alone.
func (r *routes) partKey(in Input) string {
	switch in.Kind {
	case KindHold, KindGetProduct:
		return fmt.Sprintf("p%d", in.ProductID)
	case KindGetHold, KindOrder, KindExpireHold:
		if p, ok := r.tokenProduct[in.Token]; ok {
			return fmt.Sprintf("p%d", p)
		}
		return "t" + in.Token
	case KindGetOrder, KindWebhook, KindExpireOrder:
		if p, ok := r.orderProduct[in.OrderID]; ok {
			return fmt.Sprintf("p%d", p)
		}
		return fmt.Sprintf("o%d", in.OrderID)
	}
	return "?"
}

// partition splits a history into independent sub-histories, one per
// product. Products share nothing in docs/API.md except the order id sequence,
// whose uniqueness is checked apart (see Consistency), so a history is
// linearizable if and only if each product's part is. This needs the
// workload's promise that a hold key names one product and a webhook key
// one order id.
func partition(history []porcupine.Operation) [][]porcupine.Operation {
	keys, parts := split(history)
	out := make([][]porcupine.Operation, 0, len(keys))
	for _, k := range keys {
		out = append(out, parts[k])
	}
	return out
}

// split returns the partitions of history by key, and their keys sorted.
func split(history []porcupine.Operation) ([]string, map[string][]porcupine.Operation) {
	r := learnRoutes(history)
	parts := map[string][]porcupine.Operation{}
	for _, op := range history {
		k := r.partKey(op.Input.(Input))
		parts[k] = append(parts[k], op)
	}
	keys := make([]string, 0, len(parts))
	for k := range parts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, parts
}

// Consistency reports what no single partition can see: a hold token or
// an order id that answers tie to two products, or an order id given to two
// holds.
func Consistency(history []porcupine.Operation) []string {
	return learnRoutes(history).conflicts
}
