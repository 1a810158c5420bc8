package transport

import (
	"math"
	"unicode/utf8"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fasthttp"
)

// failureReasonBytesMax bounds the failure_reason kept on an order and in
// the log.
const failureReasonBytesMax = 255

var hdrSignature = []byte("X-Signature")

// paymentWebhook is POST /api/payments/webhook. Checks run in docs/API.md's
// order: size, then the signature (when a secret is set; before the key, so
// an unsigned request learns nothing), then the Idempotency-Key, the JSON
// and its fields. A refused request stores nothing.
//
// The replay check (a signature seen under another key: 401
// signature_replayed) comes last, on the node that applies the webhook:
// after the forward in cluster mode, so that a follower's forward is not
// counted as a first delivery and the leader, which sees every delivery of
// its partition whichever node took it, is the one that remembers. Under
// the same key it lets the request through to the engine, which replays
// the stored answer: an honest provider's retry is never refused.
func (s *Server) paymentWebhook(ctx *fasthttp.RequestCtx, sc *scratch) {
	body, ok := readBody(ctx, sc)
	if !ok {
		return
	}
	if len(s.webhookSecret) > 0 && !s.verifySignature(sc, ctx.Request.Header.PeekBytes(hdrSignature), body) {
		writeError(ctx, sc, &errInvalidSignature)
		return
	}
	key, _, valid := idempotencyKey(ctx)
	if !valid {
		writeError(ctx, sc, &errKeyRequired)
		return
	}
	obj, ok := parseObjectOrRefuse(ctx, sc, body)
	if !ok {
		return
	}
	var p engine.Payment
	status, st := stringField(obj, "status")
	switch {
	case st == fieldOK && string(status) == "success":
		p.Success = true
	case st == fieldOK && string(status) == "failure":
	default:
		e := validation("status", `status must be "success" or "failure".`)
		writeError(ctx, sc, &e)
		return
	}
	orderID, ok := intInRange(obj, "order_id", 1, math.MaxInt64)
	if !ok {
		e := validation("order_id", "order_id must be a positive integer.")
		writeError(ctx, sc, &e)
		return
	}
	p.OrderID = uint64(orderID)
	reason, st := stringField(obj, "failure_reason")
	switch {
	case st == fieldInvalid || len(reason) > failureReasonBytesMax || !utf8.Valid(reason):
		e := validation("failure_reason", "failure_reason must be a string of at most 255 bytes.")
		writeError(ctx, sc, &e)
		return
	case len(reason) > 0:
		p.FailureReason = string(reason) // a copy: the engine keeps it
	}
	eng, ok := s.leader(ctx, sc, p.OrderID)
	if !ok {
		return
	}
	if s.signatures != nil {
		switch s.signatures.check(sc.sum[:], sc.sigT, key, s.now().Unix()) {
		case signatureReplayed:
			writeError(ctx, sc, &errSignatureReplayed)
			return
		case signatureFull:
			writeError(ctx, sc, &errSignaturesFull)
			return
		}
	}
	r := eng.ApplyPayment(p, key)
	if r.Replayed {
		markReplayed(ctx)
	}
	if r.Code != engine.OK {
		e := codeError(r.Code)
		if r.Code == engine.CodeInvalidArgument {
			e = validation("order_id", "order_id must be a positive integer.")
		}
		writeError(ctx, sc, &e)
		return
	}
	code := fasthttp.StatusOK
	if r.Queued {
		code = fasthttp.StatusAccepted
	}
	sc.out = appendPaymentResult(sc.out[:0], &r)
	writeJSON(ctx, code, sc.out)
}
