package linearize

import (
	"os"
	"testing"
	"time"
)

// TestRecheckSavedHistory checks again a history a failed run saved (see
// DumpEnv): LINEARIZE_RECHECK=path go test -run RecheckSaved ./bench/linearize
// ($LINEARIZE_RECHECK_TIMEOUT bounds the search, 10m by default).
func TestRecheckSavedHistory(t *testing.T) {
	path := os.Getenv("LINEARIZE_RECHECK")
	if path == "" {
		t.Skip("set LINEARIZE_RECHECK to a history saved by a failed check")
	}
	catalog, history, err := LoadHistory(path)
	if err != nil {
		t.Fatal(err)
	}
	timeout := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("LINEARIZE_RECHECK_TIMEOUT")); err == nil {
		timeout = d
	}
	res := Check(catalog, history, Options{Timeout: timeout, DumpPath: os.DevNull, ExplainBudget: time.Second})
	t.Logf("%s\n%s", res, Summary(history))
	if !res.OK() {
		t.Errorf("%s", res.Report)
	}
}

func TestSaveAndLoadHistory(t *testing.T) {
	h := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, "k"), held("a", 1, 2)).
		add(1, 0, Never, Input{Kind: KindOrder, Token: "a", HintOrderID: 3}, Unanswered)
	path := t.TempDir() + "/h.json"
	if err := SaveHistory(path, testCatalog, h.ops); err != nil {
		t.Fatal(err)
	}
	catalog, back, err := LoadHistory(path)
	if err != nil || len(catalog) != len(testCatalog) || len(back) != 2 || back[1].Input.(Input) != h.ops[1].Input.(Input) ||
		back[1].Output.(Output) != Unanswered || back[1].Return != Never {
		t.Fatalf("round trip: %v %+v %v", catalog, back, err)
	}
}
