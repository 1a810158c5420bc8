package transport

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// A follower relays the leader's answer as the leader gave it, and a
// client that asked to close its connection gets it closed after the
// answer, although the follower keeps its own connection to the leader.
func TestForwardRelaysTheAnswerAndHonoursConnectionClose(t *testing.T) {
	leader := startClusterNode(t, &fakeCluster{id: 1, leading: true})
	follower := startClusterNode(t, &fakeCluster{id: 2, leaderHTTP: strings.TrimPrefix(leader.base, "http://")})

	direct := leader.do("GET", "/api/products/1", "")
	relayed := follower.do("GET", "/api/products/1", "")
	if relayed.status != 200 || string(relayed.body) != string(direct.body) {
		t.Fatalf("relayed %d %s, the leader answers %d %s", relayed.status, relayed.body, direct.status, direct.body)
	}
	created := follower.do("POST", "/api/holds", `{"product_id":1,"qty":1}`)
	expectStatus(t, created, 201)
	if got := leader.eng.Stats().HoldsCreated.Load(); got != 1 {
		t.Fatalf("the leader created %d holds for one forwarded POST", got)
	}

	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(follower.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /api/products/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != string(direct.body) {
		t.Fatalf("relayed over a closing connection: %d %s", resp.StatusCode, body)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("after the answer to Connection: close, read %v; want the connection closed (EOF)", err)
	}
}

// waitForwardLink waits, bounded, until follower's link to addr is up,
// sending requests over it so that it is dialled.
func waitForwardLink(t *testing.T, follower *testServer, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	link := follower.srv.fwd.link(addr, 2)
	for !link.Up() {
		if time.Now().After(deadline) {
			t.Fatal("the follower's forwarding link did not come up within 5 s")
		}
		var req fasthttp.Request
		req.SetRequestURI("http://" + addr + "/healthz")
		link.Do(&req, &fasthttp.Response{}, time.Second)
		time.Sleep(10 * time.Millisecond)
	}
}

// sameAnswer fails unless a and b have the same status, header fields
// (but Date, which is the second it was sent) and body.
func sameAnswer(t *testing.T, what string, relayed, direct response) {
	t.Helper()
	relayed.header.Del("Date")
	direct.header.Del("Date")
	if relayed.status != direct.status || !reflect.DeepEqual(relayed.header, direct.header) ||
		string(relayed.body) != string(direct.body) {
		t.Fatalf("%s: relayed %d %v %s\nthe leader answers %d %v %s", what,
			relayed.status, relayed.header, relayed.body, direct.status, direct.header, direct.body)
	}
}

// Over the forwarding link a follower's answers are the leader's, status,
// headers and body: a read, a new hold (201, the same as the leader's replay
// under its idempotency key but for the replay's mark, whose replay
// through the link is the leader's replay), a 409, a 422 validation error and a 404.
func TestForwardLinkRelaysTheLeadersAnswers(t *testing.T) {
	leader := startClusterNode(t, &fakeCluster{id: 1, leading: true})
	addr := strings.TrimPrefix(leader.base, "http://")
	follower := startClusterNode(t, &fakeCluster{id: 2, leaderHTTP: addr})
	waitForwardLink(t, follower, addr)
	before := leader.eng.Stats().HoldsCreated.Load()

	sameAnswer(t, "product read", follower.do("GET", "/api/products/1", ""), leader.do("GET", "/api/products/1", ""))
	hold := follower.do("POST", "/api/holds", `{"product_id":1,"qty":1}`, "Idempotency-Key", "link-1")
	expectStatus(t, hold, 201)
	replay := leader.do("POST", "/api/holds", `{"product_id":1,"qty":1}`, "Idempotency-Key", "link-1")
	sameAnswer(t, "replay through the link", follower.do("POST", "/api/holds", `{"product_id":1,"qty":1}`, "Idempotency-Key", "link-1"), replay)
	replay.header.Del("Idempotent-Replayed") // the one difference of a replay
	sameAnswer(t, "201 hold", hold, replay)
	if got := leader.eng.Stats().HoldsCreated.Load() - before; got != 1 {
		t.Fatalf("the leader created %d holds for one forwarded POST and its replay", got)
	}
	for i := 0; i < 5; i++ {
		expectStatus(t, follower.do("POST", "/api/holds", `{"product_id":2,"qty":2}`), 201)
	}
	conflict := follower.do("POST", "/api/holds", `{"product_id":2,"qty":1}`)
	expectStatus(t, conflict, 409)
	sameAnswer(t, "409", conflict, leader.do("POST", "/api/holds", `{"product_id":2,"qty":1}`))
	invalid := follower.do("POST", "/api/holds", `{"product_id":1,"qty":0}`)
	expectStatus(t, invalid, 422)
	sameAnswer(t, "422", invalid, leader.do("POST", "/api/holds", `{"product_id":1,"qty":0}`))
	sameAnswer(t, "404", follower.do("GET", "/api/products/99", ""), leader.do("GET", "/api/products/99", ""))
	if n := follower.srv.forwarded.Get(); n == 0 {
		t.Fatal("the follower counted no relayed request")
	}
	if !follower.srv.fwd.link(addr, 2).Up() {
		t.Fatal("the link went down during the test")
	}
	if n := follower.srv.forwardedPool.Get(); n != 0 {
		t.Fatalf("%d of the requests went over the connection pool, want all over the link", n)
	}
}

// The upgrade to a forwarding link is for peers only: without the
// forwarded-by header it is 404, as any unknown path.
func TestForwardLinkRefusesNonPeers(t *testing.T) {
	leader := startClusterNode(t, &fakeCluster{id: 1, leading: true})
	r := leader.do("GET", "/cluster/forward-link", "", "Upgrade", "flashsale-forward/1")
	expectStatus(t, r, 404)
}
