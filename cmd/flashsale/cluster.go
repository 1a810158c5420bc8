package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wal/raftlog"
	"github.com/rs/zerolog"
)

// clusterNodeRuntime is one running cluster node: the Raft node, the peer
// transport and one partitionMachine per partition. It is the front end's
// transport.Cluster.
type clusterNodeRuntime struct {
	cf       *clusterFile
	self     clusterNode
	node     *raftlog.Node
	peers    *raftlog.Peers
	machines []*partitionMachine
}

func (c *clusterNodeRuntime) NodeID() uint64  { return c.self.ID }
func (c *clusterNodeRuntime) Partitions() int { return c.cf.Partitions }

func (c *clusterNodeRuntime) Engine(p int) (*engine.Engine, bool) {
	v := c.machines[p].view()
	return v.eng, v.leading
}

func (c *clusterNodeRuntime) LeaderHTTP(p int) string {
	lead := c.node.Leader(p)
	if lead == 0 || lead == c.self.ID {
		return "" // none, or this node, still promoting the partition
	}
	n, _ := c.cf.node(lead)
	return n.HTTP
}

func (c *clusterNodeRuntime) ReadBarrier(p int) error {
	return c.node.ReadBarrier(p)
}

func (c *clusterNodeRuntime) ReadBarrierAll() error { return c.node.ReadBarrierAll() }

func (c *clusterNodeRuntime) Healthy() bool {
	for p := 0; p < c.cf.Partitions; p++ {
		lead := c.node.Leader(p)
		if lead == 0 || (lead != c.self.ID && !c.peers.Reachable(lead)) {
			return false
		}
	}
	return true
}

func (c *clusterNodeRuntime) State(p int) (uint64, [32]byte, error) {
	return c.machines[p].digest()
}

// AppendStatus appends GET /cluster's JSON.
func (c *clusterNodeRuntime) AppendStatus(dst []byte) []byte {
	dst = append(dst, `{"node_id":`...)
	dst = strconv.AppendUint(dst, c.self.ID, 10)
	dst = append(dst, `,"nodes":[`...)
	for i, n := range c.cf.Nodes {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendUint(dst, n.ID, 10)
		dst = append(dst, `,"http":`...)
		dst = strconv.AppendQuote(dst, n.HTTP)
		dst = append(dst, `,"raft":`...)
		dst = strconv.AppendQuote(dst, n.Raft)
		dst = append(dst, `,"reachable":`...)
		dst = strconv.AppendBool(dst, n.ID == c.self.ID || c.peers.Reachable(n.ID))
		dst = append(dst, '}')
	}
	dst = append(dst, `],"partitions":[`...)
	for p := 0; p < c.cf.Partitions; p++ {
		if p > 0 {
			dst = append(dst, ',')
		}
		st := c.node.Status(p)
		dst = append(dst, `{"id":`...)
		dst = strconv.AppendInt(dst, int64(p), 10)
		dst = append(dst, `,"leader":`...)
		dst = strconv.AppendUint(dst, st.Leader, 10)
		dst = append(dst, `,"term":`...)
		dst = strconv.AppendUint(dst, st.Term, 10)
		dst = append(dst, `,"commit_index":`...)
		dst = strconv.AppendUint(dst, st.CommitIndex, 10)
		dst = append(dst, `,"applied_index":`...)
		dst = strconv.AppendUint(dst, st.Applied, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// startCluster checks the cluster file and the data directory (a refusal
// wraps errUsage: exit 2, nothing written), then opens the node's Raft log
// and starts the peer transport and the Raft loop.
func startCluster(cfg config, log zerolog.Logger, specs []engine.ProductSpec) (*clusterNodeRuntime, error) {
	cf, err := loadClusterFile(cfg.clusterFile)
	if err != nil {
		return nil, err
	}
	self, ok := cf.node(cfg.nodeID)
	if !ok {
		return nil, usageErrorf("--node-id %d is not in the cluster file %s (nodes %v)", cfg.nodeID, cfg.clusterFile, cf.ids())
	}
	if cfg.addrGiven && cfg.addr != self.HTTP {
		return nil, usageErrorf("--addr %s differs from node %d's http address %s in the cluster file", cfg.addr, self.ID, self.HTTP)
	}
	peerAddrs, err := parsePeerAddrs(cfg.raftPeerAddrs, cf)
	if err != nil {
		return nil, err
	}
	for _, n := range cf.Nodes {
		if _, set := peerAddrs[n.ID]; !set && n.ID != self.ID {
			peerAddrs[n.ID] = n.Raft
		}
	}
	delete(peerAddrs, self.ID)
	if err := claimDataDir(cfg.dataDir, cf, self.ID); err != nil {
		return nil, err
	}
	listen := self.Raft
	if cfg.raftListen != "" {
		listen = cfg.raftListen
	}

	c := &clusterNodeRuntime{cf: cf, self: self, machines: make([]*partitionMachine, cf.Partitions)}
	for p := range c.machines {
		c.machines[p] = newPartitionMachine(cfg, log, cf.Partitions, p, specs)
	}
	c.peers, err = raftlog.NewPeers(raftlog.PeersConfig{NodeID: self.ID, Addrs: peerAddrs, Listen: listen, ClusterID: cf.id(),
		Deliver: func(from uint64, envs []raftlog.Envelope) { c.node.Deliver(from, envs) },
		Dropped: func(to uint64, e raftlog.Envelope) { c.node.Dropped(to, e) },
		Logger:  log.With().Str("component", "peers").Logger()})
	if err != nil {
		return nil, err
	}
	if err := c.peers.Listen(); err != nil {
		return nil, fmt.Errorf("raft listen address %s: %w", listen, err)
	}
	c.node, err = raftlog.Open(raftlog.Config{NodeID: self.ID, Nodes: cf.ids(), Partitions: cf.Partitions,
		Dir: filepath.Join(cfg.dataDir, "raft"), NoSync: cfg.fsync == "never", SnapshotEntries: cfg.raftSnapshotEntries,
		FaultAckUncommitted: cfg.faultAckUncommitted,
		CommitHook:          faultCommitHook(cfg.faultFailWriteAt, cfg.faultStallWriteAt),
		Send:                c.peers.Send,
		Machine:             func(p int) raftlog.Machine { return c.machines[p] },
		Logger:              log.With().Str("component", "raft").Logger()})
	if err != nil {
		c.peers.Stop()
		return nil, err
	}
	for p, m := range c.machines {
		m.applied = func() uint64 { return c.node.Status(p).Applied }
	}
	if err := c.peers.Start(); err != nil {
		_ = c.node.Stop()
		c.peers.Stop()
		return nil, err
	}
	c.node.Start()
	if cfg.faultAckUncommitted {
		log.Error().Msg("--fault-ack-uncommitted: this node answers without replicating; acknowledged work WILL be lost (tests only)")
	}
	log.Info().Uint64("node_id", self.ID).Int("partitions", cf.Partitions).Str("raft", listen).
		Int("nodes", len(cf.Nodes)).Msg("cluster node started")
	return c, nil
}

func newPartitionMachine(cfg config, log zerolog.Logger, partitions, p int, specs []engine.ProductSpec) *partitionMachine {
	m := &partitionMachine{p: p, log: log}
	for _, s := range specs {
		if s.ID%uint64(partitions) == uint64(p) {
			m.seed = append(m.seed, s)
		}
	}
	m.newEngine = func(j engine.Journal) *engine.Engine {
		ecfg := engineConfig(cfg, log)
		ecfg.Journal = j
		ecfg.IDStride, ecfg.IDResidue = uint64(partitions), uint64(p)
		return engine.New(ecfg)
	}
	return m
}

// stop stops the Raft loop (failing what was not committed), the live
// engines and the peer transport.
func (c *clusterNodeRuntime) stop(log zerolog.Logger) int {
	code := 0
	if err := c.node.Stop(); err != nil {
		log.Error().Err(err).Msg("closing the raft log failed")
		code = 1
	}
	for _, m := range c.machines {
		m.stop()
	}
	c.peers.Stop()
	return code
}

// runCluster is run's cluster mode: it serves until ctx is done.
func runCluster(ctx context.Context, cfg config, log zerolog.Logger, specs []engine.ProductSpec, stderr io.Writer) int {
	c, err := startCluster(cfg, log, specs)
	if errors.Is(err, errUsage) {
		fmt.Fprintf(stderr, "flashsale: %v\n", err)
		return 2
	}
	if err != nil {
		log.Error().Err(err).Msg("cannot start the cluster node")
		return 1
	}
	srv := transport.New(nil, transport.Options{
		Logger:        log,
		WebhookSecret: []byte(cfg.webhookSecret),
		AdminToken:    cfg.adminToken,
		Cluster:       c,
		Connections:   connLimits(cfg, log, clusterPeerAddrs(c.cf, log)),
	})
	registerRaftMetrics(srv, c)
	return serve(ctx, srv, c.node, cfg.commitStallTimeout, c.self.HTTP, log, func() int { return c.stop(log) }, func(e *zerolog.Event) *zerolog.Event {
		return e.Str("data_dir", cfg.dataDir).Str("fsync", cfg.fsync).Uint64("node_id", c.self.ID)
	})
}

// registerRaftMetrics adds the node's Raft figures to /metrics: per
// partition its term, leader, commit and apply indexes; per node the
// proposals, fsyncs, messages and snapshots, and the fsync latency of its
// log.
func registerRaftMetrics(srv *transport.Server, c *clusterNodeRuntime) {
	partitions := func(read func(st raftlog.PartitionStatus) float64) []transport.Series {
		series := make([]transport.Series, c.cf.Partitions)
		for p := range series {
			series[p] = transport.Series{Labels: fmt.Sprintf(`{partition="%d"}`, p), Value: func() float64 { return read(c.node.Status(p)) }}
		}
		return series
	}
	srv.AddGauge("flashsale_raft_term", "Raft term of each partition on this node.",
		partitions(func(st raftlog.PartitionStatus) float64 { return float64(st.Term) })...)
	srv.AddGauge("flashsale_raft_leader", "Node id of each partition's leader as this node knows it (0: none).",
		partitions(func(st raftlog.PartitionStatus) float64 { return float64(st.Leader) })...)
	srv.AddGauge("flashsale_raft_commit_index", "Raft commit index of each partition on this node.",
		partitions(func(st raftlog.PartitionStatus) float64 { return float64(st.CommitIndex) })...)
	srv.AddGauge("flashsale_raft_applied_index", "Index of the last entry each partition's engine applied on this node.",
		partitions(func(st raftlog.PartitionStatus) float64 { return float64(st.Applied) })...)
	srv.AddGauge("flashsale_raft_apply_lag_entries", "Committed entries of each partition this node has not applied yet.",
		partitions(func(st raftlog.PartitionStatus) float64 { return float64(st.CommitIndex) - float64(st.Applied) })...)

	count := func(labels string, load func() uint64) transport.Series {
		return transport.Series{Labels: labels, Value: func() float64 { return float64(load()) }}
	}
	st, ps := c.node.Stats(), c.peers.Stats()
	srv.AddCounter("flashsale_raft_rounds_total", "Rounds of the node's Raft loop.", count("", st.Rounds.Load))
	srv.AddCounter("flashsale_raft_fsyncs_total", "Disk writes with fsync of the node's log, one per round with records.", count("", st.Fsyncs.Load))
	srv.AddCounter("flashsale_raft_proposals_total", "Raft proposals this node made as a leader (each a batch of records).", count("", st.Proposals.Load))
	srv.AddCounter("flashsale_raft_entries_applied_total", "Committed entries applied to this node's engines.", count("", st.EntriesApplied.Load))
	srv.AddCounter("flashsale_raft_messages_total", "Raft messages by result: sent to peers, or dropped (a full inbox, or the transport could not send them; Raft resends).",
		count(`{result="sent"}`, st.MessagesSent.Load), count(`{result="dropped"}`, st.MessagesDropped.Load))
	srv.AddCounter("flashsale_raft_snapshots_total", "Raft snapshots by event: sent to a lagging peer, received from the leader, taken to compact the log.",
		count(`{event="sent"}`, st.SnapshotsSent.Load), count(`{event="received"}`, st.SnapshotsReceived.Load), count(`{event="taken"}`, st.SnapshotsTaken.Load))
	srv.AddCounter("flashsale_raft_reads_total", "Linearizable reads of this node's replicas: barrier counts reads (one per partition a read covers), round the requests sent for them, each answering the reads that arrived while the one before it was out, round_direct those of them that took one round trip between two nodes instead of Raft's ReadIndex (docs/cluster.md).",
		count(`{event="barrier"}`, st.ReadBarriers.Load), count(`{event="round"}`, st.ReadRounds.Load), count(`{event="round_direct"}`, st.ReadRoundsDirect.Load))
	srv.AddCounter("flashsale_raft_leader_changes_total", "Leader changes this node saw, all partitions together.", count("", st.LeaderChanges.Load))
	srv.AddCounter("flashsale_raft_disk_compactions_total", "Times the node cut the front of its log after snapshots.", count("", st.DiskCompactions.Load))
	srv.AddCounter("flashsale_raft_peer_frames_total", "Frames on the peer connections, by direction.",
		count(`{direction="sent"}`, ps.FramesSent.Load), count(`{direction="received"}`, ps.FramesReceived.Load))
	srv.AddCounter("flashsale_raft_peer_bytes_total", "Bytes on the peer connections, by direction.",
		count(`{direction="sent"}`, ps.BytesSent.Load), count(`{direction="received"}`, ps.BytesReceived.Load))
	srv.AddCounter("flashsale_raft_peer_reconnects_total", "Peer connections made again to a peer this node had been connected to before.", count("", ps.Reconnects.Load))
	registerFsyncHistogram(srv, c.node.FsyncLatency)
}
