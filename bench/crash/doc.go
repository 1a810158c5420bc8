// Package crash holds the crash tests of the flash sale server: they run the
// real binary (through bench/serverproc), kill it with SIGKILL under load,
// damage its write-ahead log the ways crashes and disks do, restart it on the
// same data directory and check that every acknowledged answer survived and
// that stock was never oversold. The package has no code of its own; see the
// _test.go files.
package crash
