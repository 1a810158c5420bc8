package main

import (
	"context"
	"net"
	"net/netip"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/transport"
)

// Bounds of the connection flags.
const (
	// connectionsMaxLimit is the largest --connections-max (and
	// --connections-per-ip-max): far above what one process serves.
	connectionsMaxLimit = 1 << 20
	// fdReserveCount is the file descriptors kept for everything but
	// served client connections: the log's segments and snapshots, Raft
	// peers, the forwarder's pools (up to 512 connections per leader),
	// refused connections being drained (up to 1,024) and the profiler.
	fdReserveCount = 4096
	// peerLookupTimeout bounds the resolution of the cluster file's host
	// names at start.
	peerLookupTimeout = 5 * time.Second
)

// connLimits are the connection limits of the flags, with --connections-max
// lowered to what the process's file limit allows (the Go runtime has
// already raised the soft limit to the hard one): beyond the file limit
// accept would fail, and fasthttp stops serving when accept fails.
// exempt are the addresses not limited per IP.
func connLimits(cfg config, log zerolog.Logger, exempt []netip.Addr) transport.ConnLimits {
	lim := transport.ConnLimits{Max: cfg.connectionsMax, PerIPMax: cfg.connectionsPerIPMax, PerIPExempt: exempt}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < connectionsMaxLimit+fdReserveCount {
		room := int(rl.Cur) - fdReserveCount
		if room < int(rl.Cur)/2 {
			room = int(rl.Cur) / 2
		}
		if lim.Max > room {
			// A value the operator chose is worth a warning; the default
			// merely follows the machine.
			ev := log.Info()
			if cfg.connectionsMaxGiven {
				ev = log.Warn()
			}
			ev.Int("connections_max", lim.Max).Int("allowed", room).Uint64("file_limit", rl.Cur).
				Msg("--connections-max is above what the file limit allows; lowered (raise the limit: ulimit -n, systemd LimitNOFILE=)")
			lim.Max = room
		}
	}
	return lim
}

// clusterPeerAddrs are the addresses of the cluster file's nodes (their
// http and raft hosts, names resolved now): the per-IP limit must not
// throttle the requests a peer forwards for all of its clients.
func clusterPeerAddrs(cf *clusterFile, log zerolog.Logger) []netip.Addr {
	var out []netip.Addr
	ctx, cancel := context.WithTimeout(context.Background(), peerLookupTimeout)
	defer cancel()
	for _, n := range cf.Nodes {
		for _, hostPort := range []string{n.HTTP, n.Raft} {
			host, _, err := net.SplitHostPort(hostPort)
			if err != nil {
				continue // checked when the file was read
			}
			if a, err := netip.ParseAddr(host); err == nil {
				out = append(out, a)
				continue
			}
			addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
			if err != nil {
				log.Warn().Err(err).Str("host", host).Msg("cannot resolve a cluster node's host: its connections are limited per IP like a client's")
			}
			for _, a := range addrs {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}
