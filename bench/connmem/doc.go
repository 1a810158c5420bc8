// Package connmem measures what a client connection costs the real server
// in memory: BenchmarkConnectionMemory opens thousands of keep-alive
// connections to a flashsale process, idle and then busy, and reports the
// growth of the server's resident set per connection (KiB/conn). It has no
// tests: `go test -run='^$' -bench=ConnectionMemory -benchtime=1x ./bench/connmem/`.
package connmem
