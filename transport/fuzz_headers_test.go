package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzSignatureHeader feeds arbitrary X-Signature headers and bodies to the
// parser, with the server's clock skew from the signed time as a third
// input. It asserts:
//   - soundness: an accepted header has a "t" entry within 5 minutes of the
//     clock and a "v1" entry that is the hex (either case) HMAC-SHA256 of
//     "<t>.<body>" under the secret, as read by an independent parse;
//   - completeness: the header a provider sends, alone or followed by the
//     fuzzed entries when those hold no second t, is accepted exactly when
//     the skew is within 5 minutes;
//   - a valid signature for any other body is refused.
func FuzzSignatureHeader(f *testing.F) {
	now := fuzzEpoch.Unix()
	ts := "t=" + strconv.FormatInt(now, 10)
	body := `{"status":"success","order_id":1}`
	for _, s := range []struct {
		header, body string
		skew         int64
	}{
		{signWebhook(now, []byte(body)), body, 0},
		{signWebhook(now-300, []byte(body)), body, 300},
		{signWebhook(now-301, []byte(body)), body, 301},
		{signWebhook(now+300, []byte(body)), body, -300},
		{" " + strings.ReplaceAll(signWebhook(now, []byte(body)), ",", " , ") + " ", body, 0},
		{signWebhook(now, []byte(body)) + ",v1=00", body, 0},
		{"v1=00,v1=11,v1=22,v1=33," + signWebhook(now, []byte(body))[len(ts)+1:] + "," + ts, body, 0},
		{"v1=00,v1=11,v1=22," + signWebhook(now, []byte(body))[len(ts)+1:] + "," + ts, body, 0},
		{strings.ToUpper(signWebhook(now, []byte(body))), body, 0},
		{ts + "," + ts + ",v1=00", body, 0},
		{"t=0" + ts[2:] + ",v1=00", body, 0},
		{"t=-1,v1=00", body, 0},
		{"t=999999999999999999,v1=00", body, 0},
		{"t=9999999999999999999,v1=00", body, 0},
		{ts + ",v1=", body, 0},
		{ts + ",v0=00,scheme=x", body, 0},
		{ts + ",,v1=00", body, 0},
		{ts + ";v1=00", body, 0},
		{"=", "", 0},
		{"", "", 0},
		{",", "", -1 << 62},
	} {
		f.Add([]byte(s.header), []byte(s.body), s.skew)
	}
	srv := &Server{webhookSecret: []byte(fuzzWebhookSecret), now: func() time.Time { return fuzzEpoch }}
	sc := &scratch{}
	f.Fuzz(func(t *testing.T, header, body []byte, skew int64) {
		if srv.verifySignature(sc, header, body) {
			if why := signatureFlaw(header, body, now); why != "" {
				t.Fatalf("accepted %q for %q: %s", header, body, why)
			}
		}
		ts := now - skew
		if skew < -1<<40 || skew > 1<<40 {
			ts = now + 1<<40 // keep t a small positive number
		}
		good := []byte(signWebhook(ts, body))
		want := ts-now <= 300 && now-ts <= 300
		if got := srv.verifySignature(sc, good, body); got != want {
			t.Fatalf("provider header %q for %q at skew %d: accepted=%v", good, body, now-ts, got)
		}
		if extraEntries(header) {
			longer := append(append(bytes.Clone(good), ','), header...)
			if got := srv.verifySignature(sc, longer, body); got != want {
				t.Fatalf("provider header with more entries %q for %q at skew %d: accepted=%v", longer, body, now-ts, got)
			}
		}
		other := append(bytes.Clone(body), ' ')
		if srv.verifySignature(sc, good, other) {
			t.Fatalf("signature of %q accepted for %q", body, other)
		}
	})
}

// extraEntries reports whether header is a non-empty list of name=value
// entries without a t entry, which a parser must ignore after a valid
// signature.
func extraEntries(header []byte) bool {
	if len(header) == 0 || bytes.IndexByte(header, 't') >= 0 {
		return false
	}
	for part := range bytes.SplitSeq(header, []byte{','}) {
		if bytes.IndexByte(part, '=') < 0 {
			return false
		}
	}
	return true
}

// signatureFlaw returns why header is not a valid signature of body at now
// (empty if it is one), parsing it independently of verifySignature.
func signatureFlaw(header, body []byte, now int64) string {
	var ts string
	var sigs []string
	for _, part := range strings.Split(string(header), ",") {
		name, value, ok := strings.Cut(strings.TrimSpace(part), "=")
		switch {
		case !ok:
			return "an entry without '='"
		case name == "t" && ts != "":
			return "two t entries"
		case name == "t":
			ts = value
		case name == "v1":
			sigs = append(sigs, value)
		}
	}
	t, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || t < 0 {
		return "t is not a unix time"
	}
	if t-now > 300 || now-t > 300 {
		return "t is more than 5 minutes off"
	}
	mac := hmac.New(sha256.New, []byte(fuzzWebhookSecret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	want := hex.EncodeToString(mac.Sum(nil))
	for _, s := range sigs {
		if got, err := hex.DecodeString(s); err == nil && hex.EncodeToString(got) == want {
			return "" // hex of either case: the same 32 bytes
		}
	}
	return "no v1 entry is the HMAC in hex"
}

// FuzzIdempotencyKey sets an arbitrary Idempotency-Key header value and
// checks the validator against docs/API.md's rule (1 to 255 bytes, each 0x21 to
// 0x7e) applied to what the request carries: valid exactly when the rule
// holds, the key returned byte for byte, and a key that obeys the rule as
// sent is carried unchanged. It then sends the same header on
// POST /api/holds and on the webhook: an invalid key is 400
// idempotency_key_required on both.
func FuzzIdempotencyKey(f *testing.F) {
	for _, k := range []string{"k", "order-42:attempt-1", strings.Repeat("x", 255), strings.Repeat("x", 256),
		"", " ", "a b", " padded ", "tab\there", "caf\u00e9", "\x00", "\x7f", "~!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}", "line\r\nX-Injected: 1"} {
		f.Add(k)
	}
	var ctx fasthttp.RequestCtx
	fx := newFuzzFixture(f, nil)
	f.Fuzz(func(t *testing.T, key string) {
		ctx.Request.Reset()
		ctx.Request.Header.Set("Idempotency-Key", key)
		got, present, valid := idempotencyKey(&ctx)
		carried := ctx.Request.Header.Peek("Idempotency-Key")
		if !present {
			t.Fatalf("key %q: not present", key)
		}
		if valid != keyRule(carried) || (valid && !bytes.Equal(got, carried)) {
			t.Fatalf("key %q (carried as %q): valid=%v, returned %q", key, carried, valid, got)
		}
		if keyRule([]byte(key)) && (!valid || string(got) != key) {
			t.Fatalf("valid key %q carried as %q, returned %q", key, carried, got)
		}

		fx.next()
		hold := fuzzRequest{path: "/api/holds", body: []byte(`{"product_id":1,"qty":1}`),
			headers: [][2]string{{"Idempotency-Key", key}}}
		status, answer, _ := fx.check(t, hold, holdAnswers, func(status int, _ map[string]any) bool {
			return status == 409 // remembered under the key
		})
		if !valid && (status != 400 || answer["error"] != "idempotency_key_required") {
			t.Fatalf("hold under invalid key %q: %d %s", key, status, fx.ctx.Response.Body())
		}
		// A signature is good for one delivery: each input signs its own
		// body (the event field is ignored by the server).
		body := []byte(`{"status":"failure","order_id":1000,"event":` + itoa(fx.runs) + `}`)
		hook := fuzzRequest{path: "/api/payments/webhook", body: body,
			headers: [][2]string{{"Idempotency-Key", key}, {"X-Signature", signWebhook(fx.clock.Now().Unix(), body)}}}
		status, answer, _ = fx.check(t, hook, webhookAnswers, nil)
		if !valid && (status != 400 || answer["error"] != "idempotency_key_required") {
			t.Fatalf("webhook under invalid key %q: %d %s", key, status, fx.ctx.Response.Body())
		}
	})
}

// keyRule is docs/API.md's Idempotency-Key rule.
func keyRule(k []byte) bool {
	if len(k) < 1 || len(k) > 255 {
		return false
	}
	for _, c := range k {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// TestSignatureSecretPerServer: two servers with different secrets in one
// process each verify with their own. The per-request scratch (and its
// HMAC) is pooled process-wide, so a MAC keyed for one server must not be
// reused by another.
func TestSignatureSecretPerServer(t *testing.T) {
	now := func() time.Time { return fuzzEpoch }
	a := &Server{webhookSecret: []byte("secret-a"), now: now}
	b := &Server{webhookSecret: []byte("secret-b"), now: now}
	body := []byte(`{"status":"success","order_id":1}`)
	sigFor := func(secret string) []byte {
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(strconv.FormatInt(fuzzEpoch.Unix(), 10) + "."))
		mac.Write(body)
		return []byte("t=" + strconv.FormatInt(fuzzEpoch.Unix(), 10) + ",v1=" + hex.EncodeToString(mac.Sum(nil)))
	}
	sc := &scratch{}
	if !a.verifySignature(sc, sigFor("secret-a"), body) {
		t.Fatal("server a refused its own signature")
	}
	if !b.verifySignature(sc, sigFor("secret-b"), body) {
		t.Fatal("server b refused its own signature after server a used the scratch")
	}
	if b.verifySignature(sc, sigFor("secret-a"), body) {
		t.Fatal("server b accepted a signature made with server a's secret")
	}
}
