package main

import (
	"io"
	"strings"
	"testing"
)

// TestConfigBoundsTTLsAndKeyBudget: TTLs above 30 days and a key budget out
// of range are refused with the flag named.
func TestConfigBoundsTTLsAndKeyBudget(t *testing.T) {
	for _, c := range []struct{ arg, flag string }{
		{"--hold-ttl=721h", "--hold-ttl"},
		{"--order-ttl=100000h", "--order-ttl"},
		{"--queued-webhook-ttl=2562047h", "--queued-webhook-ttl"},
		{"--idempotency-key-bytes-max=0", "--idempotency-key-bytes-max"},
	} {
		_, err := parseConfig([]string{c.arg}, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s: err = %v, want one naming %s", c.arg, err, c.flag)
		}
	}
	if _, err := parseConfig([]string{"--hold-ttl=720h", "--idempotency-key-bytes-max=1048576"}, func(string) string { return "" }, io.Discard); err != nil {
		t.Errorf("the bounds themselves: %v", err)
	}
}
