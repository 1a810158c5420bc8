package linearize

import (
	"fmt"
	"time"
)

// Sweep reads, after the clients have stopped, what the history needs to
// be checked precisely, and records those reads as operations of client
// id client: every product, the hold of every unanswered order request
// (whose order id, if any, becomes the request's HintOrderID), and every
// order id up to a few past the highest seen, which ties each existing
// order to its product. Reads that get no answer are retried for up to
// patience; Sweep fails if one never gets an answer.
func Sweep(c *Client, rec *Recorder, catalog []Product, client int, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	read := func(in Input) (Output, error) {
		for {
			out, sent := rec.Do(c, client, in)
			if sent && !out.Unknown && out.HTTP != 503 {
				return out, nil
			}
			if time.Now().After(deadline) {
				return out, fmt.Errorf("linearize: sweep: %s got no answer", describeInput(in))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, p := range catalog {
		if _, err := read(Input{Kind: KindGetProduct, ProductID: p.ID}); err != nil {
			return err
		}
	}
	var maxID uint64
	pending := map[string]bool{}
	for _, op := range rec.History() {
		in, out := op.Input.(Input), op.Output.(Output)
		maxID = max(maxID, out.OrderID, in.OrderID)
		if in.Kind == KindOrder && out.Unknown {
			pending[in.Token] = true
		}
	}
	orderOf := map[string]uint64{}
	for token := range pending {
		out, err := read(Input{Kind: KindGetHold, Token: token})
		if err != nil {
			return err
		}
		orderOf[token] = out.OrderID
		maxID = max(maxID, out.OrderID)
	}
	rec.setHints(orderOf)
	for id := uint64(1); id <= maxID+3; id++ {
		if _, err := read(Input{Kind: KindGetOrder, OrderID: id}); err != nil {
			return err
		}
	}
	return nil
}
