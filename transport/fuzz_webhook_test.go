package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/engine"
)

// FuzzWebhookBody sends arbitrary payment webhooks: any body, any
// Idempotency-Key (or none), and either a valid X-Signature for the body or
// an arbitrary one. "@pending", "@paid", "@cancelled" and "@missing" in the
// body stand for the ids of orders in those states and of one not created
// yet. Besides the common checks: a wrong signature is always 401 and
// stores nothing, and with a valid one a body is never refused as 401
// unless that very signature was sent before, since the fixture was
// built, under another key (401 signature_replayed).
func FuzzWebhookBody(f *testing.F) {
	for _, s := range []struct {
		body, key string
		hasKey    bool
		sign      bool
		sig       string
	}{
		{`{"status":"success","order_id":@pending}`, "w1", true, true, ""},
		{`{"status":"failure","order_id":@pending,"failure_reason":"insufficient_funds"}`, "w2", true, true, ""},
		{`{"status":"success","order_id":@paid}`, "w3", true, true, ""},
		{`{"status":"success","order_id":@cancelled}`, "w4", true, true, ""},
		{`{"status":"failure","order_id":@missing}`, "w5", true, true, ""},
		{`{"status":"success","order_id":@pending}`, "w1", true, false, "t=" + strconv.FormatInt(fuzzEpoch.Unix(), 10) + ",v1=00"},
		{`{"status":"success","order_id":@pending}`, "w1", true, false, ""},
		{`{"status":"success","order_id":@pending}`, "", false, true, ""},
		{`{"status":"success","order_id":@pending}`, "", true, true, ""},
		{`{"status":"success","order_id":@pending}`, strings.Repeat("k", 256), true, true, ""},
		{`{"status":"ok","order_id":@pending}`, "w6", true, true, ""},
		{`{"status":"success","order_id":0}`, "w7", true, true, ""},
		{`{"status":"success","order_id":"1"}`, "w8", true, true, ""},
		{`{"status":"success","order_id":1.0}`, "w9", true, true, ""},
		{`{"status":"failure","order_id":@pending,"failure_reason":7}`, "w10", true, true, ""},
		{`{"status":"failure","order_id":@pending,"failure_reason":"` + strings.Repeat("r", 256) + `"}`, "w11", true, true, ""},
		{`{"status":"failure","order_id":@pending,"failure_reason":"\udc00"}`, "w12", true, true, ""},
		{`{"status":"success","order_id":9223372036854775808}`, "w13", true, true, ""},
		{`{"status":null,"order_id":@pending}`, "w14", true, true, ""},
		{`{"status":"success","order_id":@pending} x`, "w15", true, true, ""},
		{``, "w16", true, true, ""},
		{`[]`, "w17", true, true, ""},
	} {
		f.Add([]byte(s.body), s.key, s.hasKey, s.sign, s.sig)
	}
	fx := newFuzzFixture(f, prepareOrders)
	sent := map[string]string{} // signature → the key it was first sent with, since the fixture was built
	f.Fuzz(func(t *testing.T, body []byte, key string, hasKey, sign bool, sig string) {
		if fx.next(); fx.runs == 1 {
			clear(sent)
		}
		body = fx.expand(body)
		req := fuzzRequest{path: "/api/payments/webhook", body: body}
		if hasKey {
			req.headers = append(req.headers, [2]string{"Idempotency-Key", key})
		}
		if sign {
			sig = signWebhook(fx.clock.Now().Unix(), body)
		}
		req.headers = append(req.headers, [2]string{"X-Signature", sig})
		status, answer, _ := fx.check(t, req, webhookAnswers, nil)
		sc := getScratch()
		valid := sign || fx.srv.verifySignature(sc, []byte(sig), body)
		putScratch(sc)
		first, seen := sent[sig]
		replayed := valid && seen && first != key
		// The replay check is the last before the engine: a replayed
		// signature on a request refused earlier keeps that refusal.
		refusedEarlier := status == 400 || status == 413 || (status == 422 && answer["error"] == "validation_failed")
		switch {
		case !valid && status != 401:
			t.Fatalf("invalid signature but status %d: %s", status, fx.ctx.Response.Body())
		case valid && !replayed && status == 401:
			t.Fatalf("valid signature, first use under this key, but 401: %s", fx.ctx.Response.Body())
		case replayed && !refusedEarlier && answer["error"] != "signature_replayed":
			t.Fatalf("signature replayed under another key, but status %d: %s", status, fx.ctx.Response.Body())
		}
		if valid && !seen && !refusedEarlier {
			sent[sig] = key // recorded by the server with this key
		}
	})
}

// signWebhook is a valid X-Signature of body at unix time ts.
func signWebhook(ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(fuzzWebhookSecret))
	t := strconv.FormatInt(ts, 10)
	mac.Write([]byte(t + "."))
	mac.Write(body)
	return "t=" + t + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// prepareOrders makes a pending, a paid and a cancelled order on product 1.
func prepareOrders(fx *fuzzFixture) map[string]string {
	ids := make([]string, 3)
	for i := range ids {
		ids[i] = strconv.FormatUint(fx.mustOrder(fx.mustHold(1, 1)), 10)
	}
	for i, success := range map[int]bool{1: true, 2: false} {
		id, _ := strconv.ParseUint(ids[i], 10, 64)
		if r := fx.eng.ApplyPayment(engine.Payment{OrderID: id, Success: success}, []byte("prepare-"+ids[i])); r.Code != engine.OK {
			fx.tb.Fatalf("payment of order %d: code %d", id, r.Code)
		}
	}
	return map[string]string{"@pending": ids[0], "@paid": ids[1], "@cancelled": ids[2], "@missing": "1000"}
}
