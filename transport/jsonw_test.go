package transport

import (
	"encoding/json"
	"testing"
	"time"
)

func TestAppendTime(t *testing.T) {
	cases := []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 11, 25, 17, 2, 3, 123_999_999, time.UTC), `"2026-11-25T17:02:03.123Z"`},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), `"2026-01-02T03:04:05.000Z"`},
		{time.Date(2026, 1, 2, 3, 4, 5, 7_000_000, time.FixedZone("X", 3600)), `"2026-01-02T02:04:05.007Z"`},
		{time.Date(999, 12, 31, 23, 59, 59, 999_000_000, time.UTC), `"0999-12-31T23:59:59.999Z"`},
	}
	for _, c := range cases {
		if got := string(appendTime(nil, c.in)); got != c.want {
			t.Errorf("appendTime(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "nl\n cr\r tab\t", "ctl\x00\x1f", "ünïcødé ✓",
		"bad\xffutf8", "\u2028"} {
		out := appendString(nil, s)
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Errorf("appendString(%q) = %s: not JSON: %v", s, out, err)
			continue
		}
		want := s
		if s == "bad\xffutf8" {
			want = "bad\ufffdutf8"
		}
		if back != want {
			t.Errorf("appendString(%q) round-trips to %q", s, back)
		}
	}
}

func TestParseDecimalID(t *testing.T) {
	for in, want := range map[string]uint64{"1": 1, "42": 42, "9223372036854775807": 1<<63 - 1} {
		if got, ok := parseDecimalID([]byte(in)); !ok || got != want {
			t.Errorf("parseDecimalID(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "0", "01", "-1", "+1", "1a", "9223372036854775808", "99999999999999999999", " 1"} {
		if _, ok := parseDecimalID([]byte(in)); ok {
			t.Errorf("parseDecimalID(%q) accepted", in)
		}
	}
}
