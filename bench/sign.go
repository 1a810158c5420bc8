package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strconv"
)

// webhookSigner produces X-Signature values per docs/API.md:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">".
// It is not safe for concurrent use; each worker owns one.
type webhookSigner struct {
	mac    hash.Hash
	sumBuf []byte
	tBuf   []byte
}

// newWebhookSigner returns a signer for secret, or nil when secret is empty
// (the server then expects no signature).
func newWebhookSigner(secret string) *webhookSigner {
	if secret == "" {
		return nil
	}
	return &webhookSigner{mac: hmac.New(sha256.New, []byte(secret))}
}

// appendSignature appends the header value for body signed at unixSec to dst.
func (s *webhookSigner) appendSignature(dst []byte, unixSec int64, body []byte) []byte {
	s.tBuf = strconv.AppendInt(s.tBuf[:0], unixSec, 10)
	s.mac.Reset()
	s.mac.Write(s.tBuf)
	s.mac.Write([]byte{'.'})
	s.mac.Write(body)
	s.sumBuf = s.mac.Sum(s.sumBuf[:0])
	dst = append(dst, "t="...)
	dst = append(dst, s.tBuf...)
	dst = append(dst, ",v1="...)
	return hex.AppendEncode(dst, s.sumBuf)
}
