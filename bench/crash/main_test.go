package crash

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/flashsale/flashsale/bench/apicheck"
	"github.com/flashsale/flashsale/bench/testkit"
)

// contract holds every exchange of the tests' client to docs/openapi.yaml;
// the run fails after the tests if any broke it.
var contract apicheck.Tally

func TestMain(m *testing.M) { testkit.Main(m, &contract) }

// seedEnv names the environment variable that fixes the tests' random seed,
// to repeat a failing run.
const seedEnv = "FLASHSALE_CRASH_SEED"

// rngSeed is the random seed of a test: $FLASHSALE_CRASH_SEED if set, else
// the clock. It is logged so a failure can be repeated.
func rngSeed(t *testing.T) int64 { return testkit.Seed(t, seedEnv) }

// catalog is the seeded products: small stocks that the load fights over,
// and a large last one that keeps holds, orders and payments flowing once
// the small ones are gone.
var catalog = []seedProduct{
	{ID: 1, Name: "Last Unit", PriceCents: 9900, TotalStock: 3, MaxPerHold: 1},
	{ID: 2, Name: "Sneaker", PriceCents: 19999, TotalStock: 12, MaxPerHold: 2},
	{ID: 3, Name: "Widget", PriceCents: 4999, TotalStock: 40, MaxPerHold: 3},
	{ID: 4, Name: "Gift Card", PriceCents: 2500, TotalStock: 1_000_000, MaxPerHold: 5},
}

// serverFlags starts every server of these tests: the catalog (loaded into
// an empty data directory only), holds that outlive a test, and no payment
// timeout, so a pending order changes only through a webhook the test sent.
func serverFlags(t *testing.T) []string {
	path := filepath.Join(t.TempDir(), "seed.json")
	b, err := json.Marshal(catalog)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--seed", path, "--hold-ttl", "1m", "--order-ttl", "0", "--fsync", "always"}
}
