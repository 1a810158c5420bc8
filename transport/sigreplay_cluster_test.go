package transport

import (
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
)

// fakeCluster is a one-partition cluster as one node sees it: it leads the
// partition (its engine takes commands) or forwards to leaderHTTP.
type fakeCluster struct {
	id         uint64
	eng        *engine.Engine
	leading    bool
	leaderHTTP string
}

func (c *fakeCluster) NodeID() uint64                      { return c.id }
func (c *fakeCluster) Partitions() int                     { return 1 }
func (c *fakeCluster) Engine(int) (*engine.Engine, bool)   { return c.eng, c.leading }
func (c *fakeCluster) LeaderHTTP(int) string               { return c.leaderHTTP }
func (c *fakeCluster) ReadBarrier(int) error               { return nil }
func (c *fakeCluster) ReadBarrierAll() error               { return nil }
func (c *fakeCluster) Healthy() bool                       { return true }
func (c *fakeCluster) AppendStatus(dst []byte) []byte      { return append(dst, "{}"...) }
func (c *fakeCluster) State(int) (uint64, [32]byte, error) { return 0, [32]byte{}, nil }
func startClusterNode(t *testing.T, c *fakeCluster) *testServer {
	ts := startServer(t, func(s *serverSetup) {
		s.opts.WebhookSecret = []byte(testSecret)
		s.opts.Cluster = c
	})
	c.eng = ts.eng
	return ts
}

// TestWebhookSignatureReplayedInCluster: the node that applies a webhook
// (its partition's leader) checks its signature for replays, after the
// forward. A delivery forwarded by a follower is not refused by the leader
// as a replay of itself, its retry through either node replays the answer,
// and the same signature under another key is 401 signature_replayed
// whichever node it is sent to.
func TestWebhookSignatureReplayedInCluster(t *testing.T) {
	lc := &fakeCluster{id: 1, leading: true}
	leader := startClusterNode(t, lc)
	follower := startClusterNode(t, &fakeCluster{id: 2, leaderHTTP: strings.TrimPrefix(leader.base, "http://")})

	id := leader.order(leader.hold(1, 1))
	body := `{"status":"success","order_id":` + id + `}`
	sig := sign(testSecret, time.Now().Unix(), body)
	post := func(ts *testServer, key string) response {
		return ts.do("POST", "/api/payments/webhook", body, "Idempotency-Key", key, "X-Signature", sig)
	}
	first := post(follower, "evt-1")
	if m := expectStatus(t, first, 200); m["applied"] != true {
		t.Fatalf("forwarded first delivery: %s", first.body)
	}
	for _, ts := range []*testServer{leader, follower} {
		r := post(ts, "evt-1")
		if r.status != 200 || string(r.body) != string(first.body) || r.header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("retry under the same key: %d %s (replayed %q)", r.status, r.body, r.header.Get("Idempotent-Replayed"))
		}
	}
	expectError(t, post(leader, "evt-2"), 401, "signature_replayed", "")
	expectError(t, post(follower, "evt-3"), 401, "signature_replayed", "")
	if got := leader.eng.Stats().WebhooksApplied.Load(); got != 1 {
		t.Fatalf("applied %d times", got)
	}
	mac, ts := macOf(body, sig)
	if follower.srv.signatures.check(mac, ts, []byte("probe"), time.Now().Unix()) != signatureFirst {
		t.Fatal("the follower recorded the signature it only forwarded")
	}
}

// macOf recomputes the HMAC and t the server keeps for a valid signature.
func macOf(body, sig string) ([]byte, int64) {
	sc := &scratch{}
	s := &Server{webhookSecret: []byte(testSecret), now: time.Now}
	if !s.verifySignature(sc, []byte(sig), []byte(body)) {
		panic("macOf: invalid signature")
	}
	return sc.sum[:], sc.sigT
}
