// Package promtest checks a /metrics page the way Prometheus reads it, for
// tests: it parses the text with Prometheus's own parser
// (github.com/prometheus/common/expfmt) and holds every family to the
// conventions dashboards and alerts rely on. Only tests import it.
package promtest

import (
	"bytes"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Parse parses page as the Prometheus text format, with the classic
// (legacy) name rules, and fails the test on any error or broken rule:
//   - every family has a HELP line with text and a TYPE line (not untyped);
//   - a family is a counter exactly when its name ends in _total;
//   - a histogram has buckets ending in +Inf, cumulative, and a count equal
//     to the +Inf bucket.
//
// It returns the families by name.
func Parse(t testing.TB, page []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("Prometheus's parser refuses the page: %v\n%s", err, page)
	}
	if len(fams) == 0 {
		t.Fatalf("no metric families in the page:\n%s", page)
	}
	for name, mf := range fams {
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP text", name)
		}
		typ := mf.GetType()
		if typ == dto.MetricType_UNTYPED {
			t.Errorf("%s has no TYPE (untyped)", name)
		}
		if counter := typ == dto.MetricType_COUNTER; counter != strings.HasSuffix(name, "_total") {
			t.Errorf("%s is a %s: a family is a counter exactly when its name ends in _total", name, typ)
		}
		if typ == dto.MetricType_HISTOGRAM {
			for _, m := range mf.GetMetric() {
				checkHistogram(t, name, m.GetHistogram())
			}
		}
	}
	return fams
}

func checkHistogram(t testing.TB, name string, h *dto.Histogram) {
	t.Helper()
	b := h.GetBucket()
	if len(b) == 0 {
		t.Errorf("histogram %s has no buckets", name)
		return
	}
	for i := 1; i < len(b); i++ {
		if b[i].GetUpperBound() <= b[i-1].GetUpperBound() || b[i].GetCumulativeCount() < b[i-1].GetCumulativeCount() {
			t.Errorf("histogram %s: bucket %d (le %g, %d) does not follow bucket %d (le %g, %d)", name,
				i, b[i].GetUpperBound(), b[i].GetCumulativeCount(), i-1, b[i-1].GetUpperBound(), b[i-1].GetCumulativeCount())
		}
	}
	last := b[len(b)-1]
	if !isInf(last.GetUpperBound()) {
		t.Errorf("histogram %s: the last bucket is le %g, not +Inf", name, last.GetUpperBound())
	} else if h.SampleCount != nil && h.GetSampleCount() != last.GetCumulativeCount() {
		t.Errorf("histogram %s: count %d, +Inf bucket %d", name, h.GetSampleCount(), last.GetCumulativeCount())
	}
}

func isInf(f float64) bool { return f > 1e308 }

// Value is the value of the series of family name whose labels include
// every pair of labels ("key", "value", ...); ok is false when there is
// none. It reads counters and gauges.
func Value(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	mf := fams[name]
	if mf == nil {
		return 0, false
	}
next:
	for _, m := range mf.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		}
		return 0, false
	}
	return 0, false
}
