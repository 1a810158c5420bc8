package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFlagsAndEnvironment: every flag is read from FLASHSALE_<NAME>; a flag
// on the command line wins.
func TestFlagsAndEnvironment(t *testing.T) {
	env := []string{
		"FLASHSALE_DATA_DIR=" + t.TempDir(),
		"FLASHSALE_HOLD_TTL=300ms",
		"FLASHSALE_ADMIN_TOKEN=envtoken",
		"FLASHSALE_WEBHOOK_SECRET=shh",
		"FLASHSALE_LOG_LEVEL=debug",
	}
	p := startProc(t, env)
	r := p.expect(201, "POST", "/api/holds", `{"product_id":1,"qty":1}`)
	expires, _ := time.Parse(time.RFC3339, field(t, r, "expires_at"))
	if d := time.Until(expires); d > time.Second {
		t.Errorf("FLASHSALE_HOLD_TTL=300ms ignored: expires in %v", d)
	}
	p.expect(201, "POST", "/api/admin/products", `{"name":"x","price_cents":1,"total_stock":1}`, "Authorization", "Bearer envtoken")
	p.expect(401, "POST", "/api/payments/webhook", `{"status":"success","order_id":1}`, "Idempotency-Key", "k")
	p.stop(syscall.SIGTERM)

	q := startProc(t, env, "--hold-ttl", "1m", "--log-format", "console")
	r = q.expect(201, "POST", "/api/holds", `{"product_id":1,"qty":1}`)
	expires, _ = time.Parse(time.RFC3339, field(t, r, "expires_at"))
	if d := time.Until(expires); d < 50*time.Second {
		t.Errorf("--hold-ttl 1m did not win over the environment: expires in %v", d)
	}
	q.stop(syscall.SIGTERM)
}

// TestBadConfiguration: bad flags and values exit 2 with a message; --help
// exits 0.
func TestBadConfiguration(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"--fsync", "sometimes"}, nil, 2, "--fsync"},
		{[]string{"--hold-ttl", "0s"}, nil, 2, "--hold-ttl"},
		{[]string{"--order-ttl", "-1s"}, nil, 2, "--order-ttl"},
		{[]string{"--log-format", "xml"}, nil, 2, "--log-format"},
		{[]string{"--log-level", "loud"}, nil, 2, "--log-level"},
		{[]string{"--no-such-flag"}, nil, 2, "no-such-flag"},
		{nil, []string{"FLASHSALE_HOLD_TTL=soon"}, 2, "FLASHSALE_HOLD_TTL"},
		{[]string{"--help"}, nil, 0, "FLASHSALE_"},
	} {
		p := launch(t, c.env, append([]string{"--data-dir", t.TempDir()}, c.args...)...)
		if code := p.waitExit(); code != c.code || !strings.Contains(p.log(), c.want) {
			t.Errorf("%v %v: exit %d, want %d with %q in:\n%s", c.args, c.env, code, c.code, c.want, p.log())
		}
	}
}

// TestSeed: the demo catalog without --seed; a seed file fills an empty data
// directory and is ignored once it holds data; a bad seed file is refused.
func TestSeed(t *testing.T) {
	demo := startProc(t, nil, "--data-dir", t.TempDir())
	m := demo.expect(200, "GET", "/api/products", "").obj(t)["products"].([]any)
	if len(m) < 3 {
		t.Fatalf("demo catalog: %v", m)
	}
	hot := m[1].(map[string]any)
	if hot["total_stock"].(float64) > 20 || hot["max_per_hold"].(float64) > 2 {
		t.Errorf("product 2 is not a hot item with small stock: %v", hot)
	}
	demo.stop(syscall.SIGTERM)

	dir := t.TempDir()
	seed := filepath.Join(t.TempDir(), "seed.json")
	writeFile(t, seed, `[{"id":10,"name":"Seeded","price_cents":700,"total_stock":3,"max_per_hold":1},
		{"id":12,"name":"Other","price_cents":0,"total_stock":0}]`)
	p := startProc(t, nil, "--data-dir", dir, "--seed", seed)
	got := p.expect(200, "GET", "/api/products", "")
	want := `{"products":[{"id":10,"name":"Seeded","price_cents":700,"total_stock":3,"available_stock":3,"reserved_stock":0,"sold_stock":0,"max_per_hold":1},` +
		`{"id":12,"name":"Other","price_cents":0,"total_stock":0,"available_stock":0,"reserved_stock":0,"sold_stock":0,"max_per_hold":10}]}`
	if string(got.body) != want {
		t.Fatalf("seeded catalog:\n%s\nwant\n%s", got.body, want)
	}
	p.expect(201, "POST", "/api/holds", `{"product_id":10,"qty":1}`)
	p.stop(syscall.SIGTERM)

	other := filepath.Join(t.TempDir(), "other.json")
	writeFile(t, other, `[{"id":1,"name":"Ignored","price_cents":1,"total_stock":1}]`)
	q := startProc(t, nil, "--data-dir", dir, "--seed", other)
	if b := q.expect(200, "GET", "/api/products", "").body; !strings.Contains(string(b), `"available_stock":2`) || strings.Contains(string(b), "Ignored") {
		t.Errorf("a seed was loaded into a non-empty data directory: %s", b)
	}
	if !strings.Contains(q.log(), "seed file ignored") {
		t.Errorf("no note that the seed was ignored:\n%s", q.log())
	}
	q.stop(syscall.SIGTERM)

	for _, content := range []string{`{`, `[{"id":0,"name":"x","price_cents":1,"total_stock":1}]`,
		`[{"id":1,"name":"","price_cents":1,"total_stock":1}]`, `[{"id":1,"name":"x","price_cents":-1,"total_stock":1}]`,
		`[{"id":1,"name":"x","price_cents":1,"total_stock":1},{"id":1,"name":"y","price_cents":1,"total_stock":1}]`,
		`[{"id":1,"name":"x","price_cents":1,"total_stock":1,"max_per_hold":0}]`} {
		bad := filepath.Join(t.TempDir(), "bad.json")
		writeFile(t, bad, content)
		r := launch(t, nil, "--data-dir", t.TempDir(), "--seed", bad)
		if code := r.waitExit(); code == 0 {
			t.Errorf("seed %s accepted", content)
		}
	}
}

// TestFsyncNeverWarns: --fsync=never says at start that acknowledged work
// can be lost.
func TestFsyncNeverWarns(t *testing.T) {
	p := startProc(t, nil, "--data-dir", t.TempDir(), "--fsync", "never")
	p.expect(201, "POST", "/api/holds", `{"product_id":1,"qty":1}`)
	if !strings.Contains(p.log(), `"level":"warn"`) || !strings.Contains(p.log(), "can lose acknowledged") {
		t.Errorf("no warning for --fsync=never:\n%s", p.log())
	}
	p.stop(syscall.SIGTERM)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConnectionFlags: the connection limits default to 65,536 in total and
// 4,096 per address, come from flags or the environment, and are refused
// out of range with the flag named.
func TestConnectionFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	c, err := parseConfig(nil, noEnv, io.Discard)
	if err != nil || c.connectionsMax != 65536 || c.connectionsPerIPMax != 4096 {
		t.Fatalf("defaults: %d, %d, %v", c.connectionsMax, c.connectionsPerIPMax, err)
	}
	env := func(k string) string {
		if k == "FLASHSALE_CONNECTIONS_PER_IP_MAX" {
			return "3"
		}
		return ""
	}
	c, err = parseConfig([]string{"--connections-max", "10"}, env, io.Discard)
	if err != nil || c.connectionsMax != 10 || c.connectionsPerIPMax != 3 {
		t.Fatalf("--connections-max 10 and FLASHSALE_CONNECTIONS_PER_IP_MAX=3: %d, %d, %v", c.connectionsMax, c.connectionsPerIPMax, err)
	}
	for _, c := range []struct{ arg, flag string }{
		{"--connections-max=0", "--connections-max"},
		{"--connections-max=-1", "--connections-max"},
		{"--connections-max=1048577", "--connections-max"},
		{"--connections-max=many", "connections-max"},
		{"--connections-per-ip-max=0", "--connections-per-ip-max"},
		{"--connections-per-ip-max=1048577", "--connections-per-ip-max"},
	} {
		_, err := parseConfig([]string{c.arg}, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%s: err = %v, want one naming %s", c.arg, err, c.flag)
		}
	}
}
