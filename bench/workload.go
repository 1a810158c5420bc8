package bench

import (
	"context"
	"fmt"
	"sort"
)

// runEnv is what a workload sees of the run: its configuration, the server,
// a control worker for setup and verification requests (recorded apart from
// the load), and the violations found so far.
type runEnv struct {
	cfg        Config
	target     *target
	control    *worker
	controlRec *recorder
	loadRec    *recorder // the load's figures, complete once finish is called
	violations *violations
	runID      string
}

// controlWorkerIDBase numbers control workers apart from load workers, so
// that idempotency keys built from worker ids never collide.
const controlWorkerIDBase = 1 << 30

// newControlWorkers returns n workers whose requests are recorded in the
// control recorder, not in the load figures.
func (e *runEnv) newControlWorkers(n int) []*worker {
	ws := make([]*worker, n)
	for i := range ws {
		ws[i] = newWorker(controlWorkerIDBase+i, e.target, e.controlRec, e.cfg.Seed+1_000_003)
	}
	return ws
}

// workload is one named kind of load.
type workload interface {
	// setup prepares what the workload needs (for example a product) before
	// the clock starts.
	setup(ctx context.Context, env *runEnv) error
	// op is one unit of work; it is called concurrently from many workers.
	op(w *worker)
	// progress returns a short figure for the live progress line, or "".
	progress() string
	// finish runs after the load: it checks the workload's own expectations
	// (adding violations to env) and fills its section of res.
	finish(ctx context.Context, env *runEnv, res *Result) error
}

// workloadFactories maps each --workload name to its constructor.
var workloadFactories = map[string]func(cfg Config) workload{
	"hot":      func(cfg Config) workload { return newHotWorkload(cfg, cfg.HotStock) },
	"grants":   func(cfg Config) workload { return newHotWorkload(cfg, grantsStock) },
	"checkout": func(cfg Config) workload { return newCheckoutWorkload(cfg) },
	"browse":   func(cfg Config) workload { return newBrowseWorkload(cfg) },
	"mixed":    func(cfg Config) workload { return newMixedWorkload(cfg) },
	"ceiling":  func(cfg Config) workload { return newBrowseWorkload(cfg) },
}

// WorkloadNames lists the names --workload accepts, sorted.
func WorkloadNames() []string {
	names := make([]string, 0, len(workloadFactories))
	for n := range workloadFactories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// newWorkload returns the workload named cfg.Workload.
func newWorkload(cfg Config) (workload, error) {
	f, ok := workloadFactories[cfg.Workload]
	if !ok {
		return nil, fmt.Errorf("unknown workload %q (want one of %v)", cfg.Workload, WorkloadNames())
	}
	return f(cfg), nil
}
