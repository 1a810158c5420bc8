package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
	"github.com/rs/zerolog"
)

// config is the server's configuration: docs/API.md's flag table plus the log's
// escape hatch. Every flag can also come from FLASHSALE_<NAME> (upper case,
// dashes as underscores); a flag on the command line wins over its variable.
type config struct {
	addr               string
	dataDir            string
	seedFile           string
	holdTTL            time.Duration
	orderTTL           time.Duration
	queuedWebhookTTL   time.Duration
	fsync              string
	webhookSecret      string
	adminToken         string
	webhookSecretFile  string // read into webhookSecret by readSecretFiles
	adminTokenFile     string // read into adminToken by readSecretFiles
	logLevel           string
	logFormat          string
	walTruncateCorrupt bool
	snapshotEvery      uint64 // records logged between snapshots; 0 turns snapshots off
	addrGiven          bool   // --addr (or its variable) was set
	debugAddr          string // net/http/pprof listener; empty: none
	commitStallTimeout time.Duration
	faultFailWriteAt   uint64 // tests only: the Nth batch write of the log fails
	faultStallWriteAt  uint64 // tests only: the Nth batch write of the log never returns

	// Cluster mode (all empty: a single node).
	clusterFile         string
	nodeID              uint64
	raftListen          string
	raftPeerAddrs       string
	raftSnapshotEntries uint64
	faultAckUncommitted bool // tests of the tests only: see raftlog.Config

	idempotencyKeyBytesMax int64 // memory of remembered idempotency answers; beyond: 503 overloaded for new keys

	// Connection limits (transport.ConnLimits): beyond them, 503 overloaded.
	connectionsMax      int  // open at once, in total
	connectionsPerIPMax int  // open at once from one client address
	connectionsMaxGiven bool // --connections-max (or its variable) was set
}

const envPrefix = "FLASHSALE_"

// envName is the environment variable of a flag: --hold-ttl is FLASHSALE_HOLD_TTL.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads args, then the environment (through getenv) for every
// flag not given, then checks the values.
func parseConfig(args []string, getenv func(string) string, usage io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("flashsale", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory of the write-ahead log")
	fs.StringVar(&c.seedFile, "seed", "", "JSON catalog [{id,name,price_cents,total_stock,max_per_hold}] loaded into an empty data directory (default: built-in demo catalog)")
	fs.DurationVar(&c.holdTTL, "hold-ttl", 2*time.Minute, "hold lifetime")
	fs.DurationVar(&c.orderTTL, "order-ttl", 15*time.Minute, "payment window of a pending order; 0 turns it off")
	fs.DurationVar(&c.queuedWebhookTTL, "queued-webhook-ttl", time.Hour, "how long a webhook for a not-yet-created order waits")
	fs.StringVar(&c.fsync, "fsync", "always", "always: every 2xx is fsynced; never: faster, loses recent acknowledged work on a machine crash")
	fs.StringVar(&c.webhookSecret, "webhook-secret", "", "turns on X-Signature checks on the payment webhook")
	fs.StringVar(&c.adminToken, "admin-token", "", "turns on the admin endpoints (Authorization: Bearer <token>)")
	fs.StringVar(&c.webhookSecretFile, "webhook-secret-file", "", "read --webhook-secret from this file (one trailing newline is dropped); unlike a flag, ps does not show it")
	fs.StringVar(&c.adminTokenFile, "admin-token-file", "", "read --admin-token from this file (one trailing newline is dropped); unlike a flag, ps does not show it")
	fs.StringVar(&c.logLevel, "log-level", "info", "zerolog level: trace, debug, info, warn, error, fatal, panic, disabled")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or console")
	fs.BoolVar(&c.walTruncateCorrupt, "wal-truncate-corrupt", false, "on mid-log corruption, cut the log at the damage (dropping everything after it) instead of refusing to start")
	fs.Uint64Var(&c.snapshotEvery, "snapshot-every", 1_000_000, "write a snapshot (and drop the log before the previous one) every N logged records; 0 turns snapshots off")
	fs.DurationVar(&c.commitStallTimeout, "commit-stall-timeout", 10*time.Second, "a log write (and fsync) not finished after this long stops the server (a hung disk): /healthz 503, exit code 4")
	fs.Uint64Var(&c.faultFailWriteAt, "fault-fail-write-at", 0, "FOR TESTS ONLY: the Nth batch write of the log fails, as a broken disk would")
	fs.Uint64Var(&c.faultStallWriteAt, "fault-stall-write-at", 0, "FOR TESTS ONLY: the Nth batch write of the log never returns, as a hung disk would")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; keep it off public interfaces")
	fs.StringVar(&c.clusterFile, "cluster", "", "cluster file (JSON {partitions, nodes:[{id,http,raft}]}): run as one node of that cluster")
	fs.Uint64Var(&c.nodeID, "node-id", 0, "with --cluster: this node's id in the cluster file")
	fs.StringVar(&c.raftListen, "raft-listen", "", "with --cluster: where to listen for Raft peers (default: this node's raft address in the cluster file)")
	fs.StringVar(&c.raftPeerAddrs, "raft-peer-addrs", "", "with --cluster: ID=HOST:PORT,... dial these addresses for the given peers instead of the cluster file's (NAT, proxies)")
	fs.Uint64Var(&c.raftSnapshotEntries, "raft-snapshot-entries", 10_000, "with --cluster: a partition snapshots (and the node compacts its Raft log) every N applied entries")
	fs.BoolVar(&c.faultAckUncommitted, "fault-ack-uncommitted", false, "with --cluster, FOR TESTS ONLY: leaders answer without replicating anything (loses acknowledged work), so that tests can prove their checkers catch it")
	fs.Int64Var(&c.idempotencyKeyBytesMax, "idempotency-key-bytes-max", engine.DefaultIdempotencyKeyBytesMax, "memory (bytes) for remembered idempotency keys, holds and webhooks together (about 50 bytes plus the key each); when used up, requests under new keys get 503 overloaded and known keys still replay")
	fs.IntVar(&c.connectionsMax, "connections-max", transport.DefaultConnectionsMax, "connections open at once (lowered to what the file limit allows); beyond: 503 overloaded")
	fs.IntVar(&c.connectionsPerIPMax, "connections-per-ip-max", transport.DefaultConnectionsPerIPMax, "connections open at once from one client address (IPv6: one /64; cluster peers exempt); beyond: 503 overloaded")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: flashsale [flags]\n\nEvery flag is also read from FLASHSALE_<NAME>, e.g. FLASHSALE_HOLD_TTL.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || envErr != nil {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", envName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	c.addrGiven = given["addr"] || getenv(envName("addr")) != ""
	if err := c.readSecretFiles(); err != nil {
		return c, err
	}
	c.connectionsMaxGiven = given["connections-max"] || getenv(envName("connections-max")) != ""
	return c, c.check()
}

// readSecretFiles fills the secrets given as files (--webhook-secret-file,
// --admin-token-file): the file's content without its trailing newline.
// An empty file, an unreadable one, or a secret given both ways (flag or
// variable, and file) is an error that names the flag, never the secret.
func (c *config) readSecretFiles() error {
	var errs []error
	for _, s := range []struct {
		name  string
		file  string
		value *string
	}{{"webhook-secret", c.webhookSecretFile, &c.webhookSecret}, {"admin-token", c.adminTokenFile, &c.adminToken}} {
		if s.file == "" {
			continue
		}
		if *s.value != "" {
			errs = append(errs, fmt.Errorf("--%s (or %s) and --%s-file are both given; give one", s.name, envName(s.name), s.name))
			continue
		}
		b, err := os.ReadFile(s.file)
		if err != nil {
			errs = append(errs, fmt.Errorf("--%s-file: %v", s.name, err))
			continue
		}
		secret := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if secret == "" {
			errs = append(errs, fmt.Errorf("--%s-file %s is empty", s.name, s.file))
			continue
		}
		*s.value = secret
	}
	return errors.Join(errs...)
}

func (c *config) check() error {
	var errs []error
	if c.holdTTL <= 0 {
		errs = append(errs, errors.New("--hold-ttl must be positive"))
	}
	if c.orderTTL < 0 {
		errs = append(errs, errors.New("--order-ttl must be 0 (off) or positive"))
	}
	if c.queuedWebhookTTL <= 0 {
		errs = append(errs, errors.New("--queued-webhook-ttl must be positive"))
	}
	if c.fsync != "always" && c.fsync != "never" {
		errs = append(errs, fmt.Errorf("--fsync must be always or never, not %q", c.fsync))
	}
	if c.logFormat != "json" && c.logFormat != "console" {
		errs = append(errs, fmt.Errorf("--log-format must be json or console, not %q", c.logFormat))
	}
	if _, err := zerolog.ParseLevel(c.logLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %v", err))
	}
	if c.dataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if c.clusterFile == "" && (c.nodeID != 0 || c.raftListen != "" || c.raftPeerAddrs != "") {
		errs = append(errs, errors.New("--node-id, --raft-listen and --raft-peer-addrs need --cluster"))
	}
	if c.clusterFile != "" && c.nodeID == 0 {
		errs = append(errs, errors.New("--cluster needs --node-id"))
	}
	if c.commitStallTimeout <= 0 {
		errs = append(errs, errors.New("--commit-stall-timeout must be positive"))
	}
	for _, d := range []struct {
		flag string
		ttl  time.Duration
	}{{"--hold-ttl", c.holdTTL}, {"--order-ttl", c.orderTTL}, {"--queued-webhook-ttl", c.queuedWebhookTTL}} {
		if d.ttl > engine.TTLMax {
			errs = append(errs, fmt.Errorf("%s must be at most %v (30 days), not %v", d.flag, engine.TTLMax, d.ttl))
		}
	}
	if c.idempotencyKeyBytesMax <= 0 || c.idempotencyKeyBytesMax > engine.IdempotencyKeyBytesLimit {
		errs = append(errs, fmt.Errorf("--idempotency-key-bytes-max must be between 1 and %d, not %d", int64(engine.IdempotencyKeyBytesLimit), c.idempotencyKeyBytesMax))
	}
	for _, n := range []struct {
		flag string
		v    int
	}{{"--connections-max", c.connectionsMax}, {"--connections-per-ip-max", c.connectionsPerIPMax}} {
		if n.v < 1 || n.v > connectionsMaxLimit {
			errs = append(errs, fmt.Errorf("%s must be between 1 and %d, not %d", n.flag, connectionsMaxLimit, n.v))
		}
	}
	if c.raftSnapshotEntries == 0 {
		errs = append(errs, errors.New("--raft-snapshot-entries must be positive"))
	}
	return errors.Join(errs...)
}
