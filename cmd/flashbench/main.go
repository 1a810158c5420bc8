// Command flashbench puts a flash sale load on any server that implements
// the flash sale HTTP contract, reports latency and throughput, and audits
// the server's stock arithmetic at the end. It exits 1 when the audit finds
// a violation (or a server it started did not exit 0 on SIGTERM) and 2 when
// the run cannot be carried out.
//
//	flashbench --url http://127.0.0.1:8080 --workload hot --product 1 --duration 10s --conns 64
//	flashbench --start-server ./bin/flashsale --workload grants --duration 60s --verbose
//	flashbench --url http://127.0.0.1:8080 --suite --rounds 3 --admin-token T
//	flashbench --start-server ./bin/flashsale --suite --rounds 3
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/bench"
	"github.com/flashsale/flashsale/transport"
)

func main() {
	bench.RunCeilingChildIfAsked()
	os.Exit(run(os.Args[1:]))
}

// run parses args, runs the benchmark and returns the exit code.
func run(args []string) int {
	fs := flag.NewFlagSet("flashbench", flag.ContinueOnError)
	var cfg bench.Config
	var ratio string
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "server base URL")
	fs.StringVar(&cfg.Workload, "workload", "browse", "one of "+strings.Join(bench.WorkloadNames(), ", "))
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long the load runs")
	fs.IntVar(&cfg.Conns, "conns", 64, "concurrent clients and connections")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of every random choice")
	fs.Float64Var(&cfg.RatePerSec, "rate", 0, "open loop: operations per second (0 = closed loop)")
	fs.Int64Var(&cfg.ProductID, "product", 0, "hot/grants/checkout: product id (0: create one with --admin-token; checkout: else all products)")
	fs.Int64Var(&cfg.HotStock, "stock", 1000, "hot: stock of the product it creates")
	fs.StringVar(&cfg.AdminToken, "admin-token", os.Getenv("FLASHSALE_ADMIN_TOKEN"), "admin bearer token (default $FLASHSALE_ADMIN_TOKEN)")
	fs.StringVar(&cfg.WebhookSecret, "webhook-secret", os.Getenv("FLASHSALE_WEBHOOK_SECRET"), "sign webhooks with this secret (default $FLASHSALE_WEBHOOK_SECRET)")
	success := fs.Float64("success", 0.8, "checkout: share of payments that succeed, 0 to 1")
	fs.StringVar(&ratio, "ratio", "9:1", "mixed: browse:checkout operations")
	fs.BoolVar(&cfg.WithCeiling, "with-ceiling", true, "after the workload, run ceiling with the same connections (for at most 10 s) and report the throughput as a share of it")
	fs.StringVar(&cfg.JSONPath, "json", "", "write every figure as JSON to this file (with the per-second timeline of the load)")
	fs.BoolVar(&cfg.KeyedHolds, "keyed", false, "hot/grants: send every hold with a fresh Idempotency-Key, as a shop that may retry does")
	fs.StringVar(&cfg.HTMLPath, "html", "", "write the run as one self-contained HTML page: throughput and latency per second, latency by percentile per endpoint, the audit's verdict (not with --suite)")
	fs.BoolVar(&cfg.Verbose, "verbose", false, "print a line per second of the load: req/s, p50, p99, max, failures")
	suite := fs.Bool("suite", false, "run ceiling, browse, hot and grants (both need --admin-token) and checkout --rounds times, interleaved, and print a table of medians")
	rounds := fs.Int("rounds", 3, "suite: rounds")
	serverBin := fs.String("start-server", "", "start this flashsale binary on a free port with a fresh data directory and its own admin token, load it instead of --url, stop it after")
	serverArgs := fs.String("server-args", "", "with --start-server: extra server flags, space-separated, e.g. \"--fsync=never --hold-ttl=300ms\"")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "flashbench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *success < 0 || *success > 1 {
		fmt.Fprintf(os.Stderr, "flashbench: --success %v: want a share from 0 to 1\n", *success)
		return 2
	}
	cfg.SuccessShare = *success
	if *success == 0 {
		cfg.SuccessShare = -1 // bench.Config's "none"; 0 there means the default
	}
	var err error
	if cfg.BrowseWeight, cfg.CheckoutWeight, err = bench.ParseRatio(ratio); err != nil {
		fmt.Fprintln(os.Stderr, "flashbench:", err)
		return 2
	}
	cfg.Progress = bench.IsTerminal(os.Stdout)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *serverBin == "" {
		return runBench(ctx, cfg, *suite, *rounds)
	}
	serverFlags := strings.Fields(*serverArgs)
	if cfg.WebhookSecret != "" {
		serverFlags = append(serverFlags, "--webhook-secret", cfg.WebhookSecret)
	}
	// Every connection of this client comes from one address: a server
	// it starts admits them all (its per-address default, 4,096, is for
	// the public), unless --server-args says otherwise.
	if !strings.Contains(*serverArgs, "connections-per-ip-max") && cfg.Conns+ceilingConnsSpare > transport.DefaultConnectionsPerIPMax {
		serverFlags = append(serverFlags, "--connections-per-ip-max", strconv.Itoa(cfg.Conns+ceilingConnsSpare))
	}
	srv, err := bench.StartServer(*serverBin, serverFlags...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flashbench:", err)
		return 2
	}
	cfg.URL, cfg.AdminToken = srv.URL, srv.AdminToken
	code := runBench(ctx, cfg, *suite, *rounds)
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "flashbench: %v\n%s", err, srv.Log())
		code = max(code, 1)
	}
	return code
}

// ceilingConnsSpare leaves room for the few connections the setup and the
// audit open beside the load's.
const ceilingConnsSpare = 64

// runBench runs one workload, or the suite, and returns the exit code.
func runBench(ctx context.Context, cfg bench.Config, suite bool, rounds int) int {
	if suite {
		return runSuite(ctx, cfg, rounds)
	}
	res, err := bench.Run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flashbench:", err)
		return 2
	}
	if !res.Audit.OK {
		return 1
	}
	return 0
}

// runSuite runs the benchmark suite and returns the exit code.
func runSuite(ctx context.Context, cfg bench.Config, rounds int) int {
	res, err := bench.RunSuite(ctx, cfg, rounds, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flashbench:", err)
		return 2
	}
	if cfg.JSONPath != "" {
		if err := bench.WriteJSON(cfg.JSONPath, res); err != nil {
			fmt.Fprintln(os.Stderr, "flashbench: --json:", err)
			return 2
		}
	}
	if !res.OK() {
		return 1
	}
	return 0
}
