package engine

import (
	"crypto/subtle"
	"encoding/hex"
	"strconv"
)

// HoldToken names a hold. It carries its product's id, so a request finds the
// owning actor without a global index; the hold's sequence number within the
// product, so the actor finds it without a hash map; and 128 random bits, so
// tokens cannot be guessed. Its text form is
// "<product id>_<sequence>_<32 lowercase hex digits>".
type HoldToken struct {
	ProductID uint64
	Seq       uint64
	Secret    [16]byte
}

// holdTokenTextMax is the longest text form: two 20-digit numbers, two "_",
// 32 hex digits.
const holdTokenTextMax = 20 + 1 + 20 + 1 + 32

// AppendText appends the text form of t to dst.
func (t HoldToken) AppendText(dst []byte) []byte {
	dst = strconv.AppendUint(dst, t.ProductID, 10)
	dst = append(dst, '_')
	dst = strconv.AppendUint(dst, t.Seq, 10)
	dst = append(dst, '_')
	return hex.AppendEncode(dst, t.Secret[:])
}

// String is the text form of t.
func (t HoldToken) String() string {
	var buf [holdTokenTextMax]byte
	return string(t.AppendText(buf[:0]))
}

// secretMatches compares secrets in constant time, so that response timing
// tells nothing about how much of a guessed secret was right.
func (t HoldToken) secretMatches(secret *[16]byte) bool {
	return subtle.ConstantTimeCompare(t.Secret[:], secret[:]) == 1
}

// ParseHoldToken parses the text form made by AppendText. It accepts nothing
// else: no upper case hex, no leading zeros, no signs.
func ParseHoldToken(s []byte) (HoldToken, bool) {
	var t HoldToken
	if len(s) < 1+1+1+1+32 || len(s) > holdTokenTextMax {
		return t, false
	}
	hexStart := len(s) - 32
	if s[hexStart-1] != '_' {
		return t, false
	}
	var ok bool
	rest := s[:hexStart-1]
	if t.ProductID, rest, ok = parseDecimal(rest); !ok || len(rest) == 0 || rest[0] != '_' || t.ProductID == 0 {
		return t, false
	}
	if t.Seq, rest, ok = parseDecimal(rest[1:]); !ok || len(rest) != 0 {
		return t, false
	}
	for i, c := range s[hexStart:] {
		v, ok := hexValue(c)
		if !ok {
			return t, false
		}
		if i%2 == 0 {
			t.Secret[i/2] = v << 4
		} else {
			t.Secret[i/2] |= v
		}
	}
	return t, true
}

// parseDecimal reads a canonical unsigned decimal (no leading zeros unless
// it is "0") from the front of s, returning the rest.
func parseDecimal(s []byte) (uint64, []byte, bool) {
	n := 0
	var v uint64
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		next := v*10 + uint64(s[n]-'0')
		if next/10 != v {
			return 0, s, false // overflow
		}
		v = next
		n++
	}
	if n == 0 || (n > 1 && s[0] == '0') {
		return 0, s, false
	}
	return v, s[n:], true
}

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
