package dashboardtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/bench/cluster"
)

// holdPatience bounds the retries of one hold through a cluster node that
// answers 503 while a partition settles its leader.
const holdPatience = 5 * time.Second

// TestDashboardClusterInBrowser runs a 3-node cluster and reads node 1's
// GET /dashboard/stats (this part runs without a browser too), then opens
// its page: it says which node it is, lists every partition with the
// leader GET /cluster names, shows the stock GET /api/products/{id}
// answers for holds made through another node (so read through the
// partitions' replicas and leaders), shows Raft figures, and logs nothing.
func TestDashboardClusterInBrowser(t *testing.T) {
	c := cluster.Start(t, cluster.Options{Seed: []byte(`[
		{"id":1,"name":"Flash Widget","price_cents":4999,"total_stock":100,"max_per_hold":10},
		{"id":2,"name":"Limited Edition Sneaker","price_cents":19999,"total_stock":10,"max_per_hold":2},
		{"id":3,"name":"Gift Card","price_cents":2500,"total_stock":1000,"max_per_hold":5}]`)})
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	for id := int64(1); id <= 3; id++ { // one product in each partition
		for n := range id + 1 {
			key := fmt.Sprintf("c-%d-%d", id, n)
			body := fmt.Sprintf(`{"product_id":%d,"qty":1}`, id)
			deadline := time.Now().Add(holdPatience)
			for status, _ := post(client, c.URL(2)+"/api/holds", key, body); status != http.StatusCreated; status, _ = post(client, c.URL(2)+"/api/holds", key, body) {
				if time.Now().After(deadline) {
					t.Fatalf("hold %s through node 2: %d", key, status)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}

	base := c.URL(1)
	checkClusterStats(t, client, c)

	requireBrowser(t)
	pg := openPage(t, base+"/dashboard")
	defer pg.close()
	ctx := pg.ctx
	waitPage[string](t, ctx, "the node's name", `document.getElementById("mode").textContent`,
		func(v string) bool { return v == "cluster node 1" })

	// The page's partitions and leaders, as node 1's GET /cluster says at
	// the same moment (read again at each try: a leader may still move
	// just after the start).
	var logged string
	waitPage[string](t, ctx, "the partitions and their leaders as GET /cluster names them",
		`Array.from(document.querySelectorAll("#partitions tbody tr")).map(tr => tr.cells[0].textContent + " " + tr.cells[1].textContent).join(", ")`,
		func(v string) bool {
			want := leadersText(t, c)
			if pair := v + " | " + want; v != want && v != "" && pair != logged {
				t.Logf("the page shows %q, GET /cluster %q", v, want)
				logged = pair
			}
			return v == want
		})
	waitPage[string](t, ctx, "Raft fsyncs per second", `document.getElementById("tile-fsyncs").textContent`,
		func(v string) bool { return v != "–" })
	waitPage[string](t, ctx, "the Raft log's fsync latency", `document.getElementById("tile-fsync").textContent`,
		func(v string) bool { return !strings.HasPrefix(v, "–") })

	for id := int64(1); id <= 3; id++ {
		api := getProduct(t, client, base, id)
		if api["reserved_stock"] != id+1 {
			t.Fatalf("product %d through node 1: %v, want %d reserved", id, api, id+1)
		}
		for _, f := range []string{"total_stock", "available_stock", "reserved_stock", "sold_stock"} {
			waitPage[float64](t, ctx, fmt.Sprintf("product %d %s = %d", id, f, api[f]), cellJS(id, f),
				func(v float64) bool { return int64(v) == api[f] })
		}
	}
	waitPage[bool](t, ctx, "the cluster section shown", `document.getElementById("cluster").hidden`,
		func(hidden bool) bool { return !hidden })
	pg.screenshot("dashboard-cluster.png")
	pg.checkClean(base, 6)
}

// leaderSettleMax bounds the wait for node 1's GET /dashboard/stats and
// GET /cluster to name the same leaders (one may move between two reads).
const leaderSettleMax = 5 * time.Second

// leadersText is node 1's GET /cluster partitions as the page shows them:
// "0 node 2, 1 node 1 (this node), ...".
func leadersText(t *testing.T, c *cluster.Cluster) string {
	t.Helper()
	info, err := c.Info(1)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Partitions) != c.Partitions() {
		t.Fatalf("GET /cluster lists %d partitions: %+v", len(info.Partitions), info)
	}
	var parts []string
	for _, p := range info.Partitions {
		leader := fmt.Sprintf("node %d", p.Leader)
		if p.Leader == 1 {
			leader += " (this node)"
		}
		parts = append(parts, fmt.Sprintf("%d %s", p.ID, leader))
	}
	return strings.Join(parts, ", ")
}

// dashStats is the part of GET /dashboard/stats the cluster test reads.
type dashStats struct {
	Mode          string `json:"mode"`
	NodeID        int    `json:"node_id"`
	ProductsStale bool   `json:"products_stale"`
	Products      []struct {
		ID       int64 `json:"id"`
		Reserved int64 `json:"reserved_stock"`
	} `json:"products"`
	Cluster cluster.Info          `json:"cluster"`
	Series  map[string][]*float64 `json:"series"`
}

func getStats(t *testing.T, client *http.Client, base string) dashStats {
	t.Helper()
	resp, err := client.Get(base + "/dashboard/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st dashStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /dashboard/stats: %d %v", resp.StatusCode, err)
	}
	return st
}

// checkClusterStats checks node 1's GET /dashboard/stats: the node, its
// partitions and leaders as GET /cluster gives them, product id's stock
// with id+1 units reserved, and the Raft series.
func checkClusterStats(t *testing.T, client *http.Client, c *cluster.Cluster) {
	t.Helper()
	base := c.URL(1)
	var st dashStats
	var info cluster.Info
	for deadline := time.Now().Add(leaderSettleMax); ; time.Sleep(100 * time.Millisecond) {
		var err error
		if info, err = c.Info(1); err != nil {
			t.Fatal(err)
		}
		st = getStats(t, client, base)
		same := len(st.Cluster.Partitions) == len(info.Partitions)
		for i := 0; same && i < len(info.Partitions); i++ {
			same = st.Cluster.Partitions[i].Leader == info.Partitions[i].Leader
		}
		if same || time.Now().After(deadline) {
			break
		}
	}
	if st.Mode != "cluster" || st.NodeID != 1 || st.ProductsStale || st.Cluster.NodeID != 1 {
		t.Errorf("stats of node 1: mode %q, node %d, stale %v, cluster node %d", st.Mode, st.NodeID, st.ProductsStale, st.Cluster.NodeID)
	}
	if len(st.Cluster.Partitions) != len(info.Partitions) {
		t.Fatalf("stats list %d partitions, GET /cluster %d", len(st.Cluster.Partitions), len(info.Partitions))
	}
	for i, p := range st.Cluster.Partitions {
		if p.ID != info.Partitions[i].ID || p.Leader != info.Partitions[i].Leader || p.Leader == 0 {
			t.Errorf("partition %d: stats %+v, GET /cluster %+v", i, p, info.Partitions[i])
		}
	}
	if len(st.Products) != 3 {
		t.Fatalf("stats list %d products", len(st.Products))
	}
	for _, p := range st.Products {
		if p.Reserved != p.ID+1 {
			t.Errorf("product %d: %d reserved in the stats, want %d", p.ID, p.Reserved, p.ID+1)
		}
	}
	for _, name := range []string{"fsyncs", "fsync_p99_ms", "raft_proposals_per_fsync", "holds"} {
		if _, ok := st.Series[name]; !ok {
			t.Errorf("no series %s", name)
		}
	}
}
