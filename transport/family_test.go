package transport

import (
	"bytes"
	"testing"
)

// TestWriteWithHelp: the library's empty HELP lines get text, its counters
// without _total get the conforming name (samples too), its _total gauges
// become counters, and a family with no known text keeps its empty HELP
// (for the page test to refuse).
func TestWriteWithHelp(t *testing.T) {
	in := "# HELP flashsale_http_requests_total\n# TYPE flashsale_http_requests_total counter\n" +
		"flashsale_http_requests_total{route=\"x\",status=\"200\"} 3\n" +
		"# HELP go_gc_forced_count\n# TYPE go_gc_forced_count counter\ngo_gc_forced_count 2\n" +
		"# HELP process_io_read_bytes_total\n# TYPE process_io_read_bytes_total gauge\nprocess_io_read_bytes_total 7\n" +
		"# HELP flashsale_unknown\n# TYPE flashsale_unknown gauge\nflashsale_unknown 1\n" +
		"# HELP go_goroutines has text already\n# TYPE go_goroutines gauge\ngo_goroutines 9"
	want := "# HELP flashsale_http_requests_total " + setFamilyHelp["flashsale_http_requests_total"] + "\n" +
		"# TYPE flashsale_http_requests_total counter\nflashsale_http_requests_total{route=\"x\",status=\"200\"} 3\n" +
		"# HELP go_gc_forced_total " + familyHelp("go_gc_forced_total") + "\n# TYPE go_gc_forced_total counter\ngo_gc_forced_total 2\n" +
		"# HELP process_io_read_bytes_total " + familyHelp("process_io_read_bytes_total") + "\n" +
		"# TYPE process_io_read_bytes_total counter\nprocess_io_read_bytes_total 7\n" +
		"# HELP flashsale_unknown\n# TYPE flashsale_unknown gauge\nflashsale_unknown 1\n" +
		"# HELP go_goroutines has text already\n# TYPE go_goroutines gauge\ngo_goroutines 9"
	var out bytes.Buffer
	writeWithHelp(&out, []byte(in))
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestScrapeFamilies(t *testing.T) {
	s := New(nil, Options{})
	for name, add := range map[string]func(){
		"counter without _total": func() { s.AddCounter("flashsale_x", "x") },
		"gauge with _total":      func() { s.AddGauge("flashsale_x_total", "x") },
		"no help":                func() { s.AddGauge("flashsale_y", "") },
		"twice":                  func() { s.AddCounter("flashsale_holds_total", "again") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			add()
		}()
	}
	var f scrapeFamilies
	f.add(&scrapeFamily{name: "a_total", help: `a \ b`, typ: typeCounter, series: []Series{
		{Labels: `{k="v"}`, Value: func() float64 { return 12345678 }}, {Value: func() float64 { return 0.25 }}}})
	f.add(&scrapeFamily{name: "h_seconds", help: "h", typ: typeHistogram, histogram: func() Histogram {
		return Histogram{UpperBounds: []float64{0.001, 1}, Counts: []uint64{1, 2, 3}, Sum: 9.5}
	}})
	var out bytes.Buffer
	f.write(&out)
	want := "# HELP a_total a \\\\ b\n# TYPE a_total counter\na_total{k=\"v\"} 12345678\na_total 0.25\n" +
		"# HELP h_seconds h\n# TYPE h_seconds histogram\n" +
		"h_seconds_bucket{le=\"0.001\"} 1\nh_seconds_bucket{le=\"1\"} 3\nh_seconds_bucket{le=\"+Inf\"} 6\n" +
		"h_seconds_sum 9.5\nh_seconds_count 6\n"
	if out.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out.String(), want)
	}
}
