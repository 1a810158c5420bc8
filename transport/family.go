package transport

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
)

// Families read at scrape time. The engine's, the log's and Raft's figures
// are counts the code already keeps (atomics in engine.Stats, wal.Stats,
// raftlog.Stats); copying them into metric objects on the hot path would
// cost an atomic add per event for nothing, so they are read when /metrics
// is scraped and written here with their own HELP and TYPE lines.
// github.com/VictoriaMetrics/metrics only offers gauges for values read by a
// callback, which would type a count as a gauge.

// The Prometheus metric types this page uses.
const (
	typeCounter   = "counter"
	typeGauge     = "gauge"
	typeHistogram = "histogram"
)

// Series is one sample of a family read at scrape time.
type Series struct {
	Labels string         // `{event="created"}`, or "" for a family of one series
	Value  func() float64 // called at each scrape; must be safe for concurrent use
}

// Histogram is a histogram's state at one instant: Counts[i] observations
// were at most UpperBounds[i] and above the bound before it; the last of
// the len(UpperBounds)+1 counts is those above every bound.
type Histogram struct {
	UpperBounds []float64
	Counts      []uint64
	Sum         float64
}

// scrapeFamily is one family of the page: fixed series, or a histogram.
type scrapeFamily struct {
	name, help, typ string
	series          []Series
	histogram       func() Histogram
}

// scrapeFamilies are a server's families read at scrape time, written in
// the order they were added.
type scrapeFamilies struct {
	mu   sync.Mutex
	list []*scrapeFamily
	seen map[string]bool
}

// AddCounter adds a counter family read at scrape time: each series' Value
// is a count that never goes down while the process runs. name must end in
// _total (Prometheus's and OpenMetrics' rule for counters); help says what
// is counted. It panics on a name used twice or a name against the rule:
// those are programming errors.
func (s *Server) AddCounter(name, help string, series ...Series) {
	if !strings.HasSuffix(name, "_total") {
		panic(fmt.Sprintf("transport: counter %s does not end in _total", name))
	}
	s.scrape.add(&scrapeFamily{name: name, help: help, typ: typeCounter, series: series})
}

// AddGauge adds a gauge family read at scrape time: a value now, which may
// go up and down. A gauge's name must not end in _total.
func (s *Server) AddGauge(name, help string, series ...Series) {
	if strings.HasSuffix(name, "_total") {
		panic(fmt.Sprintf("transport: gauge %s ends in _total, which names counters", name))
	}
	s.scrape.add(&scrapeFamily{name: name, help: help, typ: typeGauge, series: series})
}

// AddHistogram adds a histogram family without labels, read at scrape
// time (read must be safe for concurrent use).
func (s *Server) AddHistogram(name, help string, read func() Histogram) {
	s.scrape.add(&scrapeFamily{name: name, help: help, typ: typeHistogram, histogram: read})
}

func (f *scrapeFamilies) add(fam *scrapeFamily) {
	if fam.help == "" {
		panic(fmt.Sprintf("transport: metric %s without help", fam.name))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	if f.seen[fam.name] {
		panic(fmt.Sprintf("transport: metric %s added twice", fam.name))
	}
	f.seen[fam.name] = true
	f.list = append(f.list, fam)
}

// write writes every family, each with its HELP and TYPE lines.
func (f *scrapeFamilies) write(w io.Writer) {
	f.mu.Lock()
	list := f.list
	f.mu.Unlock()
	var b []byte
	for _, fam := range list {
		b = appendMetadata(b, fam.name, fam.help, fam.typ)
		for _, s := range fam.series {
			b = appendSample(b, fam.name, s.Labels, s.Value())
		}
		if fam.histogram != nil {
			b = appendHistogram(b, fam.name, fam.histogram())
		}
	}
	w.Write(b)
}

// appendMetadata appends a family's HELP and TYPE lines.
func appendMetadata(b []byte, name, help, typ string) []byte {
	return appendType(appendHelp(b, name, help), name, typ)
}

// appendType appends a TYPE line.
func appendType(b []byte, name, typ string) []byte {
	b = append(b, "# TYPE "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, typ...)
	return append(b, '\n')
}

// appendHelp appends a HELP line. help may not hold a newline; a backslash
// is escaped as the text format asks.
func appendHelp(b []byte, name, help string) []byte {
	b = append(b, "# HELP "...)
	b = append(b, name...)
	b = append(b, ' ')
	b = append(b, strings.ReplaceAll(help, `\`, `\\`)...)
	return append(b, '\n')
}

// appendSample appends one sample line: name, labels ("" or "{...}"), value.
func appendSample(b []byte, name, labels string, v float64) []byte {
	b = append(b, name...)
	b = append(b, labels...)
	b = append(b, ' ')
	b = appendValue(b, v)
	return append(b, '\n')
}

// appendValue writes integers (every count) in full, not as 1e+07.
func appendValue(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// appendHistogram appends a histogram's cumulative buckets, sum and count.
func appendHistogram(b []byte, name string, h Histogram) []byte {
	var cum uint64
	for i, n := range h.Counts {
		cum += n
		le := "+Inf"
		if i < len(h.UpperBounds) {
			le = strconv.FormatFloat(h.UpperBounds[i], 'g', -1, 64)
		}
		b = appendSample(b, name+"_bucket", `{le="`+le+`"}`, float64(cum))
	}
	b = appendSample(b, name+"_sum", "", h.Sum)
	return appendSample(b, name+"_count", "", float64(cum))
}

// processFamilyHelp is the HELP text of the Go runtime and process
// families that metrics.WriteProcessMetrics writes (with an empty HELP
// line), by name prefix: the first that matches.
var processFamilyHelp = []struct{ prefix, help string }{
	{"go_memstats_", "Go runtime memory statistic (runtime.MemStats field of the same name), from github.com/VictoriaMetrics/metrics."},
	{"go_", "Go runtime figure (package runtime and runtime/metrics), from github.com/VictoriaMetrics/metrics."},
	{"process_", "Process figure read from /proc, from github.com/VictoriaMetrics/metrics."},
}

// renamedFamilies are families metrics.WriteProcessMetrics types as
// counters without the _total suffix counters must carry; the page
// publishes them under the conforming name.
var renamedFamilies = map[string]string{
	"go_cgo_calls_count": "go_cgo_calls_total",
	"go_gc_forced_count": "go_gc_forced_total",
}

// writeWithHelp copies exposition text from src to w, filling each empty
// HELP line that github.com/VictoriaMetrics/metrics writes (its metadata
// has no text) from setFamilyHelp or processFamilyHelp, renaming
// renamedFamilies, and typing a family named _total that the library calls
// a gauge as the counter it is. A family with no text known keeps its
// empty HELP, which the page test refuses.
func writeWithHelp(w io.Writer, src []byte) {
	out := make([]byte, 0, len(src)+len(src)/4)
	for len(src) > 0 {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line = src[:i+1]
		}
		src = src[len(line):]
		start, end := familySpan(line)
		name := string(line[start:end])
		if to, ok := renamedFamilies[name]; ok {
			line = append(append(append([]byte(nil), line[:start]...), to...), line[end:]...)
			name, end = to, start+len(to)
		}
		if bytes.HasPrefix(line, []byte("# TYPE ")) && strings.HasSuffix(name, "_total") && bytes.HasPrefix(line[end:], []byte(" gauge")) {
			// The library types its process_io_*_total counts as gauges.
			out = appendType(out, name, typeCounter)
			continue
		}
		if bytes.HasPrefix(line, []byte("# HELP ")) && end >= len(line)-1 {
			if help := familyHelp(name); help != "" {
				out = appendHelp(out, name, help)
				continue
			}
		}
		out = append(out, line...)
	}
	w.Write(out)
}

// familySpan is where the family name stands in a line of the text format:
// after "# HELP " or "# TYPE ", or at the start of a sample line (the name
// of a histogram's _bucket, _sum and _count lines is the sample's own).
func familySpan(line []byte) (start, end int) {
	if bytes.HasPrefix(line, []byte("# HELP ")) || bytes.HasPrefix(line, []byte("# TYPE ")) {
		start = len("# HELP ")
	} else if len(line) > 0 && line[0] == '#' {
		return 0, 0
	}
	end = start
	for end < len(line) && line[end] != ' ' && line[end] != '{' && line[end] != '\n' {
		end++
	}
	return start, end
}

func familyHelp(name string) string {
	if h, ok := setFamilyHelp[name]; ok {
		return h
	}
	for _, p := range processFamilyHelp {
		if strings.HasPrefix(name, p.prefix) {
			return p.help
		}
	}
	return ""
}
