package linearize

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// explain renders a failed check: id conflicts, then the first failing
// partition shrunk to a small history that is still not linearizable, the
// longest prefix the model accepts, the state it ends in, and what the
// model expected of each operation that could have come next.
func explain(catalog []Product, history []porcupine.Operation, res Result, budget time.Duration) string {
	var b strings.Builder
	for _, c := range res.Conflicts {
		fmt.Fprintf(&b, "id conflict: %s\n", c)
	}
	if res.Verdict == porcupine.Ok {
		return b.String()
	}
	deadline := time.Now().Add(budget)
	model := NewModel(catalog)
	model.Partition = nil
	keys, parts := split(history)
	if res.Verdict == porcupine.Unknown {
		b.WriteString("the linearizability search timed out: no verdict (make the history smaller or the timeout longer); partitions:\n")
		for _, k := range keys {
			left := time.Until(deadline) / time.Duration(len(keys))
			start := time.Now()
			v := porcupine.CheckOperationsTimeout(model, parts[k], left)
			fmt.Fprintf(&b, "  %s: %d operations, %s in %v\n", k, len(parts[k]), v, time.Since(start).Round(time.Millisecond))
		}
		return b.String()
	}
	var failing []string
	for _, k := range keys {
		if porcupine.CheckOperationsTimeout(model, parts[k], time.Until(deadline)+time.Second) == porcupine.Illegal {
			failing = append(failing, k)
		}
	}
	if len(failing) == 0 {
		b.WriteString("no single partition fails on its own within the explain budget\n")
		return b.String()
	}
	fmt.Fprintf(&b, "not linearizable: partitions %v fail; the first, shrunk:\n", failing)
	small := shrink(model, parts[failing[0]], deadline)
	writeFailure(&b, model, failing[0], len(parts[failing[0]]), small)
	return b.String()
}

// inert reports an operation that changes no state whatever its place in
// a linearization (a read, or a refusal that stores nothing), so dropping
// it from a linearizable history leaves a linearizable history.
func inert(op porcupine.Operation) bool {
	in, out := op.Input.(Input), op.Output.(Output)
	switch in.Kind {
	case KindGetHold, KindGetOrder, KindGetProduct:
		return true
	case KindExpireHold, KindExpireOrder:
		return false
	}
	if out.Unknown {
		return false
	}
	if in.Kind == KindHold && in.Key != "" && out.HTTP == 409 && !out.Replayed {
		return false
	}
	return out.HTTP >= 400
}

func byCall(ops []porcupine.Operation) []porcupine.Operation {
	h := slices.Clone(ops)
	sort.SliceStable(h, func(i, j int) bool { return h[i].Call < h[j].Call })
	return h
}

// shrink returns a sub-history of ops that is still not linearizable:
// first the shortest prefix ending at a quiet moment (every kept operation
// returned before any dropped one was called), then without inert
// operations that are not needed for the failure.
func shrink(model porcupine.Model, ops []porcupine.Operation, deadline time.Time) []porcupine.Operation {
	illegal := func(h []porcupine.Operation) bool {
		left := time.Until(deadline)
		return left > 0 && porcupine.CheckOperationsTimeout(model, h, left) == porcupine.Illegal
	}
	h := byCall(ops)
	for round := 0; round < 2; round++ {
		h = shortestPrefix(h, illegal)
		for i := len(h) - 1; i >= 0 && time.Now().Before(deadline); i-- {
			if !inert(h[i]) {
				continue
			}
			c := append(slices.Clone(h[:i]), h[i+1:]...)
			if illegal(c) {
				h = c
			}
		}
	}
	return h
}

// shortestPrefix binary-searches the quiet cut points of h (sorted by
// call): a prefix that fails makes every longer one fail, since its
// operations all precede the rest.
func shortestPrefix(h []porcupine.Operation, illegal func([]porcupine.Operation) bool) []porcupine.Operation {
	var cuts []int
	var maxReturn int64 = math.MinInt64
	for i, op := range h {
		if i > 0 && maxReturn < op.Call {
			cuts = append(cuts, i)
		}
		maxReturn = max(maxReturn, op.Return)
	}
	i := sort.Search(len(cuts), func(i int) bool { return illegal(h[:cuts[i]]) })
	if i < len(cuts) {
		return h[:cuts[i]]
	}
	return h
}

func writeFailure(b *strings.Builder, model porcupine.Model, key string, total int, small []porcupine.Operation) {
	fmt.Fprintf(b, "partition %s: %d of its %d operations kept\n", key, len(small), total)
	fmt.Fprintf(b, "  %4s %6s %12s %12s  %s\n", "#", "client", "called ms", "returned ms", "request -> answer")
	for i, op := range small {
		ret := "never"
		if op.Return != math.MaxInt64 {
			ret = fmt.Sprintf("%.3f", float64(op.Return)/1e6)
		}
		fmt.Fprintf(b, "  %4d %6d %12.3f %12s  %s\n", i+1, op.ClientId, float64(op.Call)/1e6, ret,
			describeOp(op.Input.(Input), op.Output.(Output)))
	}
	_, info := porcupine.CheckOperationsVerbose(model, small, 10*time.Second)
	var longest []porcupine.Operation
	for _, parts := range info.PartialLinearizationsOperations() {
		for _, l := range parts {
			if len(l) > len(longest) {
				longest = l
			}
		}
	}
	st := model.Init()
	placed := map[int]bool{}
	for _, op := range longest {
		_, st = model.Step(st, op.Input, op.Output)
		placed[op.Input.(Input).Seq] = true
	}
	fmt.Fprintf(b, "the longest linearizable prefix places %d operations and ends in state:\n  %s\n",
		len(longest), model.DescribeState(st))
	var rest []porcupine.Operation
	firstReturn := int64(math.MaxInt64)
	for _, op := range small {
		if !placed[op.Input.(Input).Seq] {
			rest = append(rest, op)
			firstReturn = min(firstReturn, op.Return)
		}
	}
	b.WriteString("none of the operations that could come next fits:\n")
	for _, op := range rest {
		if op.Call > firstReturn {
			continue
		}
		in := op.Input.(Input)
		fmt.Fprintf(b, "  %s\n    answered  %s\n", describeInput(in), describeOutput(op.Output.(Output)))
		for _, s := range st.([]any) {
			fmt.Fprintf(b, "    model     %s\n", describeOutput(predict(s.(*state), in)))
		}
	}
}

// predict is the answer the model gives to in in state s; a new hold token
// or order id shows as "<new>" or 0.
func predict(s *state, in Input) Output {
	switch in.Kind {
	case KindGetHold:
		return getHold(s, in.Token)
	case KindGetOrder:
		return getOrder(s, in.OrderID)
	case KindGetProduct:
		return getProduct(s, in.ProductID)
	case KindHold:
		if refused, want := holdRefusal(s, in); refused {
			return want
		}
		if k, seen := s.holdKeys[in.Key]; seen && in.Key != "" {
			if k.productID != in.ProductID || k.qty != in.Qty {
				return errorOut(422, "idempotency_key_reused")
			}
			k.answer.Replayed = true
			return k.answer
		}
		want, _ := freshHold(s, in, "<new>")
		return want
	case KindOrder:
		h, ok := s.holds[in.Token]
		switch {
		case !ok || isPlaceholder(in.Token):
			return errorOut(404, "hold_not_found")
		case h.orderID != 0:
			return orderOut(200, h.orderID, s.orders[h.orderID])
		case h.expired:
			return errorOut(410, "hold_expired")
		}
		return orderOut(201, 0, createOrder(s, in.Token, 0).orders[0])
	case KindWebhook:
		if k, seen := s.hookKeys[in.Key]; seen {
			if k.orderID != in.OrderID || k.success != in.Success || k.reason != in.Reason {
				return errorOut(422, "idempotency_key_reused")
			}
			k.answer.Replayed = true
			return k.answer
		}
		want, _ := deliver(s, in)
		return want
	}
	return Output{}
}
