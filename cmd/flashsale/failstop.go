package main

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/transport"
	"github.com/rs/zerolog"
)

// failStopExitCode is the exit code of a server that stopped because its
// log failed or hung: a supervisor restarts it, and the log is replayed.
const failStopExitCode = 4

// durableLog is what the fail-stop watch needs of a log: the single
// node's wal.Log, or the cluster node's raftlog.Node.
type durableLog interface {
	Failed() <-chan struct{}
	Err() error
	CommitStalled(d time.Duration) bool
}

// watchLog stops the process when the log can no longer make anything
// durable: a failed write or fsync, or a write that has not returned after
// stall. Nothing after the failure is acknowledged (the log refuses it);
// /healthz turns 503 at once, the cause is logged, and the process exits
// with failStopExitCode without a graceful shutdown, which would wait on
// the broken disk. It returns when stop is closed.
func watchLog(l durableLog, stall time.Duration, srv *transport.Server, log zerolog.Logger, stop <-chan struct{}) {
	tick := time.NewTicker(max(stall/10, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-l.Failed():
			failStop(srv, log, l.Err())
		case <-tick.C:
			if l.CommitStalled(stall) {
				failStop(srv, log, errors.New("a write of the log has not finished after --commit-stall-timeout "+stall.String()+": the disk hangs"))
			}
		}
	}
}

func failStop(srv *transport.Server, log zerolog.Logger, err error) {
	srv.Fail()
	log.Error().Err(err).Int("exit_code", failStopExitCode).
		Msg("the log cannot make answers durable: stopping at once; nothing after this was acknowledged")
	os.Exit(failStopExitCode)
}

// faultCommitHook is the wal CommitHook of the --fault-* flags: the
// failAt-th batch write fails without writing, the stallAt-th never
// returns (0: never). Tests use it to prove the fail-stop.
func faultCommitHook(failAt, stallAt uint64) func(write func() error) error {
	if failAt == 0 && stallAt == 0 {
		return nil
	}
	var batches atomic.Uint64
	return func(write func() error) error {
		n := batches.Add(1)
		switch {
		case n == failAt:
			return errors.New("--fault-fail-write-at: injected write failure")
		case n == stallAt:
			select {} // a hung disk
		}
		return write()
	}
}
