package transport

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
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
