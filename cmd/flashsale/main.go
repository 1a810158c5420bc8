// Command flashsale is the flash sale checkout server: the engine behind its
// HTTP API, made durable by the write-ahead log in --data-dir.
//
// Startup: open the log (repairing a torn tail, refusing mid-log damage) →
// replay it into a fresh engine → start the log's committer and the engine's
// actors → seed an empty data directory → listen. /healthz answers only
// once the listener is up, so only after replay. SIGINT or SIGTERM: stop
// accepting, finish the requests in flight, stop the engine, flush and close
// the log, exit 0.
//
// Exit codes: 0 after a clean shutdown (or --help), 1 when the server could
// not start or failed, 2 for a bad flag or environment variable, 3 when the
// write-ahead log is damaged in the middle (see --wal-truncate-corrupt).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wal"
	"github.com/rs/zerolog"
)

// shutdownTimeout bounds how long in-flight requests may take to finish
// after a signal; the engine answers whatever is left with shutting_down.
const shutdownTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one kills at once (the default
		// action): safe, since the log loses nothing acknowledged.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole server; it returns the exit code. It serves until ctx
// is done (a signal) or the listener fails.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "flashsale: %v\n", err)
		return 2
	}
	log := newLogger(cfg, stderr)

	specs := demoCatalog
	if cfg.seedFile != "" {
		if specs, err = loadSeed(cfg.seedFile); err != nil {
			log.Error().Err(err).Msg("cannot load the seed catalog")
			return 1
		}
	}
	if cfg.fsync == "never" {
		log.Warn().Msg("--fsync=never: answers are sent before the log is on disk; " +
			"a machine crash or power loss can lose acknowledged holds, orders and payments")
	}

	if cfg.webhookSecret == "" {
		log.Warn().Msg("no --webhook-secret: payment webhooks are accepted unsigned; " +
			"anyone who can reach the server can post payment results")
	}
	if cfg.debugAddr != "" {
		serveDebug(cfg.debugAddr, log)
	}
	if cfg.clusterFile != "" {
		return runCluster(ctx, cfg, log, specs, stderr)
	}

	walDir := filepath.Join(cfg.dataDir, "wal")
	wlog, err := wal.Open(walDir, wal.Options{NoSync: cfg.fsync == "never", TruncateCorrupt: cfg.walTruncateCorrupt,
		CommitHook: faultCommitHook(cfg.faultFailWriteAt, cfg.faultStallWriteAt)})
	if err != nil {
		var corrupt *wal.CorruptError
		if errors.As(err, &corrupt) {
			log.Error().Str("dir", corrupt.Dir).Str("segment", corrupt.Segment).Uint64("index", corrupt.Index).
				Int64("offset", corrupt.Offset).Str("reason", corrupt.Reason).
				Msg("the write-ahead log is damaged in the middle; refusing to start")
			fmt.Fprintf(stderr, "flashsale: %v\n", err)
			return 3
		}
		log.Error().Err(err).Str("dir", walDir).Msg("cannot open the write-ahead log")
		return 1
	}
	reportRecovery(log, wlog.Recovery())

	ecfg := engineConfig(cfg, log)
	ecfg.Journal = wlog
	ecfg.RefuseFromDurableCounts = true // this disk is the only copy: its state is the newest
	eng := engine.New(ecfg)

	snaps := &snapshotter{eng: eng, wlog: wlog, dir: wal.SnapshotDir(cfg.dataDir), snapshotEvery: cfg.snapshotEvery, log: log}
	replayStart := time.Now()
	replayed, err := snaps.load()
	if err != nil {
		log.Error().Err(err).Str("dir", walDir).Msg("cannot rebuild the state from the snapshot and the write-ahead log")
		_ = wlog.Close()
		return 1
	}
	replay := time.Since(replayStart)
	log.Info().Int("records", replayed).Dur("replay", replay).Msg("log replayed")

	wlog.Start()
	eng.Start()
	snapCtx, stopSnapshots := context.WithCancel(context.Background())
	snapDone := make(chan struct{})
	go func() { defer close(snapDone); snaps.run(snapCtx, snapshotCheckInterval) }()
	shutdownCore := func() int {
		stopSnapshots()
		<-snapDone
		if cfg.snapshotEvery > 0 && wlog.LastIndex() > snaps.lastIndex {
			// A clean stop leaves a snapshot, so the next start is quick.
			if err := snaps.take(); err != nil {
				log.Error().Err(err).Msg("final snapshot failed; the next start replays the log")
			}
		}
		eng.Stop()
		if err := wlog.Close(); err != nil {
			log.Error().Err(err).Msg("closing the write-ahead log failed")
			return 1
		}
		return 0
	}

	seeded, err := eng.Seed(specs)
	switch {
	case err != nil:
		log.Error().Err(err).Msg("cannot seed the catalog")
		shutdownCore()
		return 1
	case seeded:
		log.Info().Int("products", len(specs)).Bool("demo", cfg.seedFile == "").Msg("catalog seeded")
	case cfg.seedFile != "":
		log.Info().Str("seed", cfg.seedFile).Msg("data directory is not empty: seed file ignored")
	}

	srv := transport.New(eng, transport.Options{
		Logger:         log,
		WebhookSecret:  []byte(cfg.webhookSecret),
		AdminToken:     cfg.adminToken,
		ReplayDuration: replay,
		Connections:    connLimits(cfg, log, nil),
	})
	registerWALMetrics(srv, wlog)
	snaps.registerMetrics(srv)
	return serve(ctx, srv, wlog, cfg.commitStallTimeout, cfg.addr, log, shutdownCore, func(e *zerolog.Event) *zerolog.Event {
		return e.Str("data_dir", cfg.dataDir).Str("fsync", cfg.fsync).
			Bool("admin", cfg.adminToken != "").Bool("webhook_signatures", cfg.webhookSecret != "").
			Dur("hold_ttl", cfg.holdTTL).Dur("order_ttl", cfg.orderTTL)
	})
}

// serve listens on addr and serves srv until ctx is done (a signal) or the
// listener fails; then /healthz turns 503, the requests in flight get
// shutdownTimeout to finish, and stopCore stops what is behind the front
// end. It returns the exit code. Meanwhile watchLog stops the process if
// the log fails or stalls. listening adds fields to the log line that says
// the server is up.
func serve(ctx context.Context, srv *transport.Server, dlog durableLog, stall time.Duration, addr string, log zerolog.Logger,
	stopCore func() int, listening func(*zerolog.Event) *zerolog.Event) int {
	stopWatch := make(chan struct{})
	defer close(stopWatch)
	go watchLog(dlog, stall, srv, log, stopWatch)
	hs := srv.HTTPServer()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error().Err(err).Str("addr", addr).Msg("cannot listen")
		stopCore()
		return 1
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(srv.Listener(ln)) }()
	stopDashboard := srv.RecordDashboard() // the history of GET /dashboard's charts
	listening(log.Info().Str("addr", ln.Addr().String())).Msg("listening")

	code := 0
	select {
	case <-ctx.Done():
		log.Info().Msg("signal received: shutting down")
	case err := <-serveErr:
		log.Error().Err(err).Msg("the listener failed")
		code = 1
	}
	srv.Drain()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	if err := hs.ShutdownWithContext(sctx); err != nil {
		log.Warn().Err(err).Msg("requests still in flight after the shutdown timeout")
	}
	srv.CloseForwarding()
	cancel()
	stopDashboard()
	if c := stopCore(); c != 0 {
		code = c
	}
	log.Info().Int("exit_code", code).Msg("stopped")
	return code
}

// serveDebug serves net/http/pprof on addr, for profiling a server under
// load; a listener that fails is logged, not fatal.
func serveDebug(addr string, log zerolog.Logger) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	go func() {
		log.Warn().Err(http.ListenAndServe(addr, mux)).Str("addr", addr).Msg("the profiler's listener stopped")
	}()
}

// engineConfig is the engine's configuration from the flags, without its
// journal.
func engineConfig(cfg config, log zerolog.Logger) engine.Config {
	ecfg := engine.DefaultConfig()
	ecfg.HoldTTL = cfg.holdTTL
	ecfg.OrderTTL = cfg.orderTTL
	ecfg.QueuedWebhookTTL = cfg.queuedWebhookTTL
	ecfg.OnRefundNeeded = transport.RefundLogger(log)
	ecfg.IdempotencyKeyBytesMax = cfg.idempotencyKeyBytesMax
	ecfg.OnKeyBudgetWarning = func(usedBytes, maxBytes int64) {
		log.Warn().Int64("used_bytes", usedBytes).Int64("max_bytes", maxBytes).
			Msg("idempotency keys use 80 % of --idempotency-key-bytes-max; at 100 % requests under new keys get 503")
	}
	return ecfg
}

// reportRecovery logs what opening the log repaired.
func reportRecovery(log zerolog.Logger, r wal.Recovery) {
	if r.TornBytes > 0 {
		log.Warn().Int64("bytes", r.TornBytes).Msg("cut a torn write from the end of the log (never acknowledged under --fsync=always)")
	}
	if r.Corrupt != nil {
		log.Error().Str("segment", r.Corrupt.Segment).Uint64("index", r.Corrupt.Index).
			Uint64("dropped_records", r.DroppedRecords).Int64("dropped_bytes", r.DroppedBytes).
			Msg("--wal-truncate-corrupt: cut the log at mid-log damage; the dropped records are lost")
	}
}

// isTerminal reports whether w is a character device, where colours help.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newLogger builds the zerolog logger of --log-level and --log-format.
func newLogger(cfg config, w io.Writer) zerolog.Logger {
	level, _ := zerolog.ParseLevel(cfg.logLevel) // checked by parseConfig
	zerolog.TimeFieldFormat = time.RFC3339Nano
	out := w
	if cfg.logFormat == "console" {
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000", NoColor: !isTerminal(w)}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger()
}
