package linearize

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// describeOp renders one request and its answer on one line, e.g.
// `POST /holds p1 qty 2 key h-3 -> 201 tok 9f2c… p1 qty 2`.
func describeOp(in Input, out Output) string {
	return describeInput(in) + " -> " + describeOutput(out)
}

func describeInput(in Input) string {
	var b strings.Builder
	b.WriteString(in.Kind.String())
	switch in.Kind {
	case KindHold:
		fmt.Fprintf(&b, " p%d qty %d", in.ProductID, in.Qty)
	case KindGetHold, KindOrder, KindExpireHold:
		fmt.Fprintf(&b, " tok %s", short(in.Token))
		if in.HintOrderID != 0 {
			fmt.Fprintf(&b, " (hint order %d)", in.HintOrderID)
		}
	case KindGetOrder, KindExpireOrder:
		fmt.Fprintf(&b, " %d", in.OrderID)
	case KindWebhook:
		status := "failure"
		if in.Success {
			status = "success"
		}
		fmt.Fprintf(&b, " order %d %s", in.OrderID, status)
		if in.Reason != "" {
			fmt.Fprintf(&b, " (%s)", in.Reason)
		}
	case KindGetProduct:
		fmt.Fprintf(&b, " p%d", in.ProductID)
	}
	if in.Key != "" {
		fmt.Fprintf(&b, " key %s", in.Key)
	}
	return b.String()
}

func describeOutput(out Output) string {
	if out.Unknown {
		return "no answer"
	}
	if out == (Output{}) {
		return "done"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d", out.HTTP)
	if out.Replayed {
		b.WriteString(" replayed")
	}
	if out.Error != "" {
		fmt.Fprintf(&b, " %s", out.Error)
		if out.Error == "insufficient_stock" {
			fmt.Fprintf(&b, " available %d", out.Available)
		}
		return b.String()
	}
	switch {
	case out.Total != 0 || (out.Token == "" && out.OrderID == 0 && out.ProductID != 0):
		fmt.Fprintf(&b, " p%d total %d avail %d reserved %d sold %d", out.ProductID, out.Total, out.Available, out.Reserved, out.Sold)
	case out.Amount != 0:
		fmt.Fprintf(&b, " order %d p%d qty %d %s tok %s", out.OrderID, out.ProductID, out.Qty, out.State, short(out.Token))
		if out.Reason != "" {
			fmt.Fprintf(&b, " (%s)", out.Reason)
		}
	case out.Token != "":
		fmt.Fprintf(&b, " tok %s p%d qty %d", short(out.Token), out.ProductID, out.Qty)
		if out.State != "" {
			fmt.Fprintf(&b, " %s", out.State)
		}
		if out.OrderID != 0 {
			fmt.Fprintf(&b, " order %d", out.OrderID)
		}
	case out.OrderID != 0:
		fmt.Fprintf(&b, " order %d %s", out.OrderID, out.State)
		if out.State != "queued" {
			fmt.Fprintf(&b, " applied=%t", out.Applied)
		}
	}
	return b.String()
}

// short keeps the last 8 characters of a token: enough to tell the tokens
// of one history apart.
func short(token string) string {
	if len(token) <= 10 {
		return token
	}
	return "…" + token[len(token)-8:]
}

// describeState renders the parts of a state that are not empty, sorted.
func describeState(s *state) string {
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(s.products)) {
		p := s.products[id]
		parts = append(parts, fmt.Sprintf("p%d: avail %d reserved %d sold %d", id, p.available, p.reserved, p.sold))
	}
	for _, t := range slices.Sorted(maps.Keys(s.holds)) {
		h := s.holds[t]
		d := fmt.Sprintf("hold %s p%d qty %d", short(t), h.productID, h.qty)
		if h.orderID != 0 {
			d += fmt.Sprintf(" → order %d", h.orderID)
		}
		if h.expired {
			d += " expired"
		}
		parts = append(parts, d)
	}
	for _, id := range slices.Sorted(maps.Keys(s.orders)) {
		o := s.orders[id]
		parts = append(parts, fmt.Sprintf("order %d p%d qty %d %s", id, o.productID, o.qty, o.state))
	}
	for _, id := range slices.Sorted(maps.Keys(s.queued)) {
		parts = append(parts, fmt.Sprintf("queued for order %d: success=%t", id, s.queued[id].success))
	}
	if n := len(s.holdKeys) + len(s.hookKeys); n > 0 {
		parts = append(parts, fmt.Sprintf("%d hold keys, %d webhook keys", len(s.holdKeys), len(s.hookKeys)))
	}
	return strings.Join(parts, "; ")
}
