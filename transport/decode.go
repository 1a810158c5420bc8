package transport

import (
	"bytes"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// This file decodes request bodies without reflection: a strict validation
// pass (fastjson.ValidateBytes rejects what fastjson's lenient parser would
// let through, such as 01, NaN or bad escapes), then a parse with the
// request's pooled fastjson.Parser, then typed field getters that say which
// field was wrong. Values point into the parser's buffer and die with it.

// parseObject parses body as one JSON object. It reports false for an empty
// body, invalid UTF-8, malformed JSON, an escaped surrogate that is not part
// of a pair, trailing data, or a non-object.
func (sc *scratch) parseObject(body []byte) (*fastjson.Value, bool) {
	if len(body) == 0 || !utf8.Valid(body) || fastjson.ValidateBytes(body) != nil || !surrogatesPaired(body) {
		return nil, false
	}
	v, err := sc.parser.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, false
	}
	return v, true
}

// surrogatesPaired reports whether every escaped UTF-16 surrogate in body
// (\uD800 to \uDFFF) is a high one directly followed by an escaped low one.
// A lone surrogate is no character, so no UTF-8 text can hold it (RFC 7493
// refuses it), and fastjson would not store what was sent: it keeps a lone
// escape as its six characters, and after an unpaired high one it drops the
// escape that follows ("\ud800\u0041" becomes U+FFFD, the A lost). body
// must have passed fastjson.ValidateBytes: backslashes then occur only in
// strings, each starting a complete escape.
func surrogatesPaired(body []byte) bool {
	for i := 0; i < len(body); {
		j := bytes.IndexByte(body[i:], '\\')
		if j < 0 {
			break
		}
		i += j + 1 // the escaped character
		if i >= len(body) || body[i] != 'u' {
			i++
			continue
		}
		r, ok := escapedUnit(body, i-1)
		switch {
		case !ok:
			return false
		case r >= 0xdc00 && r <= 0xdfff:
			return false // a low surrogate without a high one before it
		case r >= 0xd800 && r <= 0xdbff:
			low, ok := escapedUnit(body, i+5)
			if !ok || low < 0xdc00 || low > 0xdfff {
				return false
			}
			i += 5 + 6
		default:
			i += 5
		}
	}
	return true
}

// escapedUnit decodes the escape "\uXXXX" at body[at:].
func escapedUnit(body []byte, at int) (uint16, bool) {
	if at+6 > len(body) || body[at] != '\\' || body[at+1] != 'u' {
		return 0, false
	}
	var r uint16
	for _, c := range body[at+2 : at+6] {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | uint16(v)
	}
	return r, true
}

// fieldState says whether a field was absent (or null) or present but of
// the wrong type or range.
type fieldState uint8

const (
	fieldOK fieldState = iota
	fieldAbsent
	fieldInvalid
)

// intField reads obj[name] as a JSON integer that fits int64. A string, a
// fraction, an exponent or an out-of-range number is fieldInvalid; absent or
// null is fieldAbsent.
func intField(obj *fastjson.Value, name string) (int64, fieldState) {
	v := obj.Get(name)
	if v == nil || v.Type() == fastjson.TypeNull {
		return 0, fieldAbsent
	}
	if v.Type() != fastjson.TypeNumber {
		return 0, fieldInvalid
	}
	n, err := v.Int64() // errors on fractions, exponents and overflow
	if err != nil {
		return 0, fieldInvalid
	}
	return n, fieldOK
}

// intInRange reads a required integer field within [lo, hi].
func intInRange(obj *fastjson.Value, name string, lo, hi int64) (int64, bool) {
	n, st := intField(obj, name)
	return n, st == fieldOK && n >= lo && n <= hi
}

// stringField reads obj[name] as a JSON string. The bytes are valid until
// the parser is reused.
func stringField(obj *fastjson.Value, name string) ([]byte, fieldState) {
	v := obj.Get(name)
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil, fieldAbsent
	}
	if v.Type() != fastjson.TypeString {
		return nil, fieldInvalid
	}
	b, _ := v.StringBytes()
	return b, fieldOK
}

// parseDecimalID parses a path segment as a positive id in canonical decimal
// form (no sign, no leading zeros, fits int64).
func parseDecimalID(s []byte) (uint64, bool) {
	if len(s) == 0 || len(s) > 19 || s[0] == '0' {
		return 0, false
	}
	var n uint64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return n, true
}
