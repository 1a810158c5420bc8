package apicheck

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"time"
)

// Proxy is a checking reverse proxy for end-to-end tests: clients talk to
// URL, every request goes to the target server unchanged, every answer
// comes back unchanged, and each exchange is checked against the document
// on the way. A test points its client at URL and fails on Errors at the
// end.
type Proxy struct {
	URL string

	target string
	client *http.Client
	server *http.Server
	served chan struct{}
	tally  Tally
}

// proxyBodyBytesMax bounds what the proxy reads of one body: far above
// the server's 64 KiB request limit, so that the server, not the proxy,
// is what refuses a large body.
const proxyBodyBytesMax = 4 << 20

// proxyTimeout bounds one relayed exchange.
const proxyTimeout = 30 * time.Second

// hopByHop are headers that belong to one connection, not to the exchange.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade"}

// NewProxy starts a checking proxy on a loopback port in front of
// targetURL (http://host:port).
func NewProxy(targetURL string) (*Proxy, error) {
	if _, err := Default(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		URL:    "http://" + ln.Addr().String(),
		target: targetURL,
		client: &http.Client{
			Timeout: proxyTimeout,
			Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024,
				IdleConnTimeout: 30 * time.Second, DisableCompression: true},
		},
		served: make(chan struct{}),
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: proxyTimeout}
	go func() {
		defer close(p.served)
		_ = p.server.Serve(ln)
	}()
	return p, nil
}

// Close stops the proxy and closes its connections to the target.
func (p *Proxy) Close() {
	_ = p.server.Close()
	<-p.served
	p.client.CloseIdleConnections()
}

// Checked is how many exchanges were checked.
func (p *Proxy) Checked() int64 { return p.tally.Checked() }

// Errors returns the first breaks found and how many there were in all.
func (p *Proxy) Errors() ([]error, int) { return p.tally.Errors() }

// ServeHTTP relays one exchange and checks it.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, proxyBodyBytesMax))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	for _, h := range hopByHop {
		out.Header.Del(h)
	}
	resp, err := p.client.Do(out)
	if err != nil {
		// The target is gone (a test may kill it): the client sees a
		// broken connection, as it would without the proxy.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, herr := hj.Hijack(); herr == nil {
				_ = conn.Close()
				return
			}
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, proxyBodyBytesMax))
	resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, h := range hopByHop {
		w.Header().Del(h)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(respBody)

	p.tally.CheckHTTP(r, body, resp, respBody)
}
