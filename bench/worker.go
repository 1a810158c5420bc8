package bench

import (
	"math/rand/v2"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

// requestOptions are the optional headers of one request.
type requestOptions struct {
	idempotencyKey []byte // sent as Idempotency-Key when non-nil
	sign           bool   // add X-Signature when a webhook secret is set
	admin          bool   // add the admin bearer token
	skipParseOK    bool   // do not parse a 2xx body (pure reads)
}

// reply is the outcome of one request. body and json are owned by the worker
// and valid only until its next call; copy what must outlive that.
type reply struct {
	status   int // 0: no answer (transport error or timeout)
	err      error
	body     []byte
	json     *fastjson.Value // nil when the body is not JSON or was not parsed
	replayed bool            // the Idempotent-Replayed: true header was present
	latency  time.Duration   // as recorded: from the intended send time in open loop
}

// ok reports a 2xx answer.
func (r *reply) ok() bool { return r.status >= 200 && r.status < 300 }

// errorCode returns the contract's "error" field, or "" if there is none.
func (r *reply) errorCode() string {
	if r.json == nil {
		return ""
	}
	return string(r.json.GetStringBytes("error"))
}

// errorCodeIs reports whether the contract's "error" field is code, without
// copying the field.
func (r *reply) errorCodeIs(code string) bool {
	return r.json != nil && string(r.json.GetStringBytes("error")) == code
}

// worker is one simulated client: it owns a request, a response, a JSON
// parser and scratch buffers, so steady-state requests allocate nothing.
// A worker is used by one goroutine at a time.
type worker struct {
	id         int
	hc         *fasthttp.HostClient
	host       string
	shard      *recorderShard
	signer     *webhookSigner
	secret     string
	adminToken string
	seq        int64 // numbers this worker's idempotency keys
	rng        *rand.Rand

	req    fasthttp.Request
	resp   fasthttp.Response
	parser fastjson.Parser

	pathBuf []byte
	bodyBuf []byte
	keyBuf  []byte
	sigBuf  []byte

	// siblings are extra workers sharing this one's connection pool and
	// statistics, for requests it sends concurrently with itself.
	siblings []*worker

	// intended, when set, is the open-loop send time of the next request:
	// its latency is measured from here, not from the actual send, so that
	// waiting behind a stalled server is counted (no coordinated omission).
	intended time.Time
}

var (
	methodGet       = "GET"
	methodPost      = "POST"
	jsonContentType = []byte("application/json")
)

// newWorker returns worker number id of a run; seed makes its choices
// reproducible.
func newWorker(id int, t *target, rec *recorder, seed int64) *worker {
	return &worker{
		id:         id,
		hc:         t.hc,
		host:       t.hostPort,
		shard:      rec.shard(id),
		signer:     newWebhookSigner(t.webhookSecret),
		secret:     t.webhookSecret,
		adminToken: t.adminToken,
		rng:        rand.New(rand.NewPCG(uint64(seed), uint64(id)+1)),
	}
}

// call sends one request and records its latency, status and error code
// under ep.
func (w *worker) call(ep Endpoint, method string, path, body []byte, opt requestOptions) reply {
	req := &w.req
	req.Reset()
	req.Header.SetMethod(method)
	req.SetRequestURIBytes(path)
	req.Header.SetHost(w.host)
	if body != nil {
		req.Header.SetContentTypeBytes(jsonContentType)
		req.SetBodyRaw(body)
	}
	if opt.idempotencyKey != nil {
		req.Header.SetBytesV("Idempotency-Key", opt.idempotencyKey)
	}
	if opt.sign && w.signer != nil {
		w.sigBuf = w.signer.appendSignature(w.sigBuf[:0], time.Now().Unix(), body)
		req.Header.SetBytesV("X-Signature", w.sigBuf)
	}
	if opt.admin && w.adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+w.adminToken)
	}

	start := time.Now()
	if !w.intended.IsZero() {
		start = w.intended
		w.intended = time.Time{}
	}
	err := w.hc.Do(req, &w.resp)
	latency := time.Since(start)

	r := reply{err: err, latency: latency}
	if err == nil {
		r.status = w.resp.StatusCode()
		r.body = w.resp.Body()
		r.replayed = string(w.resp.Header.Peek("Idempotent-Replayed")) == "true"
		if !(opt.skipParseOK && r.ok()) {
			if v, perr := w.parser.ParseBytes(r.body); perr == nil {
				r.json = v
			}
		}
	}
	var code []byte
	if r.json != nil && !r.ok() {
		code = r.json.GetStringBytes("error")
	}
	w.shard.record(ep, r.status, code, latency)
	return r
}

// sibling returns this worker's i-th sibling, creating it on first use.
func (w *worker) sibling(i int) *worker {
	for len(w.siblings) <= i {
		w.siblings = append(w.siblings, &worker{
			id:         w.id,
			hc:         w.hc,
			host:       w.host,
			shard:      w.shard,
			signer:     newWebhookSigner(w.secret),
			secret:     w.secret,
			adminToken: w.adminToken,
			rng:        rand.New(rand.NewPCG(w.rng.Uint64(), uint64(len(w.siblings)))),
		})
	}
	return w.siblings[i]
}
