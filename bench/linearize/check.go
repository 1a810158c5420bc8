package linearize

import (
	"fmt"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

// VisualizeEnv names the environment variable that, when Options leave
// VisualizePath empty, gives the file for porcupine's HTML visualization of
// a failed check.
const VisualizeEnv = "LINEARIZE_VIS"

// Options tune Check. The zero value is usable.
type Options struct {
	// Timeout bounds the linearizability search (default 60s). A search
	// that runs out gives porcupine.Unknown, which Result.OK refuses.
	Timeout time.Duration
	// VisualizePath, or else $LINEARIZE_VIS, is where a failed check
	// writes porcupine's HTML visualization. Empty: none is written.
	VisualizePath string
	// DumpPath, or else $LINEARIZE_DUMP, is where a failed check saves the
	// history (SaveHistory). Empty: it is not saved.
	DumpPath string
	// ExplainBudget bounds the time spent shrinking a failing partition
	// for the report (default 20s).
	ExplainBudget time.Duration
}

// Result is the verdict on one history.
type Result struct {
	Verdict    porcupine.CheckResult
	Conflicts  []string // see Consistency
	Report     string   // for a violation: the shortest failing history found, readable
	Ops        int
	Partitions int
	Elapsed    time.Duration
	Visualized string // the HTML file written, if any
}

// OK reports a linearizable history with consistent ids: Ok verdict and no
// conflicts. Unknown (timed out) is not OK.
func (r Result) OK() bool { return r.Verdict == porcupine.Ok && len(r.Conflicts) == 0 }

// Check decides whether history is linearizable against the model of a
// server seeded with catalog, partition by partition, and for a violation
// explains the smallest failing sub-history it can find.
func Check(catalog []Product, history []porcupine.Operation, opt Options) Result {
	if opt.Timeout <= 0 {
		opt.Timeout = 60 * time.Second
	}
	if opt.ExplainBudget <= 0 {
		opt.ExplainBudget = 20 * time.Second
	}
	if opt.VisualizePath == "" {
		opt.VisualizePath = os.Getenv(VisualizeEnv)
	}
	if opt.DumpPath == "" {
		opt.DumpPath = os.Getenv(DumpEnv)
	}
	start := time.Now()
	history = MarkSingleUseKeys(history)
	model := NewModel(catalog)
	keys, _ := split(history)
	res := Result{Ops: len(history), Partitions: len(keys), Conflicts: Consistency(history)}
	verdict, info := porcupine.CheckOperationsVerbose(model, history, opt.Timeout)
	res.Verdict = verdict
	res.Elapsed = time.Since(start)
	if res.OK() {
		return res
	}
	res.Report = explain(catalog, history, res, opt.ExplainBudget)
	if opt.DumpPath != "" {
		if err := SaveHistory(opt.DumpPath, catalog, history); err != nil {
			res.Report += fmt.Sprintf("\nhistory not saved: %v\n", err)
		} else {
			res.Report += fmt.Sprintf("\nhistory saved: %s\n", opt.DumpPath)
		}
	}
	if opt.VisualizePath != "" {
		if err := porcupine.VisualizePath(model, info, opt.VisualizePath); err != nil {
			res.Report += fmt.Sprintf("\nvisualization not written: %v\n", err)
		} else {
			res.Visualized = opt.VisualizePath
			res.Report += fmt.Sprintf("\nvisualization: %s\n", opt.VisualizePath)
		}
	}
	return res
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("%s: %d operations in %d partitions checked in %v, %d id conflicts",
		r.Verdict, r.Ops, r.Partitions, r.Elapsed.Round(time.Millisecond), len(r.Conflicts))
}

// MarkSingleUseKeys returns history with KeyOnce set on every request
// whose idempotency key no other request of the history carries (hold and
// webhook keys are separate namespaces).
func MarkSingleUseKeys(history []porcupine.Operation) []porcupine.Operation {
	type nsKey struct {
		webhook bool
		key     string
	}
	uses := map[nsKey]int{}
	for _, op := range history {
		if in := op.Input.(Input); in.Key != "" {
			uses[nsKey{in.Kind == KindWebhook, in.Key}]++
		}
	}
	out := make([]porcupine.Operation, len(history))
	for i, op := range history {
		in := op.Input.(Input)
		in.KeyOnce = in.Key != "" && uses[nsKey{in.Kind == KindWebhook, in.Key}] == 1
		op.Input = in
		out[i] = op
	}
	return out
}
