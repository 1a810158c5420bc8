package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// withCeilingDurationMax bounds the ceiling run that follows a workload: a
// rate needs no longer sample.
const withCeilingDurationMax = 10 * time.Second

// controlConns is the connection pool of setup and verification requests,
// kept apart from the load's pool.
const controlConns = verifyParallelism

// Run performs one flashbench run described by cfg: setup, load, audit, and
// with cfg.WithCeiling a ceiling run of the same shape. It prints the table
// on out, writes cfg.JSONPath if set, and returns every figure. A non-nil
// error means the run could not be carried out; broken server promises are
// reported in Result.Audit, not as an error.
func Run(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res, err := runOnce(ctx, cfg, out)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.Workload == "ceiling":
		res.Ceiling = &CeilingResult{RequestsPerSec: res.RequestsPerSec, Latency: res.Latency}
	case cfg.WithCeiling:
		cc := cfg
		cc.Workload = "ceiling"
		cc.Duration = min(cfg.Duration, withCeilingDurationMax)
		ceiling, err := runOnce(ctx, cc, out)
		if err != nil {
			return nil, fmt.Errorf("ceiling: %w", err)
		}
		res.Ceiling = &CeilingResult{RequestsPerSec: ceiling.RequestsPerSec, Latency: ceiling.Latency}
		if ceiling.RequestsPerSec > 0 {
			res.Ceiling.Ratio = res.RequestsPerSec / ceiling.RequestsPerSec
		}
		if res.Hot != nil {
			setCeilingRatios(res.Hot.Phases, ceiling.RequestsPerSec)
		}
	}
	WriteTable(out, res)
	if cfg.JSONPath != "" {
		if err := WriteJSON(cfg.JSONPath, res); err != nil {
			return res, fmt.Errorf("--json: %w", err)
		}
	}
	if cfg.HTMLPath != "" {
		if err := writeHTMLFile(cfg.HTMLPath, res); err != nil {
			return res, fmt.Errorf("--html: %w", err)
		}
	}
	return res, nil
}

// runOnce runs cfg's workload once against its target.
func runOnce(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	hostPort, stopTarget, err := resolveTarget(cfg)
	if err != nil {
		return nil, err
	}
	defer stopTarget()
	load := newTarget(hostPort, cfg.Conns, cfg.WebhookSecret, cfg.AdminToken)
	defer load.close()
	ctl := newTarget(hostPort, controlConns, cfg.WebhookSecret, cfg.AdminToken)
	defer ctl.close()

	controlRec := newRecorder(1)
	rec := newRecorder(cfg.Conns)
	env := &runEnv{
		cfg:        cfg,
		loadRec:    rec,
		target:     ctl,
		control:    newWorker(controlWorkerIDBase-1, ctl, controlRec, cfg.Seed),
		controlRec: controlRec,
		violations: &violations{},
		runID:      fmt.Sprintf("%d-%x", cfg.Seed, time.Now().UnixNano()),
	}
	wl, err := newWorkload(cfg)
	if err != nil {
		return nil, err
	}
	if err := wl.setup(ctx, env); err != nil {
		return nil, err
	}
	audited := cfg.Workload != "ceiling"
	var before []Product
	if audited {
		if before, err = env.control.listProducts(); err != nil {
			return nil, fmt.Errorf("audit before the load: %w", err)
		}
		for _, p := range before {
			checkProductArithmetic(env.violations, "before the load", p)
		}
	}

	workers := make([]*worker, cfg.Conns)
	for i := range workers {
		workers[i] = newWorker(i, load, rec, cfg.Seed)
	}
	if b, ok := wl.(interface{ begin(time.Time) }); ok {
		b.begin(time.Now())
	}
	var show func(IntervalResult)
	switch {
	case cfg.Verbose:
		fmt.Fprintf(out, "%s: a line per second of the load (by completion time)\n", cfg.Workload)
		show = verboseLine(out, wl.progress)
	case cfg.Progress:
		show = progressLine(out, wl.progress)
	}
	stopTimeline := startTimeline(rec, cfg.timelineInterval, show)
	dr := drive(ctx, workers, cfg.Duration, cfg.RatePerSec, wl.op)
	timeline := stopTimeline()
	if cfg.Progress && !cfg.Verbose {
		clearProgressLine(out)
	}

	res := &Result{
		Workload:       cfg.Workload,
		Target:         hostPort,
		Mode:           "closed",
		Conns:          cfg.Conns,
		RatePerSec:     cfg.RatePerSec,
		Seed:           cfg.Seed,
		DurationSec:    dr.elapsed.Seconds(),
		Ops:            dr.ops,
		MissedArrivals: dr.missedArrivals,
		Timeline:       timeline,
	}
	if cfg.RatePerSec > 0 {
		res.Mode = "open"
	}
	fillLoadFigures(res, rec)
	if audited {
		if err := auditAfter(ctx, env, wl, before, res); err != nil {
			return nil, err
		}
	}
	n, msgs := env.violations.snapshot()
	res.Audit.ViolationCount, res.Audit.Violations, res.Audit.OK = n, msgs, n == 0
	return res, nil
}

// auditAfter checks every product's arithmetic after the load, then the
// workload's own expectations.
func auditAfter(ctx context.Context, env *runEnv, wl workload, before []Product, res *Result) error {
	if err := wl.finish(ctx, env, res); err != nil {
		return err
	}
	after, err := env.control.listProducts()
	if err != nil {
		return fmt.Errorf("audit after the load: %w", err)
	}
	byID := make(map[int64]Product, len(before))
	for _, p := range before {
		byID[p.ID] = p
	}
	for _, p := range after {
		checkProductArithmetic(env.violations, "after the load", p)
		res.Audit.Products = append(res.Audit.Products, ProductAudit{Before: byID[p.ID], After: p})
	}
	return nil
}

// resolveTarget returns the host:port to load and a function that releases
// it: for ceiling, a constant-response server started in its own process.
func resolveTarget(cfg Config) (hostPort string, stop func(), err error) {
	if cfg.Workload != "ceiling" {
		hostPort, err = parseBaseURL(cfg.URL)
		return hostPort, func() {}, err
	}
	exe := cfg.CeilingExe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return "", nil, err
		}
	}
	p, err := startCeiling(exe)
	if err != nil {
		return "", nil, err
	}
	return p.addr, p.stop, nil
}
