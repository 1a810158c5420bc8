package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeRun stores testdata/sample with its rate and max replaced, as
// dir/name: a round with chosen figures, in wrk's own format.
func writeRun(t *testing.T, dir, name, sample, rate, maxLatency string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", sample))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	run, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	s = strings.Replace(s, fmt.Sprintf("Requests/sec: %9.2f", run.RequestsPerSec), "Requests/sec: "+rate, 1)
	s = strings.Replace(s, fmt.Sprintf("%.2fms   ", float64(run.MaxMicros)/1000), maxLatency+"   ", 1)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTableGivesMediansSharesAndWorstOverRounds(t *testing.T) {
	dir := t.TempDir()
	// Ceiling 40k, 50k, 44k; granted 20k, 30k, 11k: per-round shares 0.50,
	// 0.60, 0.25, median 0.50 (the ratio of the medians would be 0.45).
	for i, c := range []string{"40000.00", "50000.00", "44000.00"} {
		writeRun(t, dir, fmt.Sprintf("ceiling.c64.r%d.txt", i+1), "ceiling.txt", c, "5.00ms")
	}
	for i, g := range []struct{ rate, max string }{{"20000.00", "9.00ms"}, {"30000.00", "41.50ms"}, {"11000.00", "12.00ms"}} {
		writeRun(t, dir, fmt.Sprintf("granted.c64.r%d.txt", i+1), "granted.txt", g.rate, g.max)
	}
	writeRun(t, dir, "ceiling.c10000.r1.txt", "ceiling.txt", "30000.00", "1.20s")
	writeRun(t, dir, "sold_out.c10000.r1.txt", "sold-out.txt", "27000.00", "1.50s")

	rows, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := WriteTable(&out, rows); err != nil {
		t.Fatalf("WriteTable: %v\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"| ceiling | 64 | 3 | 44000 | 100% | 92µs | 2.71ms | 5.00ms | 2.71ms | 5.00ms | 0 | 0 | 40000, 50000, 44000 |",
		"| granted | 64 | 3 | 20000 | 50% | 970µs | 3.28ms | 12.00ms | 3.28ms | 41.50ms | 0 | 0 | 20000, 30000, 11000 |",
		"| ceiling | 10000 | 1 | 30000 | 100% | 92µs | 2.71ms | 1.20s | 2.71ms | 1.20s | 0 | 0 | 30000 |",
		"| sold_out | 10000 | 1 | 27000 | 90% | 1.92ms | 8.90ms | 1.50s | 8.90ms | 1.50s | 0 | 0 | 27000 |",
	}
	if len(lines) != 2+len(want) {
		t.Fatalf("table:\n%s\nwant a header and %d rows", out.String(), len(want))
	}
	for i, w := range want {
		if lines[2+i] != w {
			t.Errorf("row %d:\n got %s\nwant %s", i, lines[2+i], w)
		}
	}
}

func TestTableFailsOnUnexpectedStatusesAndSocketErrors(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []struct{ name, sample string }{
		{"ceiling.c64.r1.txt", "ceiling.txt"},
		{"granted.c64.r1.txt", "unexpected-409.txt"},
		{"granted.c256.r1.txt", "server-killed.txt"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", f.sample))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = WriteTable(&out, rows)
	if err == nil {
		t.Fatalf("WriteTable = nil; want an error\n%s", out.String())
	}
	for _, s := range []string{"granted at 64 connections: 34611 answers without the expected status", "granted at 256 connections: 47847 socket errors"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if !strings.Contains(out.String(), "| granted | 256 | 1 | 9944 | — |") {
		t.Errorf("a row without a ceiling at its connections should show no share:\n%s", out.String())
	}
}

func TestReadDirRefusesAFileItCannotPlace(t *testing.T) {
	for name, content := range map[string]string{
		"grants.c64.r1.txt":  "", // not a phase of the table
		"granted.c64.txt":    "", // no round
		"granted.c64.r1.txt": "Running 8s test @ http://127.0.0.1:18390\n",
	} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if rows, err := ReadDir(dir); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("ReadDir with only %s = %v, %v; want an error naming the file", name, rows, err)
		}
	}
	if _, err := ReadDir(t.TempDir()); err == nil {
		t.Error("ReadDir of an empty directory = nil error; want one")
	}
}
