package transport

import (
	"bytes"
	"encoding/hex"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport/fwdlink"
	"github.com/valyala/fasthttp"
)

// Cluster is what the front end needs of cluster mode; cmd implements it
// over the Raft node and the partitions' engines. Without one (Options.
// Cluster nil) the server fronts its single engine.
type Cluster interface {
	// NodeID is this node's id.
	NodeID() uint64
	// Partitions is the partition count: product p lives in partition
	// p mod Partitions, order o in o mod Partitions.
	Partitions() int
	// Engine returns this node's engine of partition p and whether this
	// node leads p, so that the engine takes commands. A follower's
	// engine is a replica: only its product reads may be used, after
	// ReadBarrier.
	Engine(p int) (eng *engine.Engine, leading bool)
	// LeaderHTTP is the HTTP address of p's leader, "" when none is known.
	LeaderHTTP(p int) string
	// ReadBarrier waits until this node's engine of p reflects everything
	// committed before the call; an error means it could not (no leader,
	// no majority) within the contract's bound.
	ReadBarrier(p int) error
	// ReadBarrierAll is ReadBarrier for every partition at once.
	ReadBarrierAll() error
	// Healthy reports whether every partition has a leader this node can
	// reach (itself included).
	Healthy() bool
	// AppendStatus appends the JSON of GET /cluster.
	AppendStatus(dst []byte) []byte
	// State returns this replica's applied index of p and the SHA-256 of
	// its canonical state as of that index.
	State(p int) (appliedIndex uint64, digest [32]byte, err error)
}

// Forwarding limits. A forwarded request that has not been answered within
// forwardTimeout gets 503 unavailable: the contract's 2 s bound on an
// answer while a partition has no leader, less the time to get here.
const (
	forwardTimeout     = 1500 * time.Millisecond
	forwardConnsMax    = 512 // connections of this node to each leader
	forwardIdleTimeout = 30 * time.Second
)

// headerForwardedBy marks a request forwarded by a node (its id). A node
// that receives one for a partition it does not lead answers 503 rather
// than forwarding again: leadership moved, and the client retries.
const headerForwardedBy = "X-Flashsale-Forwarded-By"

// forwarder holds, per leader address, one multiplexed link (fwdlink),
// which carries forwarded requests while it is up, and a keep-alive
// connection pool, which carries them while the link is down.
type forwarder struct {
	mu      sync.Mutex
	clients map[string]*fasthttp.HostClient
	links   map[string]*fwdlink.Client
	served  map[net.Conn]bool // links that peers opened to this node
	closed  bool
}

// serve runs the leader's side of a link on c until it breaks or close.
func (f *forwarder) serve(c net.Conn, handler fasthttp.RequestHandler) {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		c.Close()
		return
	}
	if f.served == nil {
		f.served = map[net.Conn]bool{}
	}
	f.served[c] = true
	f.mu.Unlock()
	fwdlink.Serve(c, handler)
	f.mu.Lock()
	delete(f.served, c)
	f.mu.Unlock()
}

// close breaks every link, both ways, and opens no more.
func (f *forwarder) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, l := range f.links {
		l.Close()
	}
	for c := range f.served {
		c.Close()
	}
}

// CloseForwarding breaks the forwarding links this node opened and those
// peers opened to it (fasthttp's Shutdown does not see them: they left
// its connections when they were upgraded). Forwarded requests fall back
// to the connection pool afterwards. Call it after the HTTP server's
// Shutdown.
func (s *Server) CloseForwarding() { s.fwd.close() }

// closedLink is a link closed for good, which answers fwdlink.ErrDown.
var closedLink = func() *fwdlink.Client { c := &fwdlink.Client{}; c.Close(); return c }()

// link returns the link to addr; header identifies this node as a peer.
func (f *forwarder) link(addr string, nodeID uint64) *fwdlink.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.links[addr]
	if l == nil {
		if f.links == nil {
			f.links = map[string]*fwdlink.Client{}
		}
		if f.closed {
			return closedLink
		}
		l = &fwdlink.Client{Addr: addr, Header: headerForwardedBy + ": " + strconv.FormatUint(nodeID, 10)}
		f.links[addr] = l
	}
	return l
}

func (f *forwarder) client(addr string) *fasthttp.HostClient {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.clients[addr]
	if c == nil {
		if f.clients == nil {
			f.clients = map[string]*fasthttp.HostClient{}
		}
		c = &fasthttp.HostClient{Addr: addr, MaxConns: forwardConnsMax, MaxIdleConnDuration: forwardIdleTimeout,
			ReadTimeout: forwardTimeout, WriteTimeout: forwardTimeout,
			DisableHeaderNamesNormalizing: true, DisablePathNormalizing: true, NoDefaultUserAgentHeader: true}
		f.clients[addr] = c
	}
	return c
}

// partitionOf names the partition of a product or order id.
func (s *Server) partitionOf(id uint64) int {
	return int(id % uint64(s.cluster.Partitions()))
}

// leader returns the engine that takes commands for the partition of id
// (a product id or an order id). In cluster mode, when this node does not
// lead that partition, it has answered the request itself, by relaying
// the leader's answer or with 503 unavailable, and returns ok false.
func (s *Server) leader(ctx *fasthttp.RequestCtx, sc *scratch, id uint64) (eng *engine.Engine, ok bool) {
	if s.cluster == nil {
		return s.eng, true
	}
	return s.leaderOf(ctx, sc, s.partitionOf(id))
}

func (s *Server) leaderOf(ctx *fasthttp.RequestCtx, sc *scratch, p int) (*engine.Engine, bool) {
	eng, leading := s.cluster.Engine(p)
	if leading {
		return eng, true
	}
	addr := s.cluster.LeaderHTTP(p)
	if addr == "" || len(ctx.Request.Header.Peek(headerForwardedBy)) > 0 {
		writeError(ctx, sc, &errUnavailable)
		return nil, false
	}
	s.forward(ctx, sc, addr)
	return nil, false
}

// forward relays the request to addr and its answer, status, headers and
// body unchanged, to the client.
func (s *Server) forward(ctx *fasthttp.RequestCtx, sc *scratch, addr string) {
	// The request goes out as it came in, and the leader's answer is read
	// straight into this request's response: no copy of either.
	ctx.Request.Header.SetBytesV(headerForwardedBy, strconv.AppendUint(sc.out[:0], s.cluster.NodeID(), 10))
	// The pool keeps its connection to the leader. (fasthttp read the
	// client's own Connection: close when it read the request, and still
	// closes the client's connection after this answer.)
	ctx.Request.Header.ResetConnectionClose()
	// The link first; the pool only while the link is down (nothing was
	// sent on it then). A full link or one that broke with the request in
	// flight is 503 unavailable, like a failed exchange of the pool.
	err := s.fwd.link(addr, s.cluster.NodeID()).Do(&ctx.Request, &ctx.Response, forwardTimeout)
	if err == fwdlink.ErrDown {
		s.forwardedPool.Inc()
		err = s.fwd.client(addr).DoTimeout(&ctx.Request, &ctx.Response, forwardTimeout)
	}
	if err != nil {
		s.forwardFailures.Inc()
		ctx.Response.Reset()
		writeError(ctx, sc, &errUnavailable)
	} else {
		s.forwarded.Inc()
		ctx.Response.SkipBody = ctx.IsHead()
	}
}

// forwardLink is GET /cluster/forward-link: a peer (it sends
// headerForwardedBy) upgrades its connection to a forwarding link, whose
// requests run through the same Handler as direct ones. Anyone else gets
// 404, as without cluster mode.
func (s *Server) forwardLink(ctx *fasthttp.RequestCtx, sc *scratch) {
	if s.cluster == nil || len(ctx.Request.Header.Peek(headerForwardedBy)) == 0 ||
		!bytes.Equal(ctx.Request.Header.Peek(fasthttp.HeaderUpgrade), []byte(fwdlink.UpgradeProtocol)) {
		writeError(ctx, sc, &errNotFound)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	ctx.Response.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	ctx.Response.Header.Set(fasthttp.HeaderUpgrade, fwdlink.UpgradeProtocol)
	ctx.Hijack(func(c net.Conn) { s.fwd.serve(c, s.Handler) })
}

// productRead returns the engine whose published counts may answer a read
// of product id: after a read barrier, this node's engine of its
// partition, whether it leads it or follows. ok false: answered 503.
func (s *Server) productRead(ctx *fasthttp.RequestCtx, sc *scratch, id uint64) (*engine.Engine, bool) {
	if s.cluster == nil {
		return s.eng, true
	}
	p := s.partitionOf(id)
	if err := s.cluster.ReadBarrier(p); err != nil {
		writeError(ctx, sc, &errUnavailable)
		return nil, false
	}
	eng, _ := s.cluster.Engine(p)
	return eng, true
}

// allProducts appends every product of every partition, ordered by id,
// each partition read after its read barrier. ok false: answered 503.
func (s *Server) allProducts(ctx *fasthttp.RequestCtx, sc *scratch, dst []engine.Product) ([]engine.Product, bool) {
	if s.cluster == nil {
		return s.eng.Products(dst), true
	}
	if err := s.cluster.ReadBarrierAll(); err != nil {
		writeError(ctx, sc, &errUnavailable)
		return dst, false
	}
	for p := 0; p < s.cluster.Partitions(); p++ {
		eng, _ := s.cluster.Engine(p)
		dst = eng.Products(dst)
	}
	slices.SortFunc(dst, func(a, b engine.Product) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return dst, true
}

// engines returns every engine this node holds, for metrics.
func (s *Server) engines() []*engine.Engine {
	if s.cluster == nil {
		return []*engine.Engine{s.eng}
	}
	out := make([]*engine.Engine, s.cluster.Partitions())
	for p := range out {
		out[p], _ = s.cluster.Engine(p)
	}
	return out
}

// adminPartition picks the partition of a new admin-created product: the
// next of those this node leads, so that the product is created without a
// hop, or the next of all when it leads none.
func (s *Server) adminPartition() int {
	n := s.cluster.Partitions()
	start := int(s.adminNext.Add(1))
	for i := 0; i < n; i++ {
		p := (start + i) % n
		if _, leading := s.cluster.Engine(p); leading {
			return p
		}
	}
	return start % n
}

// clusterStatus is GET /cluster.
func (s *Server) clusterStatus(ctx *fasthttp.RequestCtx, sc *scratch) {
	if s.cluster == nil {
		writeError(ctx, sc, &errNotFound)
		return
	}
	sc.out = s.cluster.AppendStatus(sc.out[:0])
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}

const prefixClusterState = "/cluster/state/"

// clusterState is GET /cluster/state/{partition}: this replica's applied
// index and state digest, so that tests and operators can check that the
// replicas agree.
func (s *Server) clusterState(ctx *fasthttp.RequestCtx, sc *scratch) {
	if s.cluster == nil {
		writeError(ctx, sc, &errNotFound)
		return
	}
	p, err := strconv.Atoi(string(pathParam(ctx, prefixClusterState, "")))
	if err != nil || p < 0 || p >= s.cluster.Partitions() {
		writeError(ctx, sc, &errNotFound)
		return
	}
	index, digest, err := s.cluster.State(p)
	if err != nil {
		writeError(ctx, sc, &errUnavailable)
		return
	}
	out := append(sc.out[:0], `{"partition":`...)
	out = strconv.AppendInt(out, int64(p), 10)
	out = append(out, `,"applied_index":`...)
	out = strconv.AppendUint(out, index, 10)
	out = append(out, `,"digest":"`...)
	out = hex.AppendEncode(out, digest[:])
	sc.out = append(out, `"}`...)
	writeJSON(ctx, fasthttp.StatusOK, sc.out)
}
