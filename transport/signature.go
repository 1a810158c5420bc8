package transport

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// signatureTolerance is how far a webhook's t may be from the server's clock
// either way (docs/API.md: 5 minutes), which bounds the replay window of a
// captured request.
const signatureTolerance = 5 * time.Minute

// signedDot separates t from the body in the signed text; a package-level
// slice, because a literal passed to hash.Hash.Write would escape and
// allocate on every request.
var signedDot = []byte{'.'}

// signatureTimestampDigitsMax keeps t parsable as int64 seconds.
const signatureTimestampDigitsMax = 18

// verifySignature checks an X-Signature header
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">" against the
// webhook secret. Several v1 entries are allowed (a provider rotating
// secrets sends one per secret); one match is enough. Unknown entries are
// ignored. The comparison is constant-time. On success sc.sum holds the
// HMAC computed for the webhook and sc.sigT its t, for the replay check
// (sigreplay.go).
func (s *Server) verifySignature(sc *scratch, header, body []byte) bool {
	var ts []byte
	var v1 [4][]byte
	n := 0
	for len(header) > 0 {
		var part []byte
		part, header, _ = bytes.Cut(header, []byte{','})
		part = bytes.TrimSpace(part)
		name, value, ok := bytes.Cut(part, []byte{'='})
		switch {
		case !ok:
			return false
		case string(name) == "t":
			if ts != nil {
				return false
			}
			ts = value
		case string(name) == "v1" && n < len(v1):
			v1[n] = value
			n++
		}
	}
	t, ok := parseUnixSeconds(ts)
	if !ok || n == 0 {
		return false
	}
	skew := s.now().Sub(time.Unix(t, 0))
	if skew > signatureTolerance || skew < -signatureTolerance {
		return false
	}
	if sc.mac == nil || sc.macFor != s {
		// The scratch pool is process-wide: a MAC keyed for another
		// Server (another secret) must not verify this one's webhooks.
		sc.mac = hmac.New(sha256.New, s.webhookSecret)
		sc.macFor = s
	}
	sc.mac.Reset()
	sc.mac.Write(ts)
	sc.mac.Write(signedDot)
	sc.mac.Write(body)
	sum := sc.mac.Sum(sc.sum[:0])
	match := false
	for _, hexSig := range v1[:n] {
		if len(hexSig) != 2*sha256.Size {
			continue
		}
		if _, err := hex.Decode(sc.want[:], hexSig); err != nil {
			continue
		}
		if hmac.Equal(sum, sc.want[:]) {
			match = true
		}
	}
	sc.sigT = t
	return match
}

func parseUnixSeconds(s []byte) (int64, bool) {
	if len(s) == 0 || len(s) > signatureTimestampDigitsMax {
		return 0, false
	}
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
