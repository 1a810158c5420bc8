package engine

import (
	"bytes"
	"testing"
)

// FuzzParseHoldToken checks the hold token's text form both ways:
//   - whatever parses is canonical: it re-encodes to the very same bytes,
//     so one hold has exactly one token text (no upper case hex, leading
//     zeros or signs) and parsing never panics;
//   - every token the engine can issue (a product id >= 1, any sequence
//     number and any 16-byte secret) survives AppendText then ParseHoldToken unchanged, and its
//     text is at most holdTokenTextMax bytes.
func FuzzParseHoldToken(f *testing.F) {
	secret := [16]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	for _, s := range []struct {
		text         string
		product, seq uint64
		secret       []byte
	}{
		// "<product>_<hex>", the form before holds had a sequence number
		{"1_deadbeef0102030405060708090a0b0c", 1, 0, secret[:]},
		{"18446744073709551615_00000000000000000000000000000000", 1<<64 - 1, 0, make([]byte, 16)},
		{"18446744073709551616_00000000000000000000000000000000", 10, 0, nil},
		{"99999999999999999999_00000000000000000000000000000000", 1 << 63, 0, nil},
		{"0_00000000000000000000000000000000", 0, 0, nil},
		{"01_00000000000000000000000000000000", 1, 0, nil},
		{"+1_00000000000000000000000000000000", 1, 0, nil},
		{"1_DEADBEEF0102030405060708090A0B0C", 1, 0, nil},
		{"1_deadbeef0102030405060708090a0b0", 1, 0, nil},
		{"1_deadbeef0102030405060708090a0b0c0", 1, 0, nil},
		{"1-deadbeef0102030405060708090a0b0c", 1, 0, nil},
		{"_deadbeef0102030405060708090a0b0c", 1, 0, nil},
		{"1_deadbeef0102030405060708090a0b0g", 1, 0, nil},
		{"", 1, 0, nil},
		// "<product>_<sequence>_<hex>", the form with a per-product sequence
		{"1_0_deadbeef0102030405060708090a0b0c", 1, 0, secret[:]},
		{"7_42_deadbeef0102030405060708090a0b0c", 7, 42, secret[:]},
		{"7_042_deadbeef0102030405060708090a0b0c", 7, 0, nil},
		{"7__deadbeef0102030405060708090a0b0c", 7, 0, nil},
		{"18446744073709551615_18446744073709551615_ffffffffffffffffffffffffffffffff", 1<<64 - 1, 1<<64 - 1, nil},
	} {
		f.Add([]byte(s.text), s.product, s.seq, s.secret)
	}
	f.Fuzz(func(t *testing.T, text []byte, product, seq uint64, secret []byte) {
		if tok, ok := ParseHoldToken(text); ok {
			if again := tok.AppendText(nil); !bytes.Equal(again, text) {
				t.Fatalf("%q parses to %+v, which prints as %q", text, tok, again)
			}
			if tok.ProductID == 0 {
				t.Fatalf("%q parses to product 0", text)
			}
		}
		if product == 0 {
			product = 1 // product ids start at 1; no token names product 0
		}
		want := HoldToken{ProductID: product, Seq: seq}
		copy(want.Secret[:], secret)
		printed := want.AppendText(nil)
		if len(printed) > holdTokenTextMax {
			t.Fatalf("%+v prints as %d bytes", want, len(printed))
		}
		got, ok := ParseHoldToken(printed)
		if !ok || got != want {
			t.Fatalf("%+v prints as %q, which parses to %+v, %v", want, printed, got, ok)
		}
		if s := want.String(); s != string(printed) {
			t.Fatalf("String %q != AppendText %q", s, printed)
		}
	})
}
