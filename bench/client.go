package bench

import (
	"time"

	"github.com/valyala/fasthttp"
)

// Client timeouts. A request that takes longer than requestTimeout counts as
// a transport error (status 0) with its full waiting time as latency.
const (
	requestTimeout     = 10 * time.Second
	connWaitTimeout    = 10 * time.Second
	idleConnLifetime   = 30 * time.Second
	responseBodyMaxLen = 8 << 20
)

// newHostClient returns a fasthttp client for hostPort that keeps at most
// maxConns connections; requests beyond that wait for a free connection
// instead of failing, so a burst of concurrent duplicates never errors out.
func newHostClient(hostPort string, maxConns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                     hostPort,
		Name:                     "flashbench",
		MaxConns:                 maxConns,
		MaxConnWaitTimeout:       connWaitTimeout,
		ReadTimeout:              requestTimeout,
		WriteTimeout:             requestTimeout,
		MaxIdleConnDuration:      idleConnLifetime,
		MaxResponseBodySize:      responseBodyMaxLen,
		NoDefaultUserAgentHeader: true,
		DisablePathNormalizing:   true,
	}
}
