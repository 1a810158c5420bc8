package transport

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/flashsale/flashsale/engine"
)

// This file renders the API's JSON objects by appending to a byte slice:
// no reflection, no allocation, and a fixed field order, so that the same
// engine answer always renders to the same bytes (idempotent replays are
// byte-for-byte copies of the first answer).

// appendTime appends t as RFC 3339 in UTC with exactly three fractional
// digits (truncated), e.g. 2026-11-25T17:02:03.123Z.
func appendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	hour, minute, second := t.Clock()
	millis := t.Nanosecond() / int(time.Millisecond)
	dst = append(dst, '"')
	dst = appendPadded(dst, year, 4)
	dst = append(dst, '-')
	dst = appendPadded(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendPadded(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendPadded(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, minute, 2)
	dst = append(dst, ':')
	dst = appendPadded(dst, second, 2)
	dst = append(dst, '.')
	dst = appendPadded(dst, millis, 3)
	return append(dst, 'Z', '"')
}

// appendPadded appends a non-negative v with at least width digits.
func appendPadded(dst []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(dst, buf[i:]...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, so
// the output is always valid JSON whatever the input.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendKey appends `"name":` preceded by a comma unless it opens the object.
func appendKey(dst []byte, name string) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, name...)
	return append(dst, '"', ':')
}

func appendIntField(dst []byte, name string, v int64) []byte {
	return strconv.AppendInt(appendKey(dst, name), v, 10)
}

func appendUintField(dst []byte, name string, v uint64) []byte {
	return strconv.AppendUint(appendKey(dst, name), v, 10)
}

func appendStringField(dst []byte, name, v string) []byte {
	return appendString(appendKey(dst, name), v)
}

func appendTimeField(dst []byte, name string, t time.Time) []byte {
	return appendTime(appendKey(dst, name), t)
}

func appendTokenField(dst []byte, name string, t engine.HoldToken) []byte {
	dst = append(appendKey(dst, name), '"')
	return append(t.AppendText(dst), '"')
}

// appendProduct appends docs/API.md's Product object.
func appendProduct(dst []byte, p *engine.Product) []byte {
	dst = append(dst, '{')
	dst = appendUintField(dst, "id", p.ID)
	dst = appendStringField(dst, "name", p.Name)
	dst = appendIntField(dst, "price_cents", p.PriceCents)
	dst = appendIntField(dst, "total_stock", p.TotalStock)
	dst = appendIntField(dst, "available_stock", p.Available)
	dst = appendIntField(dst, "reserved_stock", p.Reserved)
	dst = appendIntField(dst, "sold_stock", p.Sold)
	dst = appendIntField(dst, "max_per_hold", p.MaxPerHold)
	return append(dst, '}')
}

// appendHoldCreated appends the 201 answer of POST /api/holds.
func appendHoldCreated(dst []byte, h *engine.Hold) []byte {
	dst = append(dst, '{')
	dst = appendTokenField(dst, "hold_token", h.Token)
	dst = appendUintField(dst, "product_id", h.ProductID)
	dst = appendIntField(dst, "qty", h.Qty)
	dst = appendTimeField(dst, "expires_at", h.ExpiresAt)
	return append(dst, '}')
}

// appendHold appends the answer of GET /api/holds/{token}: the created form
// plus status and, once ordered, order_id.
func appendHold(dst []byte, h *engine.Hold) []byte {
	dst = appendHoldCreated(dst, h)
	dst = dst[:len(dst)-1]
	dst = appendStringField(dst, "status", h.Status.String())
	if h.Status == engine.HoldOrdered {
		dst = appendUintField(dst, "order_id", h.OrderID)
	}
	return append(dst, '}')
}

// appendOrder appends docs/API.md's Order object; failure_reason only when set.
func appendOrder(dst []byte, o *engine.Order) []byte {
	dst = append(dst, '{')
	dst = appendUintField(dst, "order_id", o.ID)
	dst = appendUintField(dst, "product_id", o.ProductID)
	dst = appendIntField(dst, "qty", o.Qty)
	dst = appendIntField(dst, "amount_cents", o.AmountCents)
	dst = appendStringField(dst, "status", o.Status.String())
	dst = appendTokenField(dst, "hold_token", o.Token)
	dst = appendTimeField(dst, "created_at", o.CreatedAt)
	dst = appendTimeField(dst, "updated_at", o.UpdatedAt)
	if o.FailureReason != "" {
		dst = appendStringField(dst, "failure_reason", o.FailureReason)
	}
	return append(dst, '}')
}

// appendPaymentResult appends the webhook answer: 202 queued, or 200 with
// the order's status and whether this event changed it.
func appendPaymentResult(dst []byte, r *engine.PaymentReply) []byte {
	dst = append(dst, '{')
	dst = appendUintField(dst, "order_id", r.OrderID)
	if r.Queued {
		dst = appendStringField(dst, "status", "queued")
		return append(dst, '}')
	}
	dst = appendStringField(dst, "status", r.Status.String())
	dst = strconv.AppendBool(appendKey(dst, "applied"), r.Applied)
	return append(dst, '}')
}
