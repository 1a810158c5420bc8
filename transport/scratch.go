package transport

import (
	"hash"
	"sync"

	"github.com/flashsale/flashsale/engine"
	"github.com/valyala/fastjson"
)

// scratch is the per-request working memory: the JSON parser, the output
// buffer, and the signature state. Pooled, so that a request in steady state
// allocates nothing. Everything in it is request-scoped: it goes back to the
// pool when the handler returns, and the response has copied what it needs.
type scratch struct {
	parser   fastjson.Parser
	out      []byte
	products []engine.Product

	mac    hash.Hash // HMAC-SHA256 keyed with macFor's webhook secret, made on first use
	macFor *Server   // the server whose secret keys mac
	sum    [32]byte
	sigT   int64 // the t of the signature verifySignature last accepted
	want   [32]byte
}

// scratchOutBytesMax keeps one huge answer (a very long product list) from
// pinning its buffer in the pool forever.
const scratchOutBytesMax = 1 << 20

var scratchPool = sync.Pool{New: func() any { return &scratch{out: make([]byte, 0, 1024)} }}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

func putScratch(sc *scratch) {
	if cap(sc.out) > scratchOutBytesMax {
		sc.out = make([]byte, 0, 1024)
	}
	if cap(sc.products) > 4096 {
		sc.products = nil
	}
	clear(sc.products[:cap(sc.products)]) // drop references to product names
	sc.products = sc.products[:0]
	scratchPool.Put(sc)
}
