package cluster

import (
	"testing"

	"github.com/flashsale/flashsale/bench/apicheck"
	"github.com/flashsale/flashsale/bench/testkit"
)

// contract holds every exchange of the tests' client to docs/openapi.yaml;
// the run fails after the tests if any broke it.
var contract apicheck.Tally

func TestMain(m *testing.M) { testkit.Main(m, &contract) }
