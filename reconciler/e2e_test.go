package reconciler_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/render"
)

// host is one test host: a private nginx, a site repository and the
// configuration that ties them together.
type host struct {
	t     *testing.T
	nginx *testenv.Nginx
	repo  string
	cfg   *config.Config
	cb    *testenv.Certbot
	// clock is the certificate backoff's notion of now.
	clock time.Time
}

func newHost(t *testing.T, files map[string]string) *host {
	t.Helper()
	n := testenv.StartNginx(t)
	repo := testenv.NewGitRepo(t, files)
	cfg := testenv.HostConfig(t, n, repo)
	return &host{t: t, nginx: n, repo: repo, cfg: cfg, clock: time.Now()}
}

// withCertbot points the host's certbot configuration at a private pebble.
func (h *host) withCertbot(p *testenv.Pebble) {
	h.cb = testenv.NewCertbot(h.t, p)
	h.cfg.Certbot.Command = h.cb.Command
	h.cfg.Certbot.ConfigDir, h.cfg.Certbot.WorkDir, h.cfg.Certbot.LogsDir = h.cb.ConfigDir, h.cb.WorkDir, h.cb.LogsDir
	h.cfg.Certbot.Server, h.cfg.Certbot.Env = h.cb.Server, h.cb.Env
}

func (h *host) reconciler() *reconciler.Reconciler {
	src := reconciler.SourceFor(h.cfg)
	var issuer reconciler.Issuer
	if h.cb != nil {
		issuer = &certbot.Certbot{
			Command: h.cfg.Certbot.Command, ConfigDir: h.cfg.Certbot.ConfigDir, WorkDir: h.cfg.Certbot.WorkDir,
			LogsDir: h.cfg.Certbot.LogsDir, Server: h.cfg.Certbot.Server, Webroot: h.cfg.Certbot.Webroot,
			Env: h.cfg.Certbot.Env, Timeout: time.Minute,
		}
	}
	log := slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := reconciler.New(h.cfg, src, issuer, log)
	if issuer != nil {
		bo, err := certbot.OpenBackoff(filepath.Join(h.cfg.Reconcile.StateDir, "certbot-backoff.json"), certbot.BackoffOptions{Now: func() time.Time { return h.clock }})
		if err != nil {
			h.t.Fatal(err)
		}
		r.SetCertBackoff(bo)
	}
	return r
}

func (h *host) pass() (*reconciler.Result, error) {
	h.t.Helper()
	return h.reconciler().Reconcile(context.Background())
}

func (h *host) mustPass() *reconciler.Result {
	h.t.Helper()
	res, err := h.pass()
	if err != nil {
		h.t.Fatalf("pass: %v", err)
	}
	return res
}

func (h *host) commit(files map[string]string) {
	testenv.CommitFiles(h.t, h.repo, files, "change")
}

func (h *host) confFile(name string) string { return filepath.Join(h.cfg.Nginx.ConfDir, name) }

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// backend is a test upstream that says who it is.
func backend(t *testing.T, name string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s host=%s", name, r.URL.Path, r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func sitesYAML(sites string) string { return "version: 1\nsites:\n" + sites }

func TestConvergeServeAndStayInSync(t *testing.T) {
	app, api := backend(t, "app"), backend(t, "api")
	h := newHost(t, map[string]string{
		"sites.yaml": sitesYAML(fmt.Sprintf(`
  - name: app
    serverNames: [app.test]
    locations:
      - path: /
        proxyPass: %s
  - name: api
    serverNames: [api.test]
    includes: [hdr.conf]
    locations:
      - path: /
        proxyPass: %s
  - name: moved
    serverNames: [old.test]
    redirect: https://new.test/
`, app, api)),
		"snippets/hdr.conf": "add_header X-Site-Header from-snippet;\n",
	})
	unmanaged := h.confFile("zz-hand-written.conf")
	if err := os.WriteFile(unmanaged, []byte("# not ours\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	res := h.mustPass()
	if res.Written != 6 || res.Deleted != 0 || !res.Reloaded {
		t.Fatalf("first pass: written=%d deleted=%d reloaded=%t, want 6 files and a reload", res.Written, res.Deleted, res.Reloaded)
	}
	if got := h.nginx.WaitReloads(t, 1); got != 1 {
		t.Fatalf("reloads after first pass = %d, want 1", got)
	}
	if code, body := h.nginx.GetEventually(t, "app.test", "/x", func(c int, b string) bool { return c == 200 }); !strings.HasPrefix(body, "app /x host=app.test") {
		t.Fatalf("app.test: %d %q", code, body)
	}
	if code, body := h.nginx.GetEventually(t, "api.test", "/y", func(c int, _ string) bool { return c == 200 }); code != 200 || !strings.HasPrefix(body, "api /y") {
		t.Fatalf("api.test: %d %q", code, body)
	}
	if code, _ := h.nginx.GetEventually(t, "old.test", "/p?q=1", func(c int, _ string) bool { return c == 301 }); code != 301 {
		t.Fatalf("old.test: status %d, want 301", code)
	}
	if code, _ := h.nginx.Get(t, "unknown.test", "/"); code != 404 {
		t.Fatalf("default server: status %d, want 404", code)
	}
	if !slicesContains(res.Unmanaged, "conf.d/zz-hand-written.conf") {
		t.Fatalf("unmanaged = %v", res.Unmanaged)
	}

	// Nothing changed: zero writes, zero reloads.
	res = h.mustPass()
	if !res.Plan.Empty() || res.Written+res.Deleted+res.Issued != 0 || res.Reloaded {
		t.Fatalf("second pass did something: %+v", res.Plan)
	}
	time.Sleep(100 * time.Millisecond)
	if got := h.nginx.ReloadCount(t); got != 1 {
		t.Fatalf("reloads after no-op pass = %d, want 1", got)
	}

	// A hand edit and a deletion are reverted by the next pass, with one reload.
	appFile, _ := os.ReadFile(h.confFile("app.conf"))
	if err := os.WriteFile(h.confFile("app.conf"), append(appFile, "# edited\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(h.confFile("api.conf")); err != nil {
		t.Fatal(err)
	}
	res = h.mustPass()
	if res.Written != 2 || !res.Reloaded {
		t.Fatalf("repair pass: written=%d reloaded=%t", res.Written, res.Reloaded)
	}
	kinds := map[reconciler.DriftKind]string{}
	for _, d := range res.Drift {
		kinds[d.Kind] = d.Site
	}
	if kinds[reconciler.DriftConfigChanged] != "app" || kinds[reconciler.DriftConfigMissing] != "api" {
		t.Fatalf("drift = %+v", res.Drift)
	}
	if got, _ := os.ReadFile(h.confFile("app.conf")); string(got) != string(appFile) {
		t.Fatal("hand edit not reverted")
	}
	if got := h.nginx.WaitReloads(t, 2); got != 2 {
		t.Fatalf("reloads = %d, want 2", got)
	}

	// Removing a site from git prunes its file; the unmanaged file stays.
	h.commit(map[string]string{"sites.yaml": sitesYAML(fmt.Sprintf(`
  - name: app
    serverNames: [app.test]
    locations:
      - path: /
        proxyPass: %s
`, app)), "snippets/hdr.conf": ""})
	res = h.mustPass()
	if res.Deleted != 3 {
		t.Fatalf("prune pass deleted %d files, want 3 (api, moved, hdr.conf)", res.Deleted)
	}
	for _, gone := range []string{h.confFile("api.conf"), h.confFile("moved.conf"), filepath.Join(h.cfg.Nginx.SnippetsDir, "hdr.conf")} {
		if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists", gone)
		}
	}
	if b, err := os.ReadFile(unmanaged); err != nil || string(b) != "# not ours\n" {
		t.Fatalf("unmanaged file touched: %q, %v", b, err)
	}
	if code, _ := h.nginx.GetEventually(t, "api.test", "/", func(c int, _ string) bool { return c == 404 }); code != 404 {
		t.Fatalf("pruned site still served: %d", code)
	}
}

func TestQuarantineHoldsOnlyTheBadSites(t *testing.T) {
	app := backend(t, "app")
	site := func(name, extra string) string {
		return fmt.Sprintf("\n  - name: %s\n    serverNames: [%s.test]\n%s    locations:\n      - path: /\n        proxyPass: %s\n", name, name, extra, app)
	}
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(site("a", "") + site("c", ""))})
	h.mustPass()
	h.nginx.WaitReloads(t, 1)
	cBefore, _ := os.ReadFile(h.confFile("c.conf"))

	// a changes for the better; b is new and broken; c gets a broken change.
	// Both pass sitesync's validation and fail nginx -t (a snippet that does
	// not exist).
	broken := "    includes: [missing-snippet.conf]\n"
	h.commit(map[string]string{"sites.yaml": sitesYAML(site("a", "    clientMaxBodySize: 5m\n") + site("b", broken) + site("c", broken))})
	res, err := h.pass()
	var se reconciler.SiteErrors
	if !errors.As(err, &se) || len(se) != 2 || !errors.Is(se["b"], reconciler.ErrQuarantined) || !errors.Is(se["c"], reconciler.ErrQuarantined) || !reconciler.IsTerminal(err) {
		t.Fatalf("err = %v, want b and c quarantined (terminal)", err)
	}
	if !strings.Contains(se["c"].Error(), "missing-snippet.conf") {
		t.Errorf("quarantine error lacks nginx's message: %v", se["c"])
	}
	if !res.Reloaded {
		t.Fatal("the good change was not reloaded")
	}
	if got, _ := os.ReadFile(h.confFile("a.conf")); !strings.Contains(string(got), "client_max_body_size 5m") {
		t.Fatal("a did not converge")
	}
	if _, err := os.Stat(h.confFile("b.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("b, which never passed, is on disk")
	}
	if got, _ := os.ReadFile(h.confFile("c.conf")); string(got) != string(cBefore) {
		t.Fatal("c is not held at its last good version")
	}
	if got := h.nginx.WaitReloads(t, 2); got != 2 {
		t.Fatalf("reloads = %d, want 2", got)
	}
	if out, err := exec.Command(h.nginx.TestCommand[0], h.nginx.TestCommand[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("conf.d fails nginx -t after quarantine: %v\n%s", err, out)
	}

	// The same commit again: nothing is written or tested again, the sites
	// stay held.
	res, err = h.pass()
	if !errors.As(err, &se) || len(se) != 2 || res.Written != 0 || res.Reloaded {
		t.Fatalf("second pass: err=%v written=%d reloaded=%t", err, res.Written, res.Reloaded)
	}

	// A commit that fixes c clears its quarantine; b stays held.
	h.commit(map[string]string{"sites.yaml": sitesYAML(site("a", "    clientMaxBodySize: 5m\n") + site("b", broken) + site("c", "    clientMaxBodySize: 1m\n"))})
	res, err = h.pass()
	if !errors.As(err, &se) || len(se) != 1 || se["b"] == nil {
		t.Fatalf("after fixing c: err = %v, want only b held", err)
	}
	if got, _ := os.ReadFile(h.confFile("c.conf")); !strings.Contains(string(got), "client_max_body_size 1m") {
		t.Fatal("fixed c not applied")
	}
}

// TestManyRejectedSitesApplyNothing: when nginx rejects site after site,
// the cause is something they share (here every new site includes a
// snippet that does not exist, as a template or an nginx version problem
// would break every file); holding them one nginx -t at a time would run
// it once per site of the fleet, so after maxHeldPerPass (10) sites the
// pass puts everything back.
func TestManyRejectedSitesApplyNothing(t *testing.T) {
	app := backend(t, "app")
	site := func(name, extra string) string {
		return fmt.Sprintf("\n  - name: %s\n    serverNames: [%s.test]\n%s    locations:\n      - path: /\n        proxyPass: %s\n", name, name, extra, app)
	}
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(site("a", ""))})
	// Count the nginx -t runs: the shell appends a line to the file named
	// by its first argument, then runs nginx -t with the remaining ones.
	runs := filepath.Join(t.TempDir(), "tests")
	h.cfg.Nginx.TestCommand = append([]string{"sh", "-c", `echo run >> "$0" && exec "$@"`, runs}, h.nginx.TestCommand...)
	h.mustPass()
	h.nginx.WaitReloads(t, 1)
	before := snapshot(t, h.cfg.Nginx.ConfDir)
	os.Remove(runs)

	sites := site("a", "    clientMaxBodySize: 5m\n")
	for i := range 14 {
		sites += site(fmt.Sprintf("broken%02d", i), "    includes: [missing-snippet.conf]\n")
	}
	h.commit(map[string]string{"sites.yaml": sitesYAML(sites)})
	res, err := h.pass()
	if !errors.Is(err, reconciler.ErrConfigRejected) || !reconciler.IsTerminal(err) || !strings.Contains(err.Error(), "more than 10 sites") {
		t.Fatalf("err = %v, want a terminal ErrConfigRejected naming more than 10 sites", err)
	}
	if len(res.SiteErrors) != 0 || res.Reloaded || res.Written != 0 {
		t.Errorf("result: site errors %v, reloaded %t, written %d; want none of them", res.SiteErrors, res.Reloaded, res.Written)
	}
	if after := snapshot(t, h.cfg.Nginx.ConfDir); after != before {
		t.Errorf("conf.d changed:\n%s\nwas\n%s", after, before)
	}
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 11 {
		t.Errorf("nginx -t ran %d times, want 11 (one per held site and the one that gave up)", strings.Count(string(b), "run"))
	}
	if _, err := os.Stat(filepath.Join(h.cfg.Reconcile.StateDir, "quarantine.json")); err == nil {
		b, _ := os.ReadFile(filepath.Join(h.cfg.Reconcile.StateDir, "quarantine.json"))
		if strings.Contains(string(b), "broken") {
			t.Errorf("sites were quarantined although nothing was applied:\n%s", b)
		}
	}
	if got := h.nginx.ReloadCount(t); got != 1 {
		t.Errorf("reloads = %d, want 1 (the first pass only)", got)
	}
}

func TestUnattributableRejectionAppliesNothing(t *testing.T) {
	app := backend(t, "app")
	good := sitesYAML(fmt.Sprintf(`
  - name: app
    serverNames: [app.test]
    includes: [shared.conf]
    locations:
      - path: /
        proxyPass: %s
`, app))
	h := newHost(t, map[string]string{"sites.yaml": good, "snippets/shared.conf": "add_header X-A a;\n"})
	h.mustPass()
	h.nginx.WaitReloads(t, 1)
	before := snapshot(t, h.cfg.Nginx.ConfDir) + snapshot(t, h.cfg.Nginx.SnippetsDir)

	// A broken shared snippet, and a good change to the site: nginx names
	// the snippet, which belongs to no site, so nothing is applied.
	h.commit(map[string]string{"snippets/shared.conf": "add_header X-A a\n", "sites.yaml": strings.Replace(good, "proxyPass", "websocket: true\n        proxyPass", 1)})
	res, err := h.pass()
	if !errors.Is(err, reconciler.ErrConfigRejected) || !reconciler.IsTerminal(err) || !strings.Contains(err.Error(), "nothing was applied") {
		t.Fatalf("err = %v, want a terminal ErrConfigRejected saying nothing was applied", err)
	}
	if res.Reloaded || res.Written != 0 {
		t.Fatalf("reloaded=%t written=%d after a rejected configuration", res.Reloaded, res.Written)
	}
	if after := snapshot(t, h.cfg.Nginx.ConfDir) + snapshot(t, h.cfg.Nginx.SnippetsDir); after != before {
		t.Fatalf("files changed after rollback:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	time.Sleep(100 * time.Millisecond)
	if got := h.nginx.ReloadCount(t); got != 1 {
		t.Fatalf("reloads = %d, want 1", got)
	}
	for _, f := range []string{"reload-pending", "journal.json"} {
		if _, err := os.Stat(filepath.Join(h.cfg.Reconcile.StateDir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left behind after rollback", f)
		}
	}
}

func TestReloadFailureIsRetriedByTheNextPass(t *testing.T) {
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    locations:
      - path: /
        return: "200"
`)})
	good := h.cfg.Nginx.ReloadCommand
	h.cfg.Nginx.ReloadCommand = []string{"false"}
	if _, err := h.pass(); err == nil || reconciler.IsTerminal(err) {
		t.Fatalf("failing reload: err = %v, want a transient error", err)
	}
	h.cfg.Nginx.ReloadCommand = good
	res := h.mustPass()
	if res.Written != 0 || !res.Reloaded {
		t.Fatalf("retry pass: written=%d reloaded=%t, want a reload of the files already written", res.Written, res.Reloaded)
	}
	if code, _ := h.nginx.GetEventually(t, "a.test", "/", func(c int, _ string) bool { return c == 200 }); code != 200 {
		t.Fatalf("a.test: %d", code)
	}
	if res := h.mustPass(); res.Reloaded {
		t.Fatal("third pass reloaded again")
	}
}

func TestRefusesToPruneEverything(t *testing.T) {
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    locations: [{path: /, return: "200"}]
`)})
	h.mustPass()
	h.commit(map[string]string{"sites.yaml": "version: 1\nsites: []\n"})
	if _, err := h.pass(); err == nil || !reconciler.IsTerminal(err) || !strings.Contains(err.Error(), "allow_empty") {
		t.Fatalf("err = %v, want a terminal refusal naming allow_empty", err)
	}
	if _, err := os.Stat(h.confFile("a.conf")); err != nil {
		t.Fatal("site pruned despite the refusal")
	}
	h.cfg.Reconcile.AllowEmpty = true
	if res := h.mustPass(); res.Deleted != 1 {
		t.Fatalf("allow_empty pass deleted %d", res.Deleted)
	}
}

func TestUnmanagedFileWithSiteNameBlocksOnlyThatSite(t *testing.T) {
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    locations: [{path: /, return: "200"}]
  - name: b
    serverNames: [b.test]
    locations: [{path: /, return: "200"}]
`)})
	if err := os.MkdirAll(h.cfg.Nginx.ConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.confFile("b.conf"), []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := h.pass()
	var se reconciler.SiteErrors
	if !errors.As(err, &se) || se["b"] == nil || len(se) != 1 {
		t.Fatalf("err = %v, want a site error for b only", err)
	}
	if b, _ := os.ReadFile(h.confFile("b.conf")); string(b) != "# mine\n" {
		t.Fatal("unmanaged b.conf overwritten")
	}
	if _, err := os.Stat(h.confFile("a.conf")); err != nil || !res.Reloaded {
		t.Fatalf("site a not converged: %v reloaded=%t", err, res.Reloaded)
	}
}

func TestInvalidDesiredStateIsTerminalAndTouchesNothing(t *testing.T) {
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: ["a.test;evil"]
    locations: [{path: /, return: "200"}]
`)})
	_, err := h.pass()
	if err == nil || !reconciler.IsTerminal(err) || !strings.Contains(err.Error(), "sites.yaml:5:") {
		t.Fatalf("err = %v, want terminal with sites.yaml:5:", err)
	}
	if entries, _ := os.ReadDir(h.cfg.Nginx.ConfDir); len(entries) != 0 {
		t.Fatalf("conf.d touched: %v", entries)
	}
}

func TestCertificates(t *testing.T) {
	pebble := testenv.StartPebble(t)
	app := backend(t, "app")
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(fmt.Sprintf(`
  - name: app
    serverNames: [app.test, www.app.test]
    tls: letsencrypt
    http2: true
    locations:
      - path: /
        proxyPass: %s
  - name: plain
    serverNames: [plain.test]
    locations: [{path: /, return: "200"}]
`, app))})
	h.withCertbot(pebble)

	res := h.mustPass()
	if res.Issued != 1 || !res.Reloaded {
		t.Fatalf("first pass: issued=%d reloaded=%t", res.Issued, res.Reloaded)
	}
	if c := res.Certificates["app"]; strings.Join(c.Names, ",") != "app.test,www.app.test" {
		t.Fatalf("certificate names = %v", c.Names)
	}
	// Port 80 redirects to HTTPS; HTTPS serves the app with the new certificate.
	if code, _ := h.nginx.GetEventually(t, "app.test", "/", func(c int, _ string) bool { return c == 301 }); code != 301 {
		t.Fatalf("http app.test: %d, want 301", code)
	}
	body, peer := httpsGet(t, h.nginx.HTTPSPort, "www.app.test", "/hello")
	if !strings.HasPrefix(body, "app /hello host=www.app.test") || !slicesContains(peer, "www.app.test") {
		t.Fatalf("https: %q served by cert for %v", body, peer)
	}

	// Second pass: certbot is not run again.
	if res := h.mustPass(); res.Issued != 0 || !res.Plan.Empty() {
		t.Fatalf("second pass: issued=%d plan=%v", res.Issued, res.Plan)
	}

	// A renew window wider than pebble's 5-year certificates forces renewal.
	before, _ := certbot.Read(h.cfg.Certbot.ConfigDir, "app")
	h.cfg.Certbot.RenewBefore.Duration = 6 * 365 * 24 * time.Hour
	res = h.mustPass()
	after, _ := certbot.Read(h.cfg.Certbot.ConfigDir, "app")
	if res.Issued != 1 || !res.Reloaded || !after.NotAfter.After(before.NotAfter) && after.NotAfter.Equal(before.NotAfter) {
		t.Fatalf("renewal: issued=%d reloaded=%t notAfter %v -> %v", res.Issued, res.Reloaded, before.NotAfter, after.NotAfter)
	}
	h.cfg.Certbot.RenewBefore.Duration = 30 * 24 * time.Hour

	// A new name: the certificate is reissued with it.
	h.commit(map[string]string{"sites.yaml": sitesYAML(fmt.Sprintf(`
  - name: app
    serverNames: [app.test, www.app.test, new.app.test]
    tls: letsencrypt
    locations:
      - path: /
        proxyPass: %s
  - name: plain
    serverNames: [plain.test]
    locations: [{path: /, return: "200"}]
`, app))})
	res = h.mustPass()
	if res.Issued != 1 || strings.Join(res.Certificates["app"].Names, ",") != "app.test,new.app.test,www.app.test" {
		t.Fatalf("names change: issued=%d names=%v", res.Issued, res.Certificates["app"].Names)
	}

	// The CA becomes unreachable: a new TLS site is served over HTTP only,
	// the site whose name changed keeps its current file, everything else
	// converges. (Pebble forgets accounts when restarted, which a real CA
	// does not, so the outage is a closed port instead.)
	h.cfg.Certbot.Server = "https://127.0.0.1:1/dir" // nothing listens on port 1
	appBefore, _ := os.ReadFile(h.confFile("app.conf"))
	h.commit(map[string]string{"sites.yaml": sitesYAML(fmt.Sprintf(`
  - name: app
    serverNames: [app.test, www.app.test, new.app.test, more.app.test]
    tls: letsencrypt
    locations:
      - path: /
        proxyPass: %s
  - name: plain
    serverNames: [plain.test]
    locations: [{path: /, return: "201"}]
  - name: fresh
    serverNames: [fresh.test]
    tls: letsencrypt
    locations: [{path: /, return: "200"}]
`, app))})
	res, err := h.pass()
	var se reconciler.SiteErrors
	if !errors.As(err, &se) || se["fresh"] == nil || se["app"] == nil || len(se) != 2 || reconciler.IsTerminal(err) {
		t.Fatalf("CA down: err = %v, want transient site errors for app and fresh", err)
	}
	if appAfter, _ := os.ReadFile(h.confFile("app.conf")); string(appAfter) != string(appBefore) {
		t.Fatal("app.conf changed although its new certificate could not be obtained")
	}
	fresh, _ := os.ReadFile(h.confFile("fresh.conf"))
	if strings.Contains(string(fresh), "ssl_certificate") || !strings.Contains(string(fresh), "server_name fresh.test") {
		t.Fatalf("fresh.conf should be HTTP-only:\n%s", fresh)
	}
	if code, _ := h.nginx.GetEventually(t, "plain.test", "/", func(c int, _ string) bool { return c == 201 }); code != 201 {
		t.Fatalf("plain.test not converged: %d", code)
	}
	if code, _ := h.nginx.GetEventually(t, "fresh.test", "/", func(c int, _ string) bool { return c == 200 }); code != 200 {
		t.Fatalf("fresh.test over HTTP: %d", code)
	}

	// Failing names back off: an immediate retry does not run certbot.
	res, err = h.pass()
	if !errors.As(err, &se) || len(se) != 2 || res.IssueDeferred != 2 || res.IssueFailed != 0 || res.Issued != 0 {
		t.Fatalf("retry during backoff: deferred=%d failed=%d issued=%d err=%v", res.IssueDeferred, res.IssueFailed, res.Issued, err)
	}

	// The CA is back and the backoff has passed: the next pass finishes the job.
	h.cfg.Certbot.Server = pebble.DirectoryURL
	h.clock = h.clock.Add(time.Hour)
	res = h.mustPass()
	if res.Issued != 2 {
		t.Fatalf("after CA recovery issued %d, want 2", res.Issued)
	}
	if b, _ := os.ReadFile(h.confFile("fresh.conf")); !strings.Contains(string(b), "ssl_certificate") {
		t.Fatal("fresh.conf not upgraded to TLS")
	}
	if res := h.mustPass(); !res.Plan.Empty() {
		t.Fatalf("not in sync after recovery: %v", res.Plan)
	}
}

// httpsGet fetches https://<host>:<port><path> from 127.0.0.1 with SNI set to
// host and returns the body and the DNS names of the certificate served.
func httpsGet(t *testing.T, port int, host, path string) (string, []string) {
	t.Helper()
	var names []string
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			Proxy: nil,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
			},
			TLSClientConfig: &tls.Config{
				ServerName:         host,
				InsecureSkipVerify: true, // pebble's chain; the names are checked below
				VerifyConnection: func(cs tls.ConnectionState) error {
					names = cs.PeerCertificates[0].DNSNames
					return nil
				},
			},
			DisableKeepAlives: true,
		},
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(fmt.Sprintf("https://%s:%d%s", host, port, path))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(b), names
		}
		if time.Now().After(deadline) {
			t.Fatalf("https get: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		h, _ := render.ParseHeader(data)
		fmt.Fprintf(&b, "%s %d %s\n", e.Name(), len(data), h.Sum)
	}
	return b.String()
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestReadOnlyDirectoryRollsBack makes the snippets directory immutable
// (chattr +i: even root cannot write there) so a pass fails halfway through
// its writes: the conf.d files it already wrote are put back, nothing is
// reloaded, and the next pass after the fault is cleared converges.
func TestReadOnlyDirectoryRollsBack(t *testing.T) {
	chattr := testenv.RequireTool(t, "chattr")
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    includes: [s.conf]
    locations: [{path: /, return: "200"}]
`), "snippets/s.conf": "# v1\n"})
	h.mustPass()
	before := snapshot(t, h.cfg.Nginx.ConfDir) + snapshot(t, h.cfg.Nginx.SnippetsDir)
	h.commit(map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test, www.a.test]
    includes: [s.conf]
    locations: [{path: /, return: "200"}]
`), "snippets/s.conf": "# v2\n"})
	if out, err := exec.Command(chattr, "+i", h.cfg.Nginx.SnippetsDir).CombinedOutput(); err != nil {
		t.Fatalf("chattr: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command(chattr, "-i", h.cfg.Nginx.SnippetsDir).Run() })
	res, err := h.pass()
	if err == nil || reconciler.IsTerminal(err) || !strings.Contains(err.Error(), "snippets/s.conf") {
		t.Fatalf("err = %v, want a transient error naming snippets/s.conf", err)
	}
	if res.Reloaded {
		t.Fatal("reloaded after a failed write")
	}
	if after := snapshot(t, h.cfg.Nginx.ConfDir) + snapshot(t, h.cfg.Nginx.SnippetsDir); after != before {
		t.Fatalf("files not rolled back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	exec.Command(chattr, "-i", h.cfg.Nginx.SnippetsDir).Run()
	if res := h.mustPass(); res.Written != 2 || !res.Reloaded {
		t.Fatalf("after the fault: written=%d reloaded=%t", res.Written, res.Reloaded)
	}
}

// TestDiskFullRollsBack puts conf.d on a 64 KiB tmpfs and commits a site
// file that does not fit.
func TestDiskFullRollsBack(t *testing.T) {
	mount := testenv.RequireTool(t, "mount")
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    locations: [{path: /, return: "200"}]
`)})
	if out, err := exec.Command(mount, "-t", "tmpfs", "-o", "size=64k", "tmpfs", h.cfg.Nginx.ConfDir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs (tests run as root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command(testenv.RequireTool(t, "umount"), h.cfg.Nginx.ConfDir).Run() })
	h.mustPass()
	before := snapshot(t, h.cfg.Nginx.ConfDir)
	big := "server {\n    listen 127.0.0.1:1;\n    server_name big.test;\n" + strings.Repeat("    # padding padding padding padding padding padding padding\n", 2000) + "}\n"
	h.commit(map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test, www.a.test]
    locations: [{path: /, return: "200"}]
  - name: big
    raw: big.conf
`), "big.conf": big})
	res, err := h.pass()
	if err == nil || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err = %v, want ENOSPC reported", err)
	}
	if res.Reloaded {
		t.Fatal("reloaded after a failed write")
	}
	if after := snapshot(t, h.cfg.Nginx.ConfDir); after != before {
		t.Fatalf("conf.d not rolled back:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if out, err := exec.Command(h.nginx.TestCommand[0], h.nginx.TestCommand[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t after the failed pass: %v\n%s", err, out)
	}
}

// TestGitRemoteUnreachable serves the site repository over HTTP behind a
// proxy and cuts it: a pass fails with a transient error and touches
// nothing, the host keeps serving what it had, and it converges once the
// remote is back.
func TestGitRemoteUnreachable(t *testing.T) {
	h := newHost(t, map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    locations: [{path: /, return: "200"}]
`)})
	srv, path := testenv.ServeGitHTTP(t, h.repo)
	proxy := testenv.StartProxy(t, strings.TrimPrefix(srv.URL, "http://"))
	h.cfg.Source.URL = "http://" + proxy.Addr + path
	h.mustPass()
	before := snapshot(t, h.cfg.Nginx.ConfDir)
	h.commit(map[string]string{"sites.yaml": sitesYAML(`
  - name: a
    serverNames: [a.test]
    locations: [{path: /, return: "201"}]
`)})
	proxy.Cut()
	res, err := h.pass()
	if err == nil || reconciler.IsTerminal(err) || !strings.HasPrefix(err.Error(), "pull:") {
		t.Fatalf("err = %v, want a transient pull error", err)
	}
	if res.Written+res.Deleted != 0 || res.Reloaded || snapshot(t, h.cfg.Nginx.ConfDir) != before {
		t.Fatal("a pass without the repository changed the host")
	}
	if code, _ := h.nginx.GetEventually(t, "a.test", "/", func(c int, _ string) bool { return c == 200 }); code != 200 {
		t.Fatal("the host stopped serving while the remote was away")
	}
	proxy.Restore()
	if res := h.mustPass(); res.Written != 1 {
		t.Fatalf("after the remote came back: written=%d", res.Written)
	}
}
