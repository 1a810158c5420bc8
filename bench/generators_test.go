package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseRatio(t *testing.T) {
	cases := []struct {
		in     string
		b, c   int
		wantOK bool
	}{
		{"9:1", 9, 1, true}, {"3", 3, 1, true}, {"0:1", 0, 1, true}, {" 4 : 2 ", 4, 2, true},
		{"0:0", 0, 0, false}, {"-1:2", 0, 0, false}, {"a:b", 0, 0, false}, {"", 0, 0, false},
	}
	for _, c := range cases {
		b, cw, err := ParseRatio(c.in)
		if (err == nil) != c.wantOK || (c.wantOK && (b != c.b || cw != c.c)) {
			t.Errorf("ParseRatio(%q) = %d, %d, %v", c.in, b, cw, err)
		}
	}
}

func TestRequestBodiesAreValidJSON(t *testing.T) {
	w := &worker{}
	var hold struct{ ProductID, Qty int64 }
	if err := json.Unmarshal(w.holdBody(7, 2), &struct {
		P *int64 `json:"product_id"`
		Q *int64 `json:"qty"`
	}{&hold.ProductID, &hold.Qty}); err != nil || hold.ProductID != 7 || hold.Qty != 2 {
		t.Errorf("hold body: %+v, %v", hold, err)
	}
	var order struct {
		HoldToken string `json:"hold_token"`
	}
	if err := json.Unmarshal(w.orderBody(`to"ken`), &order); err != nil || order.HoldToken != `to"ken` {
		t.Errorf("order body: %+v, %v", order, err)
	}
	for _, success := range []bool{true, false} {
		var hook struct {
			Status        string `json:"status"`
			OrderID       int64  `json:"order_id"`
			FailureReason string `json:"failure_reason"`
		}
		if err := json.Unmarshal(webhookBody(nil, 42, success, []byte(`evt"1`)), &hook); err != nil || hook.OrderID != 42 ||
			(success && hook.Status != "success") || (!success && (hook.Status != "failure" || hook.FailureReason == "")) {
			t.Errorf("webhook body (success=%v): %+v, %v", success, hook, err)
		}
	}
}

func TestIdempotencyKeysAreUniqueAndValid(t *testing.T) {
	seen := map[string]bool{}
	for a := int64(0); a < 30; a++ {
		for b := int64(0); b < 30; b++ {
			k := string(appendKey(nil, "7-abc", 'h', a, b))
			if seen[k] {
				t.Fatalf("key %q generated twice", k)
			}
			seen[k] = true
			if len(k) < 1 || len(k) > 255 {
				t.Fatalf("key %q: length %d outside 1..255", k, len(k))
			}
			for _, c := range []byte(k) {
				if c <= ' ' || c > '~' {
					t.Fatalf("key %q: not visible ASCII", k)
				}
			}
		}
	}
}

func TestWebhookSignatureMatchesAPIFormat(t *testing.T) {
	body := []byte(`{"status":"success","order_id":1}`)
	s := newWebhookSigner("secret")
	got := string(s.appendSignature(nil, 1700000000, body))
	mac := hmac.New(sha256.New, []byte("secret"))
	mac.Write([]byte("1700000000." + string(body)))
	want := "t=1700000000,v1=" + hex.EncodeToString(mac.Sum(nil))
	if got != want {
		t.Errorf("signature = %q, want %q", got, want)
	}
	if again := string(s.appendSignature(nil, 1700000000, body)); again != want {
		t.Errorf("second signature = %q: the signer must reset between uses", again)
	}
	if newWebhookSigner("") != nil {
		t.Error("an empty secret must give no signer")
	}
}

func TestArrivalsFollowTheScheduleExactly(t *testing.T) {
	const ratePerSec = 1000
	// The deadline is set from start itself: a pause between the two (a busy
	// machine) must not shorten the schedule the test expects.
	start := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(100*time.Millisecond))
	defer cancel()
	out := make(chan time.Time, 1000)
	var missed atomic.Int64
	generateArrivals(ctx, start, ratePerSec, out, &missed)
	close(out)
	i := 0
	for due := range out {
		if want := start.Add(time.Duration(i) * time.Millisecond); !due.Equal(want) {
			t.Fatalf("arrival %d due at %v, want %v", i, due.Sub(start), want.Sub(start))
		}
		i++
	}
	if n := int64(i) + missed.Load(); n < 99 || n > 101 {
		t.Errorf("arrivals sent %d + missed %d, want 100 ± 1 for 1000/s during 100 ms", i, missed.Load())
	}
}

func TestArrivalsThatCannotBeSentAreCountedMissed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	out := make(chan time.Time) // nobody receives: every worker is stuck
	var missed atomic.Int64
	generateArrivals(ctx, time.Now(), 1000, out, &missed)
	if n := missed.Load(); n < 99 || n > 101 {
		t.Errorf("missed = %d, want 100 ± 1", n)
	}
}

func TestMixedFollowsTheRatio(t *testing.T) {
	f := startFakeServer(t, map[int64]int64{1: 1_000_000}, fakeFaults{})
	cfg := fakeConfig(f, "mixed").withDefaults()
	cfg.BrowseWeight, cfg.CheckoutWeight = 3, 1
	hostPort, _ := parseBaseURL(cfg.URL)
	tgt := newTarget(hostPort, 4, "", "")
	rec := newRecorder(1)
	env := &runEnv{cfg: cfg, target: tgt, control: newWorker(0, tgt, newRecorder(1), 1), controlRec: newRecorder(1),
		violations: &violations{}, runID: "mix"}
	m := newMixedWorkload(cfg)
	if err := m.setup(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	w := newWorker(0, tgt, rec, 11)
	const ops = 800
	for range ops {
		m.op(w)
	}
	tot := rec.totals()
	browse := tot[EndpointProductGet].requests + tot[EndpointProductList].requests
	checkout := tot[EndpointHoldCreate].requests
	if browse+checkout != ops {
		t.Fatalf("browse %d + checkout %d ops, want %d", browse, checkout, ops)
	}
	// Binomial(800, 1/4): mean 200, sd ≈ 12; ±60 is five sd.
	if checkout < 140 || checkout > 260 {
		t.Errorf("checkout ops = %d of %d, want about a quarter", checkout, ops)
	}
}
