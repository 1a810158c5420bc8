package main

import "testing"

func TestBadArgumentsExitTwo(t *testing.T) {
	cases := [][]string{
		{"--workload", "nope"},
		{"--ratio", "x:y", "--workload", "mixed"},
		{"--workload", "hot", "--admin-token", ""},
		{"--workload", "grants", "--admin-token", ""},
		{"--url", "https://example.invalid", "--workload", "browse"},
		{"--no-such-flag"},
		{"stray"},
		{"--success", "1.5"},
	}
	for _, args := range cases {
		if code := run(args); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
	}
}
