package linearize

import (
	"math"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Never is the return time of an operation that got no answer: it may take
// effect at any point after its call.
const Never = int64(math.MaxInt64)

// Recorder collects a history: each request's client, input, output, and
// call and return times in nanoseconds since the recorder started, and the
// answer's Meta as Metadata. It is safe for concurrent use.
type Recorder struct {
	start     time.Time // with the monotonic clock reading
	startWall time.Time // the wall clock only, to place server timestamps
	mu        sync.Mutex
	ops       []porcupine.Operation
	seq       int
	deaths    map[string]int64 // server URL → when it was known dead
}

// NewRecorder starts the history's clock.
func NewRecorder() *Recorder {
	now := time.Now()
	return &Recorder{start: now, startWall: now.Round(0)}
}

func (r *Recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *Recorder) nextSeq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

// Do sends in through c on behalf of client and records it, unless it was
// never sent. An unanswered request is recorded with return time Never
// (see ServerDied), except a read, which changes nothing and is left out.
func (r *Recorder) Do(c *Client, client int, in Input) (Output, bool) {
	in.Seq = r.nextSeq()
	call := r.now()
	out, at, sent := c.Do(in)
	ret := r.now()
	if !sent {
		return out, false
	}
	if out.Unknown {
		if isRead(in.Kind) {
			return out, true
		}
		ret = Never
	}
	r.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: at})
	return out, true
}

// DoProducts reads the product list and records one product read per id,
// all with the list's times.
func (r *Recorder) DoProducts(c *Client, client int, ids []uint64) bool {
	call := r.now()
	outs, sent := c.Products(ids)
	ret := r.now()
	if !sent || outs == nil {
		return sent
	}
	for i, id := range ids {
		in := Input{Kind: KindGetProduct, ProductID: id, Seq: r.nextSeq()}
		r.add(porcupine.Operation{ClientId: client, Input: in, Call: call, Output: outs[i], Return: ret})
	}
	return true
}

func isRead(k Kind) bool { return k == KindGetHold || k == KindGetOrder || k == KindGetProduct }

// ServerDied tells the recorder that the server at url is gone for good
// (killed and reaped). An unanswered request sent to it took effect before
// now or never: History gives it this return time instead of Never, and
// leaves out one called after now, which never reached a live server.
func (r *Recorder) ServerDied(url string) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deaths == nil {
		r.deaths = map[string]int64{}
	}
	r.deaths[url] = now
}

// Record adds an operation made elsewhere (tests build histories by hand).
func (r *Recorder) Record(op porcupine.Operation) {
	in := op.Input.(Input)
	in.Seq = r.nextSeq()
	op.Input = in
	r.add(op)
}

func (r *Recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

// History returns a copy of the operations recorded so far, unanswered
// requests to dead servers settled (see ServerDied).
func (r *Recorder) History() []porcupine.Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := make([]porcupine.Operation, 0, len(r.ops))
	for _, op := range r.ops {
		meta, _ := op.Metadata.(Meta)
		died, dead := r.deaths[meta.Server]
		if op.Return == Never && dead {
			if op.Call > died {
				continue
			}
			op.Return = died
		}
		h = append(h, op)
	}
	return h
}

// Len is the number of operations recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}

// setHints fills HintOrderID of unanswered order requests: the order id
// each token's hold has (see Input.HintOrderID).
func (r *Recorder) setHints(orderOf map[string]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, op := range r.ops {
		in := op.Input.(Input)
		if in.Kind == KindOrder && op.Output.(Output).Unknown {
			in.HintOrderID = orderOf[in.Token]
			r.ops[i].Input = in
		}
	}
}
