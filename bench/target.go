package bench

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"
)

// parseBaseURL turns a --url value such as "http://127.0.0.1:8080" (a trailing
// "/api" or "/" is accepted) into the host:port the client dials.
func parseBaseURL(raw string) (hostPort string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("--url %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("--url %q: only http:// is supported", raw)
	}
	if p := strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/api"); p != "" {
		return "", fmt.Errorf("--url %q: give the server's base URL, without a path", raw)
	}
	host := u.Host
	if host == "" {
		return "", fmt.Errorf("--url %q: no host", raw)
	}
	if _, _, splitErr := net.SplitHostPort(host); splitErr != nil {
		host = net.JoinHostPort(host, "80")
	}
	return host, nil
}

// target is the server under load and how to talk to it.
type target struct {
	hostPort      string
	hc            *fasthttp.HostClient
	webhookSecret string
	adminToken    string
}

// newTarget returns a target for the server at hostPort with a connection
// pool of maxConns.
func newTarget(hostPort string, maxConns int, webhookSecret, adminToken string) *target {
	return &target{
		hostPort:      hostPort,
		hc:            newHostClient(hostPort, maxConns),
		webhookSecret: webhookSecret,
		adminToken:    adminToken,
	}
}

// close drops the target's idle connections.
func (t *target) close() { t.hc.CloseIdleConnections() }
