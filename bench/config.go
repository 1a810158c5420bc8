package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is one flashbench run. Zero values of optional fields take the
// defaults documented on each field.
type Config struct {
	URL        string        // server base URL, e.g. http://127.0.0.1:8080 (unused by ceiling)
	Workload   string        // hot, grants, checkout, browse, mixed or ceiling
	Duration   time.Duration // how long the load runs
	Conns      int           // concurrent clients (closed loop) and connection pool size
	Seed       int64         // makes every random choice reproducible
	RatePerSec float64       // > 0: open loop with this many ops per second

	ProductID  int64  // hot: the product to sell out, grants: one that never sells out; 0 = create one (needs AdminToken)
	HotStock   int64  // hot: total stock of a product it creates (default 1000)
	AdminToken string // enables product creation through the admin API

	WebhookSecret string  // signs webhooks when set
	SuccessShare  float64 // checkout: share of payments that succeed; 0 = default 0.8, < 0 = none

	BrowseWeight   int // mixed: browse ops per CheckoutWeight checkout ops
	CheckoutWeight int

	WithCeiling bool   // also run ceiling afterwards (at most 10 s) and report the ratio
	CeilingExe  string // binary that serves the ceiling (default os.Args[0])

	JSONPath string // write the full result as JSON here when set
	HTMLPath string // write the run as one self-contained HTML page here when set

	// KeyedHolds sends every hold of hot and grants with a fresh
	// Idempotency-Key (what a retrying shop sends).
	KeyedHolds bool
	Progress   bool // print a live progress line once a second
	Verbose    bool // print a line per second of the load (its timeline entry); overrides Progress

	timelineInterval time.Duration // width of a timeline entry; default timelineInterval (tests shorten it)
}

// Defaults for optional fields.
const (
	defaultHotStock     = 1000
	defaultSuccessShare = 0.8
	defaultConns        = 64
	defaultDuration     = 10 * time.Second
)

// withDefaults returns cfg with zero optional fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Duration <= 0 {
		cfg.Duration = defaultDuration
	}
	if cfg.Conns <= 0 {
		cfg.Conns = defaultConns
	}
	if cfg.timelineInterval <= 0 {
		cfg.timelineInterval = timelineInterval
	}
	if cfg.HotStock <= 0 {
		cfg.HotStock = defaultHotStock
	}
	if cfg.SuccessShare == 0 {
		cfg.SuccessShare = defaultSuccessShare
	}
	if cfg.BrowseWeight == 0 && cfg.CheckoutWeight == 0 {
		cfg.BrowseWeight, cfg.CheckoutWeight = 9, 1
	}
	return cfg
}

// validate reports the first problem with cfg, which must have defaults set.
func (cfg Config) validate() error {
	if _, ok := workloadFactories[cfg.Workload]; !ok {
		return fmt.Errorf("--workload %q: want one of %v", cfg.Workload, WorkloadNames())
	}
	if cfg.Workload != "ceiling" {
		if _, err := parseBaseURL(cfg.URL); err != nil {
			return err
		}
	}
	if cfg.Conns > 100_000 {
		return fmt.Errorf("--conns %d: at most 100000", cfg.Conns)
	}
	if cfg.RatePerSec < 0 {
		return fmt.Errorf("--rate %v: must be >= 0", cfg.RatePerSec)
	}
	if cfg.SuccessShare > 1 {
		return fmt.Errorf("success share %v: must be at most 1", cfg.SuccessShare)
	}
	if cfg.BrowseWeight < 0 || cfg.CheckoutWeight < 0 || cfg.BrowseWeight+cfg.CheckoutWeight == 0 {
		return fmt.Errorf("--ratio %d:%d: weights must be >= 0 and not both 0", cfg.BrowseWeight, cfg.CheckoutWeight)
	}
	if (cfg.Workload == "hot" || cfg.Workload == "grants") && cfg.ProductID <= 0 && cfg.AdminToken == "" {
		return fmt.Errorf("%s needs --product ID, or --admin-token to create a product", cfg.Workload)
	}
	return nil
}

// ParseRatio reads a --ratio value "B:C" (B browse ops per C checkout ops) or
// "B" (B browse ops per checkout op).
func ParseRatio(s string) (browseWeight, checkoutWeight int, err error) {
	b, c, found := strings.Cut(s, ":")
	if !found {
		c = "1"
	}
	browseWeight, err1 := strconv.Atoi(strings.TrimSpace(b))
	checkoutWeight, err2 := strconv.Atoi(strings.TrimSpace(c))
	if err1 != nil || err2 != nil || browseWeight < 0 || checkoutWeight < 0 || browseWeight+checkoutWeight == 0 {
		return 0, 0, fmt.Errorf("--ratio %q: want BROWSE:CHECKOUT, e.g. 9:1", s)
	}
	return browseWeight, checkoutWeight, nil
}
