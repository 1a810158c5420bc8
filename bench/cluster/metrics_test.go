package cluster

import (
	"fmt"
	"testing"

	"github.com/flashsale/flashsale/bench/promtest"
	dto "github.com/prometheus/client_model/go"
)

// TestMetricsPageParsesInClusterMode parses every node's whole /metrics
// page with Prometheus's parser (HELP and TYPE everywhere, counters named
// _total): the Raft families are typed, and the fsync histogram counts the
// node's disk writes, and the read counters count the reads made through
// the node.
func TestMetricsPageParsesInClusterMode(t *testing.T) {
	c := startCluster(t, false)
	cl := newClient(t, requestTimeout)
	for p := 0; p < c.Partitions(); p++ {
		mustHold(t, cl, c.URL(c.IDs()[0]), productIn(c, p).ID, 1, "")
	}
	for _, id := range c.IDs() {
		for p := 0; p < c.Partitions(); p++ {
			path := fmt.Sprintf("/api/products/%d", productIn(c, p).ID)
			if r, err := cl.Do(c.URL(id), "GET", path, "", ""); err != nil || r.Status != 200 {
				t.Fatalf("node %d: GET %s: %v %v", id, path, r, err)
			}
		}
		r, err := cl.Do(c.URL(id), "GET", "/metrics", "", "")
		if err != nil || r.Status != 200 {
			t.Fatalf("node %d: GET /metrics: %v %v", id, r, err)
		}
		fams := promtest.Parse(t, r.Body)
		for name, typ := range map[string]dto.MetricType{
			"flashsale_raft_term":               dto.MetricType_GAUGE,
			"flashsale_raft_applied_index":      dto.MetricType_GAUGE,
			"flashsale_raft_fsyncs_total":       dto.MetricType_COUNTER,
			"flashsale_raft_messages_total":     dto.MetricType_COUNTER,
			"flashsale_raft_snapshots_total":    dto.MetricType_COUNTER,
			"flashsale_raft_reads_total":        dto.MetricType_COUNTER,
			"flashsale_cluster_forwarded_total": dto.MetricType_COUNTER,
			"flashsale_orders":                  dto.MetricType_GAUGE,
			"flashsale_wal_fsync_seconds":       dto.MetricType_HISTOGRAM,
		} {
			if mf := fams[name]; mf == nil || mf.GetType() != typ {
				t.Errorf("node %d: %s is %v, want a %s", id, name, mf, typ)
			}
		}
		if got := len(fams["flashsale_raft_term"].GetMetric()); got != c.Partitions() {
			t.Errorf("node %d: flashsale_raft_term has %d series, want one per partition (%d)", id, got, c.Partitions())
		}
		barriers, _ := promtest.Value(fams, "flashsale_raft_reads_total", "event", "barrier")
		rounds, _ := promtest.Value(fams, "flashsale_raft_reads_total", "event", "round")
		if barriers < float64(c.Partitions()) || rounds < 1 || rounds > barriers {
			t.Errorf("node %d: after a read of every partition through it, flashsale_raft_reads_total counts %v barriers and %v rounds: want a barrier a partition and at least one round, no more rounds than barriers", id, barriers, rounds)
		}
		if mf := fams["flashsale_wal_fsync_seconds"]; mf != nil {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n < 1 {
				t.Errorf("node %d: the fsync histogram counts %d disk writes after the holds were replicated", id, n)
			}
		}
	}
}
