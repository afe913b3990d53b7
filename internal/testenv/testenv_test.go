package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestFreePorts(t *testing.T) {
	t.Parallel()
	ports := FreePorts(t, 8)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || p > 65535 {
			t.Fatalf("port %d out of range", p)
		}
		if seen[p] {
			t.Fatalf("port %d returned twice in %v", p, ports)
		}
		seen[p] = true
	}
	if p := FreePort(t); p <= 0 {
		t.Fatalf("FreePort() = %d", p)
	}
	// Picks stay below the ephemeral range, which connections use.
	lo, hi := pickRange()
	for _, p := range ports {
		if p < lo || p >= hi {
			t.Fatalf("port %d outside [%d, %d)", p, lo, hi)
		}
	}
}

func TestRequireTool(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"git", "nginx", "certbot", "pebble", "promtool"} {
		path := RequireTool(t, name)
		if !filepath.IsAbs(path) {
			t.Errorf("RequireTool(%q) = %q, want an absolute path", name, path)
		}
	}
}

func TestInCI(t *testing.T) {
	t.Setenv("CI", "true")
	if !InCI() {
		t.Error("InCI() = false with CI=true")
	}
	t.Setenv("CI", "")
	if InCI() {
		t.Error("InCI() = true with CI unset")
	}
}

// serverBlock returns an nginx server block answering on port for host.
func serverBlock(port int, host, body string, defaultServer bool) string {
	def := ""
	if defaultServer {
		def = " default_server"
	}
	return fmt.Sprintf("server {\n    listen 127.0.0.1:%d%s;\n    server_name %s;\n    return 200 %q;\n}\n", port, def, host, body)
}

func TestNginxServesByHostAfterOneReload(t *testing.T) {
	t.Parallel()
	ngx := StartNginx(t)
	if ngx.HTTPPort == ngx.HTTPSPort {
		t.Fatalf("HTTPPort and HTTPSPort are both %d", ngx.HTTPPort)
	}
	for _, dir := range []string{ngx.ConfDir, ngx.SnippetsDir} {
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) != 0 {
			t.Fatalf("%s: want an empty directory, got %v (err %v)", dir, entries, err)
		}
	}
	pid := ngx.MasterPID(t)
	if got := ngx.ReloadCount(t); got != 0 {
		t.Fatalf("ReloadCount before any reload = %d, want 0", got)
	}

	conf := "server {\n    listen 127.0.0.1:" + fmt.Sprint(ngx.HTTPPort) + " default_server;\n    return 404 \"no such site\\n\";\n}\n" +
		serverBlock(ngx.HTTPPort, "a.test", "hello from a\n", false)
	if err := os.WriteFile(filepath.Join(ngx.ConfDir, "a.test.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ngx.TestCommand[0], ngx.TestCommand[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
	ngx.Reload(t)

	status, body := ngx.GetEventually(t, "a.test", "/", func(status int, _ string) bool { return status == http.StatusOK })
	if body != "hello from a\n" {
		t.Errorf("a.test body = %q", body)
	}
	if status, body = ngx.Get(t, "b.test", "/"); status != http.StatusNotFound || body != "no such site\n" {
		t.Errorf("b.test = %d %q, want 404 from the default server", status, body)
	}
	if got := ngx.WaitReloads(t, 1); got != 1 {
		t.Errorf("reload count = %d, want exactly 1", got)
	}
	// Requests must not have caused further reloads.
	time.Sleep(100 * time.Millisecond)
	if got := ngx.ReloadCount(t); got != 1 {
		t.Errorf("reload count after requests = %d, want 1", got)
	}
	if got := ngx.MasterPID(t); got != pid {
		t.Errorf("master pid changed across reload: %d -> %d", pid, got)
	}

	// A second reload with changed content is observed and counted once more.
	if err := os.WriteFile(filepath.Join(ngx.ConfDir, "a.test.conf"),
		[]byte(serverBlock(ngx.HTTPPort, "a.test", "second version\n", true)), 0o644); err != nil {
		t.Fatal(err)
	}
	ngx.Reload(t)
	ngx.GetEventually(t, "a.test", "/", func(_ int, body string) bool { return body == "second version\n" })
	if got := ngx.WaitReloads(t, 2); got != 2 {
		t.Errorf("reload count = %d, want 2", got)
	}
}

func TestNginxConfigTestFailsOnBrokenFile(t *testing.T) {
	t.Parallel()
	ngx := StartNginx(t)
	if out, err := exec.Command(ngx.TestCommand[0], ngx.TestCommand[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("nginx -t on the empty configuration: %v\n%s", err, out)
	}
	broken := filepath.Join(ngx.ConfDir, "broken.conf")
	if err := os.WriteFile(broken, []byte("server { listen 127.0.0.1:1; this_is_not_a_directive on; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ngx.TestCommand[0], ngx.TestCommand[1:]...).CombinedOutput()
	if err == nil {
		t.Fatalf("nginx -t accepted a broken file:\n%s", out)
	}
	if !strings.Contains(string(out), "this_is_not_a_directive") || !strings.Contains(string(out), broken) {
		t.Errorf("nginx -t output does not name the problem:\n%s", out)
	}
}

func TestNginxStoppedOnCleanup(t *testing.T) {
	t.Parallel()
	var pid int
	t.Run("start", func(t *testing.T) {
		pid = StartNginx(t).MasterPID(t)
		if !processAlive(pid) {
			t.Fatalf("nginx master %d not running", pid)
		}
	})
	if pid == 0 {
		t.Fatal("nginx did not start")
	}
	if processAlive(pid) {
		t.Errorf("nginx master %d still running after cleanup", pid)
	}
}

func TestPebbleCertbotIssue(t *testing.T) {
	t.Parallel()
	ca := StartPebble(t)
	cb := NewCertbot(t, ca)
	domains := []string{"example.test", "www.example.test"}
	cb.Issue(t, "example", domains...)

	data, err := os.ReadFile(filepath.Join(cb.LiveDir("example"), "cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("cert.pem is not a PEM certificate:\n%s", data)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse cert.pem: %v", err)
	}
	got := slices.Sorted(slices.Values(cert.DNSNames))
	if !slices.Equal(got, domains) {
		t.Errorf("certificate DNS names = %v, want %v", got, domains)
	}
	if time.Until(cert.NotAfter) < 24*time.Hour {
		t.Errorf("certificate expires too soon: %v", cert.NotAfter)
	}

	// The chain verifies against the root served by pebble's management API.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(fetch(t, ca, ca.ManagementURL+"/roots/0")) {
		t.Fatal("pebble root is not PEM")
	}
	chain, err := os.ReadFile(filepath.Join(cb.LiveDir("example"), "chain.pem"))
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM(chain)
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: "www.example.test", Roots: roots, Intermediates: inter}); err != nil {
		t.Errorf("issued certificate does not verify against pebble's root: %v", err)
	}
}

func TestPebbleStopRestart(t *testing.T) {
	t.Parallel()
	ca := StartPebble(t)
	if u := ca.DirectoryURL; !regexp.MustCompile(`^https://127\.0\.0\.1:\d+/dir$`).MatchString(u) {
		t.Errorf("DirectoryURL = %q", u)
	}
	fetch(t, ca, ca.DirectoryURL)
	ca.Stop(t)
	ca.Stop(t) // idempotent
	if _, err := pebbleClient(t, ca).Get(ca.DirectoryURL); err == nil {
		t.Fatal("pebble still answers after Stop")
	}
	ca.Restart(t)
	if body := fetch(t, ca, ca.DirectoryURL); !strings.Contains(string(body), "newOrder") {
		t.Errorf("directory after restart lacks newOrder:\n%s", body)
	}
}

// pebbleClient returns an HTTPS client trusting only ca.CABundle.
func pebbleClient(t *testing.T, ca *Pebble) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(ca.CABundle)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CABundle holds no certificate")
	}
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

// fetch GETs url from pebble and returns the body of a 200 response.
func fetch(t *testing.T, ca *Pebble, url string) []byte {
	t.Helper()
	resp, err := pebbleClient(t, ca).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", url, resp.Status, err, body)
	}
	return body
}

func TestGitRepo(t *testing.T) {
	t.Parallel()
	dir := NewGitRepo(t, map[string]string{
		"sites.yaml":      "sites: []\n",
		"snippets/a.conf": "# a\n",
	})
	git := func(args ...string) string {
		t.Helper()
		return strings.TrimSpace(runGit(t, dir, args...))
	}
	if got := git("rev-parse", "--abbrev-ref", "HEAD"); got != "main" {
		t.Errorf("branch = %q, want main", got)
	}
	if got := git("ls-files"); got != "sites.yaml\nsnippets/a.conf" {
		t.Errorf("files after init = %q", got)
	}

	sha := CommitFiles(t, dir, map[string]string{
		"sites.yaml":      "sites:\n  - name: a\n",
		"snippets/a.conf": "",
		"new/b.txt":       "b\n",
	}, "second")
	if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(sha) {
		t.Fatalf("CommitFiles sha = %q", sha)
	}
	if got := git("rev-parse", "HEAD"); got != sha {
		t.Errorf("HEAD = %s, CommitFiles returned %s", got, sha)
	}
	if got := git("ls-files"); got != "new/b.txt\nsites.yaml" {
		t.Errorf("files after commit = %q", got)
	}
	if got := git("show", "HEAD:sites.yaml"); got != "sites:\n  - name: a" {
		t.Errorf("sites.yaml at HEAD = %q", got)
	}
	if got := git("log", "--format=%s|%an"); got != "second|sitesync test\ninitial commit|sitesync test" {
		t.Errorf("log = %q", got)
	}
	if again := CommitFiles(t, dir, nil, "empty"); again == sha {
		t.Error("an empty CommitFiles did not create a new commit")
	}
}
