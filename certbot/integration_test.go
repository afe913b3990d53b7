package certbot

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/command"
	"github.com/sitesync/sitesync/internal/testenv"
)

// TestBackoffWithRealCertbot drives real certbot: against a closed port it
// fails, the failure is backed off (with an injected clock) and survives a
// reopen of the state file; against pebble it succeeds, which clears it.
func TestBackoffWithRealCertbot(t *testing.T) {
	t.Parallel()
	ca := testenv.StartPebble(t)
	cb := testenv.NewCertbot(t, ca)
	c := &Certbot{
		Command:   cb.Command,
		ConfigDir: cb.ConfigDir,
		WorkDir:   cb.WorkDir,
		LogsDir:   cb.LogsDir,
		Webroot:   cb.Webroot,
		Env:       cb.Env,
		Timeout:   2 * time.Minute,
		Server:    "https://127.0.0.1:1/dir", // nothing listens on port 1, and no free-port pick returns it
	}
	clk := newFakeClock()
	path := filepath.Join(t.TempDir(), "state", "certbot-backoff.json")
	b := openTestBackoff(t, path, BackoffOptions{Now: clk.Now})
	req := Request{Name: "site", Domains: []string{"site.test", "www.site.test"}}
	ctx := context.Background()

	// issue is what the reconciler does for one certificate.
	issue := func() error {
		t.Helper()
		if err := b.Check(req.Name, req.Domains); err != nil {
			return err
		}
		err := c.Issue(ctx, req)
		if err != nil {
			if ferr := b.Failed(req.Name, req.Domains, err); ferr != nil {
				t.Fatal(ferr)
			}
			return err
		}
		if serr := b.Succeeded(req.Name); serr != nil {
			t.Fatal(serr)
		}
		return nil
	}

	err := issue()
	var ce *command.Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Output, "Connection refused") {
		t.Fatalf("issuance against a closed port: %v", err)
	}
	failedAt := clk.Now()
	e := b.Entries()[req.Name]
	if e.Failures != 1 || !e.Next.Equal(failedAt.Add(DefaultBackoffMin)) || e.RateLimited || !strings.Contains(e.LastError, "Connection refused") {
		t.Fatalf("entry after the failure: %+v", e)
	}
	if ok, next, lastErr := b.Allowed(req.Name, req.Domains); ok || !next.Equal(e.Next) || lastErr != e.LastError {
		t.Fatalf("Allowed after the failure = %v, %v, %q", ok, next, lastErr)
	}
	var we *WaitError
	if err := issue(); !errors.As(err, &we) {
		t.Fatalf("second issuance during the backoff: %v, want a *WaitError", err)
	}

	// A restart: the backoff is read back from the file.
	b = openTestBackoff(t, path, BackoffOptions{Now: clk.Now})
	clk.Add(DefaultBackoffMin - time.Second)
	if ok, next, _ := b.Allowed(req.Name, req.Domains); ok || !next.Equal(e.Next) {
		t.Fatalf("after a reopen, 1s before the end: Allowed = %v, %v", ok, next)
	}
	// A fixed domain set in git is tried at once.
	if ok, _, _ := b.Allowed(req.Name, []string{"site.test"}); !ok {
		t.Fatal("a changed domain set is held back")
	}
	clk.Add(time.Second)
	if ok, _, _ := b.Allowed(req.Name, req.Domains); !ok {
		t.Fatal("not allowed once the backoff passed")
	}

	// A second failure doubles the wait.
	if err := issue(); err == nil {
		t.Fatal("second issuance against a closed port succeeded")
	}
	if e := b.Entries()[req.Name]; e.Failures != 2 || !e.Next.Equal(clk.Now().Add(2*DefaultBackoffMin)) {
		t.Fatalf("entry after the second failure: %+v", e)
	}

	// The CA is back: the issuance succeeds and the name is cleared.
	c.Server = ca.DirectoryURL
	clk.Add(2 * DefaultBackoffMin)
	if err := issue(); err != nil {
		t.Fatalf("issuance against pebble: %v", err)
	}
	cert, err := Read(c.ConfigDir, req.Name)
	if err != nil || !slices.Equal(cert.Names, req.Domains) {
		t.Fatalf("issued certificate: %+v, %v", cert, err)
	}
	if len(b.Entries()) != 0 {
		t.Fatalf("entries after the success: %v", b.Entries())
	}
	if b = openTestBackoff(t, path, BackoffOptions{Now: clk.Now}); len(b.Entries()) != 0 {
		t.Fatalf("entries after the success and a reopen: %v", b.Entries())
	}
	if ok, _, _ := b.Allowed(req.Name, req.Domains); !ok {
		t.Fatal("not allowed after the success")
	}
	if _, err := os.Stat(filepath.Join(c.WorkDir, DefaultLockName)); err != nil {
		t.Errorf("no lock file in WorkDir: %v", err)
	}
}

// rateLimitingCA is a minimal ACME server that registers accounts and
// answers every new order with Let's Encrypt's rateLimited problem and a
// Retry-After header, as Boulder does. registration makes it refuse new
// accounts instead.
func rateLimitingCA(t *testing.T, detail string, registration bool) (dirURL, caFile string) {
	t.Helper()
	var srv *httptest.Server
	problem := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type": "urn:ietf:params:acme:error:rateLimited", "detail": detail, "status": 429,
		})
	}
	srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Replay-Nonce", fmt.Sprintf("nonce%d", time.Now().UnixNano()))
		w.Header().Set("Cache-Control", "no-store")
		switch r.URL.Path {
		case "/dir":
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{
				"newNonce": srv.URL + "/nonce", "newAccount": srv.URL + "/account",
				"newOrder": srv.URL + "/order", "revokeCert": srv.URL + "/revoke", "keyChange": srv.URL + "/key-change",
			})
		case "/nonce":
			w.WriteHeader(http.StatusOK)
		case "/account":
			if registration {
				problem(w)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Location", srv.URL+"/account/1")
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "valid", "orders": srv.URL + "/account/1/orders"})
		default:
			problem(w)
		}
	}))
	t.Cleanup(srv.Close)
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") {
		t.Fatalf("test CA listens on %s, not 127.0.0.1", srv.URL)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv.URL + "/dir", caFile
}

// TestRateLimitWithRealCertbot checks that what certbot 2.x really prints
// (and logs) when Let's Encrypt rate-limits it reaches the Backoff: the
// wait ends at the CA's "retry after" time.
func TestRateLimitWithRealCertbot(t *testing.T) {
	t.Parallel()
	bin := testenv.RequireTool(t, "certbot")
	retryAt := time.Now().Add(3 * time.Hour).UTC().Truncate(time.Second)
	for _, tt := range []struct {
		name         string
		detail       string
		registration bool
	}{
		{"new order", `too many failed authorizations (5) for "rl.test" in the last 1h0m0s, retry after ` + retryAt.Format(time.RFC3339) +
			`: see https://letsencrypt.org/docs/rate-limits/#authorization-failures-per-hostname-per-account`, false},
		{"new account", "too many new registrations (10) from this IP address in the last 3h0m0s, retry after " + retryAt.Format(time.DateTime) +
			" UTC: see https://letsencrypt.org/docs/rate-limits/#new-registrations-per-ip-address", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dirURL, caFile := rateLimitingCA(t, tt.detail, tt.registration)
			dir := t.TempDir()
			c := &Certbot{
				Command:   []string{bin},
				ConfigDir: filepath.Join(dir, "config"),
				WorkDir:   filepath.Join(dir, "work"),
				LogsDir:   filepath.Join(dir, "logs"),
				Webroot:   filepath.Join(dir, "webroot"),
				Server:    dirURL,
				Env:       []string{"REQUESTS_CA_BUNDLE=" + caFile},
				Timeout:   2 * time.Minute,
			}
			req := Request{Name: "rl", Domains: []string{"rl.test"}}
			err := c.Issue(context.Background(), req)
			if err == nil {
				t.Fatal("issuance succeeded against a rate-limiting CA")
			}
			t.Logf("error: %v", err)
			if !strings.Contains(err.Error(), "retry after") {
				t.Fatalf("the CA's rate-limit message is not in the error:\n%v", err)
			}
			if !tt.registration && !strings.Contains(err.Error(), "(Retry-After: 3600)") {
				t.Errorf("the error lacks the detail from certbot's log:\n%v", err)
			}
			b := openTestBackoff(t, filepath.Join(dir, "certbot-backoff.json"), BackoffOptions{})
			if ferr := b.Failed(req.Name, req.Domains, err); ferr != nil {
				t.Fatal(ferr)
			}
			e := b.Entries()[req.Name]
			if !e.RateLimited || !e.Next.Equal(retryAt) {
				t.Errorf("entry = %+v, want rate limited until %v\nerror: %v", e, retryAt, err)
			}
			if ok, next, _ := b.Allowed(req.Name, req.Domains); ok || !next.Equal(retryAt) {
				t.Errorf("Allowed = %v, %v", ok, next)
			}
		})
	}
}
