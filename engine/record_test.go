package engine

import (
	"bytes"
	"testing"
)

func sampleRecords() []record {
	secret := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	return []record{
		{kind: recProductCreated, atNanos: 1, product: 1, name: "Widget", priceCents: 4999, qty: 100, maxPerHold: 10},
		{kind: recProductRestocked, atNanos: 2, product: 1, qty: 5},
		{kind: recHoldCreated, atNanos: 3, product: 1, holdSeq: 1, secret: secret, qty: 2, deadline: 120, key: "k"},
		{kind: recHoldRejected, atNanos: 4, product: 1, qty: 3, available: 1, key: "k2"},
		{kind: recHoldExpired, atNanos: 5, product: 1, holdSeq: 1},
		{kind: recOrderCreated, atNanos: 6, product: 1, holdSeq: 2, orderID: 7, deadline: 900},
		{kind: recPaymentApplied, atNanos: 7, product: 1, orderID: 7, success: false, reason: "insufficient_funds", key: "w"},
		{kind: recOrderTimedOut, atNanos: 8, product: 1, orderID: 7},
		{kind: recWebhookQueued, atNanos: -9, orderID: 8, success: true, key: "w2", deadline: 3600},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, want := range sampleRecords() {
		buf := appendRecord(nil, &want)
		var got record
		if err := decodeRecord(buf, &got); err != nil {
			t.Fatalf("kind %d: %v", want.kind, err)
		}
		if got != want {
			t.Fatalf("kind %d: got %+v, want %+v", want.kind, got, want)
		}
		for cut := 0; cut < len(buf); cut++ {
			if err := decodeRecord(buf[:cut], &got); err == nil {
				t.Fatalf("kind %d cut at %d/%d decoded", want.kind, cut, len(buf))
			}
		}
		if err := decodeRecord(append(bytes.Clone(buf), 0), &got); err == nil {
			t.Fatalf("kind %d with a trailing byte decoded", want.kind)
		}
	}
}

// FuzzDecodeRecord: no input panics, and whatever decodes re-encodes to the
// same bytes: the decoder accepts only the one canonical encoding.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(appendRecord(nil, &r))
	}
	f.Add([]byte{})
	f.Add([]byte{3, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var r record
		if decodeRecord(data, &r) != nil {
			return
		}
		if again := appendRecord(nil, &r); !bytes.Equal(again, data) {
			t.Fatalf("decoded %+v re-encodes as %x, input %x", r, again, data)
		}
	})
}
