package linearize

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

var testCatalog = []Product{
	{ID: 1, Name: "one", PriceCents: 100, TotalStock: 3, MaxPerHold: 2},
	{ID: 2, Name: "two", PriceCents: 250, TotalStock: 5, MaxPerHold: 5},
}

// hist builds a history from (call, return, input, output) rows; a return
// of Never is an unanswered request.
type hist struct{ ops []porcupine.Operation }

func (h *hist) add(client int, call, ret int64, in Input, out Output) *hist {
	in.Seq = len(h.ops) + 1
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out})
	return h
}

func holdIn(p uint64, qty int64, key string) Input {
	return Input{Kind: KindHold, ProductID: p, Qty: qty, Key: key}
}
func held(tok string, p uint64, qty int64) Output {
	return Output{HTTP: 201, Token: tok, ProductID: p, Qty: qty}
}
func productOut(p uint64, total, avail, res, sold int64) Output {
	return Output{HTTP: 200, ProductID: p, Total: total, Available: avail, Reserved: res, Sold: sold}
}
func orderedOut(status int, id uint64, tok string, p uint64, qty, amount int64, state string) Output {
	return Output{HTTP: status, OrderID: id, Token: tok, ProductID: p, Qty: qty, Amount: amount, State: state}
}
func hook(id uint64, key string, success bool) Input {
	return Input{Kind: KindWebhook, OrderID: id, Key: key, Success: success}
}
func rejected(avail int64) Output {
	o := errorOut(409, "insufficient_stock")
	o.Available = avail
	return o
}

func wantVerdict(t *testing.T, h *hist, want porcupine.CheckResult) Result {
	t.Helper()
	res := Check(testCatalog, h.ops, Options{})
	if res.Verdict != want {
		t.Fatalf("verdict %s, want %s\n%s", res.Verdict, want, res.Report)
	}
	return res
}

func TestModelSequentialCheckout(t *testing.T) {
	h := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
		add(0, 2, 3, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 1, 2, 0)).
		add(0, 4, 5, Input{Kind: KindOrder, Token: "a"}, orderedOut(201, 7, "a", 1, 2, 200, "pending")).
		add(0, 6, 7, hook(7, "k1", true), Output{HTTP: 200, OrderID: 7, State: "paid", Applied: true}).
		add(0, 8, 9, hook(7, "k1", true), Output{HTTP: 200, OrderID: 7, State: "paid", Applied: true, Replayed: true}).
		add(0, 10, 11, hook(7, "k1", false), errorOut(422, "idempotency_key_reused")).
		add(0, 12, 13, Input{Kind: KindOrder, Token: "a"}, orderedOut(200, 7, "a", 1, 2, 200, "paid")).
		add(0, 14, 15, Input{Kind: KindGetHold, Token: "a"}, Output{HTTP: 200, Token: "a", ProductID: 1, Qty: 2, State: "ordered", OrderID: 7}).
		add(0, 16, 17, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 1, 0, 2))
	wantVerdict(t, h, porcupine.Ok)
}

func TestModelRefusesOverselling(t *testing.T) {
	h := (&hist{}).
		add(0, 0, 10, holdIn(1, 2, ""), held("a", 1, 2)).
		add(1, 0, 10, holdIn(1, 2, ""), held("b", 1, 2))
	res := wantVerdict(t, h, porcupine.Illegal)
	if !strings.Contains(res.Report, "409 insufficient_stock available 1") {
		t.Errorf("the report does not say what the model expected:\n%s", res.Report)
	}
	t.Logf("report:\n%s", res.Report)
}

func TestModelConcurrentReadSeesEitherSide(t *testing.T) {
	for _, avail := range []int64{3, 1} {
		h := (&hist{}).
			add(0, 0, 10, holdIn(1, 2, ""), held("a", 1, 2)).
			add(1, 5, 6, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, avail, 3-avail, 0))
		wantVerdict(t, h, porcupine.Ok)
	}
	stale := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
		add(1, 5, 6, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 3, 0, 0))
	wantVerdict(t, stale, porcupine.Illegal)
}

func TestModelWebhookBeforeOrder(t *testing.T) {
	base := func() *hist {
		return (&hist{}).
			add(0, 0, 1, holdIn(2, 1, ""), held("a", 2, 1)).
			add(1, 2, 3, hook(4, "w", false), Output{HTTP: 202, OrderID: 4, State: "queued"}).
			add(1, 4, 5, hook(4, "w2", true), Output{HTTP: 202, OrderID: 4, State: "queued"})
	}
	ok := base().add(0, 6, 7, Input{Kind: KindOrder, Token: "a"}, orderedOut(201, 4, "a", 2, 1, 250, "cancelled")).
		add(1, 8, 9, hook(4, "w", false), Output{HTTP: 202, OrderID: 4, State: "queued", Replayed: true}).
		add(1, 10, 11, Input{Kind: KindGetProduct, ProductID: 2}, productOut(2, 5, 5, 0, 0))
	wantVerdict(t, ok, porcupine.Ok)
	// The second queued event must not win, nor may the order show pending.
	for _, state := range []string{"paid", "pending"} {
		bad := base().add(0, 6, 7, Input{Kind: KindOrder, Token: "a"}, orderedOut(201, 4, "a", 2, 1, 250, state))
		wantVerdict(t, bad, porcupine.Illegal)
	}
}

func TestModelReplayedRejectionStaysRejected(t *testing.T) {
	h := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
		add(0, 2, 3, holdIn(1, 2, "k"), rejected(1)).
		add(0, 4, 5, Input{Kind: KindOrder, Token: "a"}, orderedOut(201, 1, "a", 1, 2, 200, "pending")).
		add(0, 6, 7, hook(1, "w", false), Output{HTTP: 200, OrderID: 1, State: "cancelled", Applied: true})
	replay := *h
	replay.ops = append([]porcupine.Operation(nil), h.ops...)
	replay.add(0, 8, 9, holdIn(1, 2, "k"), Output{HTTP: 409, Error: "insufficient_stock", Available: 1, Replayed: true})
	wantVerdict(t, &replay, porcupine.Ok)
	h.add(0, 8, 9, holdIn(1, 2, "k"), held("b", 1, 2))
	wantVerdict(t, h, porcupine.Illegal)
}

func TestModelUnansweredMayOrMayNotHappen(t *testing.T) {
	// An unanswered hold that happened: a replay of its key names it.
	happened := (&hist{}).
		add(0, 0, Never, holdIn(1, 2, "k"), Unanswered).
		add(1, 5, 6, holdIn(1, 2, "k"), Output{HTTP: 201, Token: "x", ProductID: 1, Qty: 2, Replayed: true}).
		add(1, 7, 8, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 1, 2, 0))
	wantVerdict(t, happened, porcupine.Ok)
	// One that did not: the key's first answer comes later, not replayed.
	lost := (&hist{}).
		add(0, 0, Never, holdIn(1, 2, "k"), Unanswered).
		add(1, 5, 6, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 3, 0, 0)).
		add(1, 7, 8, holdIn(1, 2, "k"), held("x", 1, 2))
	wantVerdict(t, lost, porcupine.Ok)
	// But answered requests still count: units reserved twice are not there.
	bad := (&hist{}).
		add(0, 0, Never, holdIn(1, 2, "k"), Unanswered).
		add(1, 5, 6, holdIn(1, 2, ""), held("y", 1, 2)).
		add(1, 7, 8, holdIn(1, 1, ""), held("z", 1, 1)).
		add(1, 9, 10, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 1, 2, 0))
	wantVerdict(t, bad, porcupine.Illegal)
}

func TestModelUnansweredOrderUsesHint(t *testing.T) {
	in := Input{Kind: KindOrder, Token: "a", HintOrderID: 9}
	h := (&hist{}).
		add(0, 0, 1, holdIn(1, 1, ""), held("a", 1, 1)).
		add(0, 2, Never, in, Unanswered).
		add(1, 5, 6, hook(9, "w", true), Output{HTTP: 200, OrderID: 9, State: "paid", Applied: true}).
		add(1, 7, 8, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 2, 0, 1))
	wantVerdict(t, h, porcupine.Ok)
}

func TestConsistencyCatchesOneIDTwoOrders(t *testing.T) {
	h := (&hist{}).
		add(0, 0, 1, holdIn(1, 1, ""), held("a", 1, 1)).
		add(0, 0, 1, holdIn(2, 1, ""), held("b", 2, 1)).
		add(0, 2, 3, Input{Kind: KindOrder, Token: "a"}, orderedOut(201, 1, "a", 1, 1, 100, "pending")).
		add(0, 4, 5, Input{Kind: KindOrder, Token: "b"}, orderedOut(201, 1, "b", 2, 1, 250, "pending"))
	res := Check(testCatalog, h.ops, Options{})
	if res.OK() || len(res.Conflicts) == 0 {
		t.Fatalf("one id for two orders passed: %v", res)
	}
}

func TestModelExpiry(t *testing.T) {
	expire := Input{Kind: KindExpireHold, Token: "a"}
	// Within its window the hold may still count or not; after it, not.
	for _, avail := range []int64{1, 3} {
		h := (&hist{}).
			add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
			add(9, 10, 20, expire, Output{}).
			add(1, 15, 16, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, avail, 3-avail, 0))
		wantVerdict(t, h, porcupine.Ok)
	}
	late := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
		add(9, 10, 20, expire, Output{}).
		add(1, 21, 22, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 1, 2, 0))
	wantVerdict(t, late, porcupine.Illegal)
	// An expired hold makes no order; an ordered one does not expire.
	gone := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
		add(9, 10, 20, expire, Output{}).
		add(0, 21, 22, Input{Kind: KindOrder, Token: "a"}, errorOut(410, "hold_expired")).
		add(0, 23, 24, Input{Kind: KindGetHold, Token: "a"}, Output{HTTP: 200, Token: "a", ProductID: 1, Qty: 2, State: "expired"})
	wantVerdict(t, gone, porcupine.Ok)
	kept := (&hist{}).
		add(0, 0, 1, holdIn(1, 2, ""), held("a", 1, 2)).
		add(0, 2, 3, Input{Kind: KindOrder, Token: "a"}, orderedOut(201, 5, "a", 1, 2, 200, "pending")).
		add(9, 10, 20, expire, Output{}).
		add(9, 30, 40, Input{Kind: KindExpireOrder, OrderID: 5}, Output{}).
		add(1, 25, 26, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 1, 2, 0)).
		add(1, 41, 42, Input{Kind: KindGetOrder, OrderID: 5}, Output{HTTP: 200, OrderID: 5, Token: "a", ProductID: 1, Qty: 2, Amount: 200, State: "cancelled", Reason: "payment_timeout"}).
		add(1, 43, 44, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 3, 0, 0))
	wantVerdict(t, kept, porcupine.Ok)
}

// TestReportAndVisualizationWithUnansweredOps: a violation among
// unanswered requests is still explained, and the HTML is written.
func TestReportAndVisualizationWithUnansweredOps(t *testing.T) {
	h := (&hist{}).
		add(0, 0, Never, holdIn(1, 2, "k"), Unanswered).
		add(1, 1, 2, holdIn(1, 2, ""), held("y", 1, 2)).
		add(2, 3, Never, Input{Kind: KindGetProduct, ProductID: 1}, Unanswered).
		add(1, 5, 6, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, 0, 3, 0))
	vis := filepath.Join(t.TempDir(), "v.html")
	res := Check(testCatalog, h.ops, Options{VisualizePath: vis})
	if res.Verdict != porcupine.Illegal || !strings.Contains(res.Report, "never") {
		t.Fatalf("verdict %s, report:\n%s", res.Verdict, res.Report)
	}
	if st, err := os.Stat(vis); err != nil || st.Size() == 0 || res.Visualized != vis {
		t.Fatalf("visualization not written: %v", err)
	}
}

// TestModelUnansweredBeforeDeath: a request in flight when its server died
// took effect before the death or never; it cannot surface afterwards.
func TestModelUnansweredBeforeDeath(t *testing.T) {
	const died = 10
	read := func(call, avail int64) (int64, int64, Input, Output) {
		return call, call + 1, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, avail, 3-avail, 0)
	}
	for _, avail := range []int64{1, 3} {
		h := (&hist{}).add(0, 0, died, holdIn(1, 2, ""), Unanswered)
		c, r, in, out := read(20, avail)
		h.add(1, c, r, in, out)
		c, r, in, out = read(30, avail)
		h.add(1, c, r, in, out)
		wantVerdict(t, h, porcupine.Ok)
	}
	h := (&hist{}).add(0, 0, died, holdIn(1, 2, ""), Unanswered)
	c, r, in, out := read(20, 3)
	h.add(1, c, r, in, out)
	c, r, in, out = read(30, 1)
	h.add(1, c, r, in, out)
	wantVerdict(t, h, porcupine.Illegal)
}

func TestRecorderSettlesRequestsToDeadServers(t *testing.T) {
	rec := NewRecorder()
	dead, live := Meta{Server: "http://a"}, Meta{Server: "http://b"}
	rec.add(porcupine.Operation{Input: holdIn(1, 1, ""), Output: Unanswered, Call: 1, Return: Never, Metadata: dead})
	rec.add(porcupine.Operation{Input: holdIn(1, 1, ""), Output: Unanswered, Call: 2, Return: Never, Metadata: live})
	rec.ServerDied("http://a")
	rec.add(porcupine.Operation{Input: holdIn(1, 1, ""), Output: Unanswered, Call: rec.now() + 1, Return: Never, Metadata: dead})
	h := rec.History()
	if len(h) != 2 || h[0].Return == Never || h[0].Return < h[0].Call || h[1].Return != Never {
		t.Fatalf("settled history: %+v", h)
	}
}

// TestModelUnansweredHoldExpires: a hold that may have been created by a
// request that got no answer expires like any other, under its
// placeholder name.
func TestModelUnansweredHoldExpires(t *testing.T) {
	build := func(avail int64) *hist {
		h := (&hist{}).add(0, 0, 10, holdIn(1, 2, ""), Unanswered)
		h.add(9, 100, 210, Input{Kind: KindExpireHold, Token: placeholderName(h.ops[0].Input.(Input).Seq)}, Output{})
		return h.add(1, 300, 301, Input{Kind: KindGetProduct, ProductID: 1}, productOut(1, 3, avail, 3-avail, 0))
	}
	wantVerdict(t, build(3), porcupine.Ok)
	wantVerdict(t, build(1), porcupine.Illegal)
}
