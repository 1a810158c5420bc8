// Package crash holds the crash tests of the flash sale server. They run the
// real binary (through bench/serverproc), kill it with SIGKILL under load,
// damage its write-ahead log the ways crashes and disks do, restart it on
// the same data directory, and check that every acknowledged answer survived
// and that no product was oversold.
//
// The package has no code of its own; the tests are:
//
//   - TestKill9UnderLoad: kill -9 at random moments under concurrent holds,
//     orders and webhooks (and during start-up), with periodic snapshots;
//     restart and check everything acknowledged, several times over.
//   - TestDamagedTail: the newest log segment cut, cut and followed by
//     garbage, zero-filled, or grown by zeros or garbage; the server starts
//     and keeps every answer whose record lies before the damage.
//   - TestMidLogCorruption: a flipped byte with intact records after it; the
//     server refuses to start, naming segment and index, and starts with
//     --wal-truncate-corrupt, reporting the records it dropped.
//   - TestExpiryAcrossKill9, TestOrderTimeoutAcrossKill9: holds and payment
//     windows that end while the server is down are over right after the
//     restart, and the stock counts say so exactly.
//   - TestVerifyDetectsBrokenPromises: the checker itself catches lost and
//     altered answers, so a pass means something.
//
// Every test logs its random seed; FLASHSALE_CRASH_SEED=<seed> repeats the
// same choices (the timing of a real server still varies).
package crash
