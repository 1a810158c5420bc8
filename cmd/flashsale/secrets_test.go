package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func noEnv(string) string { return "" }

// TestSecretsFromFiles: --webhook-secret-file and --admin-token-file (and
// their variables) read the secret from a file without its trailing
// newline.
func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	secret, token := filepath.Join(dir, "secret"), filepath.Join(dir, "token")
	writeFile(t, secret, "whsec_123\n")
	writeFile(t, token, "tok en\r\n")
	c, err := parseConfig([]string{"--webhook-secret-file", secret, "--admin-token-file", token}, noEnv, io.Discard)
	if err != nil || c.webhookSecret != "whsec_123" || c.adminToken != "tok en" {
		t.Fatalf("from flags: secret %q, token %q, %v", c.webhookSecret, c.adminToken, err)
	}
	env := map[string]string{"FLASHSALE_WEBHOOK_SECRET_FILE": secret, "FLASHSALE_ADMIN_TOKEN_FILE": token}
	c, err = parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil || c.webhookSecret != "whsec_123" || c.adminToken != "tok en" {
		t.Fatalf("from variables: secret %q, token %q, %v", c.webhookSecret, c.adminToken, err)
	}
	writeFile(t, secret, "no-newline")
	if c, err = parseConfig([]string{"--webhook-secret-file", secret}, noEnv, io.Discard); err != nil || c.webhookSecret != "no-newline" {
		t.Fatalf("without a newline: %q, %v", c.webhookSecret, err)
	}
}

// TestSecretFilesRefused: an empty file, a missing one, and a secret given
// both as a value and as a file are refused, naming the flag and never
// the secret.
func TestSecretFilesRefused(t *testing.T) {
	dir := t.TempDir()
	empty, newline, good := filepath.Join(dir, "empty"), filepath.Join(dir, "newline"), filepath.Join(dir, "good")
	writeFile(t, empty, "")
	writeFile(t, newline, "\n")
	writeFile(t, good, "s3cret-in-file\n")
	unreadable := filepath.Join(dir, "unreadable")
	writeFile(t, unreadable, "x")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--webhook-secret-file", empty}, nil, "--webhook-secret-file " + empty + " is empty"},
		{[]string{"--admin-token-file", newline}, nil, "--admin-token-file " + newline + " is empty"},
		{[]string{"--webhook-secret-file", filepath.Join(dir, "missing")}, nil, "--webhook-secret-file: open"},
		{[]string{"--webhook-secret", "s3cret-on-flag", "--webhook-secret-file", good}, nil, "both given"},
		{[]string{"--admin-token-file", good}, map[string]string{"FLASHSALE_ADMIN_TOKEN": "s3cret-on-env"}, "both given"},
	}
	if os.Geteuid() != 0 { // root reads any file
		cases = append(cases, struct {
			args []string
			env  map[string]string
			want string
		}{[]string{"--admin-token-file", unreadable}, nil, "permission denied"})
	}
	for _, c := range cases {
		_, err := parseConfig(c.args, func(k string) string { return c.env[k] }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: err = %v, want one with %q", c.args, c.env, err, c.want)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: the error shows the secret: %v", c.args, err)
		}
	}
	// The binary exits 2 on them, as on any bad flag.
	p := launch(t, nil, "--data-dir", t.TempDir(), "--webhook-secret-file", empty)
	if code := p.waitExit(); code != 2 || !strings.Contains(p.log(), "is empty") {
		t.Errorf("empty secret file: exit %d, want 2:\n%s", code, p.log())
	}
}

// TestWebhookSecretFileTakesEffect and the warning: a server given its
// secret in a file checks signatures and says nothing of unsigned webhooks;
// one without a secret warns at start, at warn level, that webhooks are
// accepted unsigned.
func TestWebhookSecretFileTakesEffect(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	writeFile(t, secret, "whsec_file\n")
	p := startProc(t, nil, "--data-dir", t.TempDir(), "--webhook-secret-file", secret)
	p.expect(401, "POST", "/api/payments/webhook", `{"status":"success","order_id":1}`, "Idempotency-Key", "k")
	if strings.Contains(p.log(), "unsigned") {
		t.Errorf("a server with a secret warned about unsigned webhooks:\n%s", p.log())
	}
	p.stop(syscall.SIGTERM)

	q := startProc(t, nil, "--data-dir", t.TempDir())
	warned := false
	for _, line := range strings.Split(q.log(), "\n") {
		if strings.Contains(line, `"level":"warn"`) && strings.Contains(line, "accepted unsigned") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning that webhooks are accepted unsigned:\n%s", q.log())
	}
	q.stop(syscall.SIGTERM)
}
