package transport

import "testing"

// TestHealthAfterLogFailure: once the binary reports its log failed (Fail),
// /healthz is 503 unavailable, so a load balancer stops sending the crowd
// to a server that can acknowledge nothing, also while it drains.
func TestHealthAfterLogFailure(t *testing.T) {
	ts := startServer(t, nil)
	if h := ts.do("GET", "/healthz", ""); h.status != 200 {
		t.Fatalf("healthz before the failure: %d %s", h.status, h.body)
	}
	ts.srv.Fail()
	expectError(t, ts.do("GET", "/healthz", ""), 503, "unavailable", "")
	ts.srv.Drain()
	expectError(t, ts.do("GET", "/healthz", ""), 503, "unavailable", "")
}
