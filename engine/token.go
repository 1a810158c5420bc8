package engine

import (
	"encoding/hex"
	"strconv"
)

// HoldToken names a hold. It carries its product's id, so a request finds the
// owning actor without a global index, and 128 random bits, so tokens cannot
// be guessed. Its text form is "<product id>_<32 lowercase hex digits>".
type HoldToken struct {
	ProductID uint64
	Secret    [16]byte
}

// holdTokenTextMax is the longest text form: 20 decimal digits, "_", 32 hex digits.
const holdTokenTextMax = 20 + 1 + 32

// AppendText appends the text form of t to dst.
func (t HoldToken) AppendText(dst []byte) []byte {
	dst = strconv.AppendUint(dst, t.ProductID, 10)
	dst = append(dst, '_')
	return hex.AppendEncode(dst, t.Secret[:])
}

// String is the text form of t.
func (t HoldToken) String() string {
	var buf [holdTokenTextMax]byte
	return string(t.AppendText(buf[:0]))
}

// ParseHoldToken parses the text form made by AppendText. It accepts nothing
// else: no upper case hex, no leading zeros, no sign.
func ParseHoldToken(s []byte) (HoldToken, bool) {
	var t HoldToken
	if len(s) < 2+32 || len(s) > holdTokenTextMax {
		return t, false
	}
	sep := len(s) - 33
	if s[sep] != '_' {
		return t, false
	}
	digits := s[:sep]
	if digits[0] == '0' {
		return t, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return t, false
		}
		next := t.ProductID*10 + uint64(c-'0')
		if next/10 != t.ProductID {
			return t, false // overflow
		}
		t.ProductID = next
	}
	for i, c := range s[sep+1:] {
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

func hexValue(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
