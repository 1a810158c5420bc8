package transport

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"
	"time"
)

const testSecret = "whsec_test"

func sign(secret string, t int64, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(t, 10) + "." + body))
	return "t=" + strconv.FormatInt(t, 10) + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// TestWebhookSignatures: with a secret, only a fresh, matching X-Signature
// is accepted; everything else is 401 invalid_signature and stores nothing.
// The signature is checked before the key.
func TestWebhookSignatures(t *testing.T) {
	ts := startServer(t, func(s *serverSetup) { s.opts.WebhookSecret = []byte(testSecret) })
	id := ts.order(ts.hold(1, 1))
	body := `{"status":"success","order_id":` + id + `}`
	now := time.Now().Unix()
	bad := []struct{ name, sig string }{
		{"missing", ""},
		{"wrong secret", sign("other", now, body)},
		{"other body", sign(testSecret, now, body+" ")},
		{"stale", sign(testSecret, now-6*60, body)},
		{"future", sign(testSecret, now+6*60, body)},
		{"no t", "v1=" + sign(testSecret, now, body)[len("t=0000000000,v1="):]},
		{"no v1", "t=" + strconv.FormatInt(now, 10)},
		{"garbage", "nonsense"},
		{"short hex", "t=" + strconv.FormatInt(now, 10) + ",v1=abcd"},
		{"two t", sign(testSecret, now, body) + ",t=" + strconv.FormatInt(now, 10)},
	}
	before := ts.snapshot()
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			headers := []string{"Idempotency-Key", "sig-" + c.name}
			if c.sig != "" {
				headers = append(headers, "X-Signature", c.sig)
			}
			expectError(t, ts.do("POST", "/api/payments/webhook", body, headers...), 401, "invalid_signature", "")
		})
	}
	// Neither key nor signature: the signature is checked first.
	expectError(t, ts.do("POST", "/api/payments/webhook", body), 401, "invalid_signature", "")
	// A valid signature without a key is 400.
	expectError(t, ts.do("POST", "/api/payments/webhook", body, "X-Signature", sign(testSecret, now, body)),
		400, "idempotency_key_required", "")
	if after := ts.snapshot(); after != before {
		t.Fatalf("refused webhooks changed state:\n%s\n%s", before, after)
	}
	// Within the tolerance either way, and among several v1 entries.
	ok := ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", "sig-ok",
		"X-Signature", sign(testSecret, now-4*60, body))
	if m := expectStatus(t, ok, 200); m["applied"] != true {
		t.Fatalf("signed webhook: %s", ok.body)
	}
	rotated := "t=" + strconv.FormatInt(now+60, 10) + ",v1=" + sign("old", now+60, body)[len("t=0000000000,v1="):] +
		"," + sign(testSecret, now+60, body)[len("t=0000000000,"):]
	expectStatus(t, ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", "sig-ok-2", "X-Signature", rotated), 200)
}

// TestWebhookUnsignedWithoutSecret: without a secret, X-Signature is ignored.
func TestWebhookUnsignedWithoutSecret(t *testing.T) {
	ts := startServer(t, nil)
	id := ts.order(ts.hold(1, 1))
	expectStatus(t, ts.do("POST", "/api/payments/webhook", `{"status":"success","order_id":`+id+`}`,
		"Idempotency-Key", "k", "X-Signature", "garbage"), 200)
}
