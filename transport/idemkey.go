package transport

import "github.com/valyala/fasthttp"

// idempotencyKeyBytesMax is docs/API.md's longest Idempotency-Key.
const idempotencyKeyBytesMax = 255

var hdrIdempotencyKey = []byte("Idempotency-Key")

// idempotencyKey returns the request's Idempotency-Key. present is false
// when the header was not sent at all; valid is false when it was sent but
// is empty, longer than 255 bytes, or holds anything but visible ASCII
// (0x21 to 0x7e). The key aliases the request and must not outlive it.
func idempotencyKey(ctx *fasthttp.RequestCtx) (key []byte, present, valid bool) {
	key = ctx.Request.Header.PeekBytes(hdrIdempotencyKey)
	if len(key) == 0 {
		// fasthttp gives an empty value for both "absent" and "sent empty";
		// only the rare empty case pays for the second look.
		present = len(ctx.Request.Header.PeekAll("Idempotency-Key")) > 0
		return nil, present, false
	}
	if len(key) > idempotencyKeyBytesMax {
		return nil, true, false
	}
	for _, c := range key {
		if c < 0x21 || c > 0x7e {
			return nil, true, false
		}
	}
	return key, true, true
}
