package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// recordKind says what a record does. Values are stored in the log: never
// renumber them, only add new ones.
type recordKind uint8

const (
	recProductCreated   recordKind = 1
	recProductRestocked recordKind = 2
	recHoldCreated      recordKind = 3
	recHoldRejected     recordKind = 4 // a keyed hold refused for stock: its 409 is replayed under the key
	recHoldExpired      recordKind = 5
	recOrderCreated     recordKind = 6
	recPaymentApplied   recordKind = 7 // a webhook for an existing order, applied or not
	recOrderTimedOut    recordKind = 8
	recWebhookQueued    recordKind = 9 // a webhook for an order that does not exist yet
	recKindEnd          recordKind = 10
)

// record is one state change. It carries everything needed to apply it,
// timestamps included, so replay never reads the clock. Which fields are
// meaningful depends on kind; the codec writes only those.
type record struct {
	kind       recordKind
	atNanos    int64 // when the change happened (Unix ns)
	product    uint64
	qty        int64
	holdSeq    uint64   // the hold's sequence number within its product
	secret     [16]byte // hold token secret (recHoldCreated)
	orderID    uint64
	deadline   int64 // hold expires_at, order payment deadline (0 = none), or queued webhook expiry (Unix ns)
	success    bool
	reason     string // payment failure reason
	key        string // idempotency key, "" when the request had none
	available  int64  // recHoldRejected: units available at that instant
	name       string // recProductCreated
	priceCents int64  // recProductCreated
	maxPerHold int64  // recProductCreated
}

var errRecordShort = errors.New("engine: record truncated")

// appendRecord appends the binary form of r to dst: kind, then the kind's
// fields as varints, fixed 16-byte secrets and length-prefixed strings.
func appendRecord(dst []byte, r *record) []byte {
	dst = append(dst, byte(r.kind))
	dst = binary.AppendVarint(dst, r.atNanos)
	dst = binary.AppendUvarint(dst, r.product)
	switch r.kind {
	case recProductCreated:
		dst = appendString(dst, r.name)
		dst = binary.AppendVarint(dst, r.priceCents)
		dst = binary.AppendVarint(dst, r.qty)
		dst = binary.AppendVarint(dst, r.maxPerHold)
	case recProductRestocked:
		dst = binary.AppendVarint(dst, r.qty)
	case recHoldCreated:
		dst = binary.AppendUvarint(dst, r.holdSeq)
		dst = append(dst, r.secret[:]...)
		dst = binary.AppendVarint(dst, r.qty)
		dst = binary.AppendVarint(dst, r.deadline)
		dst = appendString(dst, r.key)
	case recHoldRejected:
		dst = binary.AppendVarint(dst, r.qty)
		dst = binary.AppendVarint(dst, r.available)
		dst = appendString(dst, r.key)
	case recHoldExpired:
		dst = binary.AppendUvarint(dst, r.holdSeq)
	case recOrderCreated:
		dst = binary.AppendUvarint(dst, r.holdSeq)
		dst = binary.AppendUvarint(dst, r.orderID)
		dst = binary.AppendVarint(dst, r.deadline)
	case recPaymentApplied, recWebhookQueued:
		dst = binary.AppendUvarint(dst, r.orderID)
		dst = appendBool(dst, r.success)
		dst = appendString(dst, r.reason)
		dst = appendString(dst, r.key)
		if r.kind == recWebhookQueued {
			dst = binary.AppendVarint(dst, r.deadline)
		}
	case recOrderTimedOut:
		dst = binary.AppendUvarint(dst, r.orderID)
	default:
		panic(fmt.Sprintf("engine: appendRecord of unknown kind %d", r.kind))
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// decodeRecord parses src, made by appendRecord, into r. It rejects unknown
// kinds, truncated input and trailing bytes.
func decodeRecord(src []byte, r *record) error {
	*r = record{}
	d := decoder{src: src}
	r.kind = recordKind(d.byte())
	if r.kind == 0 || r.kind >= recKindEnd {
		return fmt.Errorf("engine: unknown record kind %d", r.kind)
	}
	r.atNanos = d.varint()
	r.product = d.uvarint()
	switch r.kind {
	case recProductCreated:
		r.name = d.string()
		r.priceCents = d.varint()
		r.qty = d.varint()
		r.maxPerHold = d.varint()
	case recProductRestocked:
		r.qty = d.varint()
	case recHoldCreated:
		r.holdSeq = d.uvarint()
		d.secret(&r.secret)
		r.qty = d.varint()
		r.deadline = d.varint()
		r.key = d.string()
	case recHoldRejected:
		r.qty = d.varint()
		r.available = d.varint()
		r.key = d.string()
	case recHoldExpired:
		r.holdSeq = d.uvarint()
	case recOrderCreated:
		r.holdSeq = d.uvarint()
		r.orderID = d.uvarint()
		r.deadline = d.varint()
	case recPaymentApplied, recWebhookQueued:
		r.orderID = d.uvarint()
		r.success = d.bool()
		r.reason = d.string()
		r.key = d.string()
		if r.kind == recWebhookQueued {
			r.deadline = d.varint()
		}
	case recOrderTimedOut:
		r.orderID = d.uvarint()
	}
	if d.err != nil {
		return d.err
	}
	if d.off != len(src) {
		return fmt.Errorf("engine: %d trailing bytes after record kind %d", len(src)-d.off, r.kind)
	}
	return nil
}

// decoder reads the fields of one record; the first failure sticks in err.
type decoder struct {
	src []byte
	off int
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil || d.off >= len(d.src) {
		d.err = errRecordShort
		return 0
	}
	b := d.src[d.off]
	d.off++
	return b
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	if d.err == nil {
		d.err = errors.New("engine: record holds a bool that is neither 0 nor 1")
	}
	return false
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.src[d.off:])
	if n <= 0 || (n > 1 && d.src[d.off+n-1] == 0) { // short, overlong, or not minimal
		d.err = errRecordShort
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.src[d.off:])
	if n <= 0 || (n > 1 && d.src[d.off+n-1] == 0) { // short, overlong, or not minimal
		d.err = errRecordShort
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.src)-d.off) {
		d.err = errRecordShort
		return ""
	}
	s := string(d.src[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) secret(dst *[16]byte) {
	if d.err != nil {
		return
	}
	if len(d.src)-d.off < len(dst) {
		d.err = errRecordShort
		return
	}
	copy(dst[:], d.src[d.off:])
	d.off += len(dst)
}
