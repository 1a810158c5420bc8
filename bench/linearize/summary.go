package linearize

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/anishathalye/porcupine"
)

// Summary counts a history's operations by request and answer, e.g.
// "POST /holds 201:40 409:12 …", so a log shows what a run exercised.
func Summary(history []porcupine.Operation) string {
	counts := map[string]map[string]int{}
	for _, op := range history {
		in, out := op.Input.(Input), op.Output.(Output)
		k := in.Kind.String()
		if counts[k] == nil {
			counts[k] = map[string]int{}
		}
		a := "none"
		if out == (Output{}) {
			a = "done"
		} else if !out.Unknown {
			a = fmt.Sprint(out.HTTP)
			if out.Replayed {
				a += "r"
			}
			if out.Error == "idempotency_key_reused" {
				a += "reused"
			}
		}
		counts[k][a]++
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(&b, "%s", k)
		for _, a := range slices.Sorted(maps.Keys(counts[k])) {
			fmt.Fprintf(&b, " %s:%d", a, counts[k][a])
		}
		b.WriteString("; ")
	}
	return strings.TrimSuffix(b.String(), "; ")
}
