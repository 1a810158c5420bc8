package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The samples in testdata/ are outputs of wrk 4.1 (Debian's 4.1.0-3) with
// holds.lua, recorded on this project's machine; malformed-* are runs made
// the wrong way (no --latency, no -s holds.lua) or cut short.

func parseFile(t *testing.T, name string) (Run, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(strings.NewReader(string(b)))
}

func TestParseReadsEveryFigureOfARecordedRun(t *testing.T) {
	for _, tc := range []struct {
		file string
		want Run
	}{
		{"granted.txt", Run{Requests: 7689, RequestsPerSec: 6998.39, P50Micros: 970, P99Micros: 3280, MaxMicros: 5790, Expected: 201}},
		{"ceiling.txt", Run{Requests: 49455, RequestsPerSec: 44949.37, P50Micros: 92, P99Micros: 2710, MaxMicros: 5700, Expected: 200}},
		{"sold-out.txt", Run{Requests: 38693, RequestsPerSec: 38358.82, P50Micros: 1920, P99Micros: 8900, MaxMicros: 13950, Expected: 409}},
		// 10,000 connections: wrk's columns touch ("132.46ms 591.83ms").
		{"sold-out-crowd.txt", Run{Requests: 194724, RequestsPerSec: 24224.06, P50Micros: 399030, P99Micros: 571610, MaxMicros: 591830, Expected: 409}},
		{"unexpected-409.txt", Run{Requests: 34612, RequestsPerSec: 31464.28, P50Micros: 188, P99Micros: 4530, MaxMicros: 8390, Expected: 201, Unexpected: 34611}},
		{"server-killed.txt", Run{Requests: 20023, RequestsPerSec: 9944.29, P50Micros: 2820, P99Micros: 7440, MaxMicros: 12920, Expected: 201, SocketErrors: 47847}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := parseFile(t, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Parse = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

func TestParseRefusesMalformedOutput(t *testing.T) {
	granted, err := os.ReadFile(filepath.Join("testdata", "granted.txt"))
	if err != nil {
		t.Fatal(err)
	}
	edit := func(old, new string) string {
		if !strings.Contains(string(granted), old) {
			t.Fatalf("granted.txt has no %q", old)
		}
		return strings.Replace(string(granted), old, new, 1)
	}
	for _, tc := range []struct {
		name, text, wantInError string
	}{
		{"malformed-no-latency.txt (wrk without --latency)", "", "50% line"},
		{"malformed-no-script.txt (wrk without -s holds.lua)", "", "holds.lua"},
		{"malformed-truncated.txt (cut off after the percentiles)", "", `"N requests in"`},
		{"empty (wrk could not connect)", "\n", `"Latency" row`},
		{"a unit wrk never prints", edit("3.28ms", "3.28xs"), "percentile"},
		{"a max that is not a number", edit("5.79ms", "NaNms"), "latency max"},
		{"a rate that is not a number", edit("6998.39", "6998,39"), "requests/sec"},
		{"a garbled status count", edit("unexpected 0", "unexpected zero"), "holds.lua summary"},
		{"a garbled socket error line", edit("Requests/sec:", "  Socket errors: connect 0, read 0, write 1\nRequests/sec:"), "socket errors"},
		{"no request completed", edit("7689 requests", "0 requests"), "no request completed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var run Run
			var err error
			if file, _, _ := strings.Cut(tc.name, " "); tc.text == "" && strings.HasPrefix(file, "malformed-") {
				run, err = parseFile(t, file)
			} else {
				run, err = Parse(strings.NewReader(tc.text))
			}
			if !errors.Is(err, errMalformed) {
				t.Fatalf("Parse = %+v, %v; want an error wrapping errMalformed", run, err)
			}
			if !strings.Contains(err.Error(), tc.wantInError) {
				t.Errorf("error %q does not name %q", err, tc.wantInError)
			}
		})
	}
}

func TestParseMicrosReadsEveryUnitOfWrk(t *testing.T) {
	for in, want := range map[string]int64{
		"842.00us": 842, "0.97ms": 970, "23.87ms": 23870, "2.01s": 2_010_000, "1.50m": 90_000_000, "1.00h": 3_600_000_000,
	} {
		if got, err := parseMicros(in); err != nil || got != want {
			t.Errorf("parseMicros(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ms", "12", "1.2ks", "-1.00ms", "Infs"} {
		if got, err := parseMicros(in); err == nil {
			t.Errorf("parseMicros(%q) = %d, nil; want an error", in, got)
		}
	}
}
