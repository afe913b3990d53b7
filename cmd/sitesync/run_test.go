package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/status"
	"github.com/sitesync/sitesync/store"
	"github.com/sitesync/sitesync/webhook"
)

const testSecret = "test-webhook-secret"

// service under test: a running sitesync with its own nginx, repository,
// state directory and ports.
type svc struct {
	t       *testing.T
	nginx   *testenv.Nginx
	repo    string
	cfg     *config.Config
	cfgPath string
	cancel  context.CancelFunc
	done    chan error
	log     *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func siteYAML(names ...string) string {
	var b strings.Builder
	b.WriteString("version: 1\nsites:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  - name: %s\n    serverNames: [%s.test]\n    locations: [{path: /, return: \"204\"}]\n", n, n)
	}
	return b.String()
}

// newSvc writes a configuration file for a private host. brokerURL and
// dbURL may be empty (in-process broker, SQLite).
func newSvc(t *testing.T, brokerURL, dbURL string) *svc {
	t.Helper()
	n := testenv.StartNginx(t)
	repo := testenv.NewGitRepo(t, map[string]string{"sites.yaml": siteYAML("one")})
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ports := testenv.FreePorts(t, 2)
	text := testenv.HostTOML(repo, n.ConfDir, n.SnippetsDir, n.TestCommand, n.ReloadCommand, n.HTTPPort, n.HTTPSPort, dir) +
		fmt.Sprintf(`interval = "1h"
[webhook]
listen = "127.0.0.1:%d"
secret_file = %q
repository = "org/sites"
[broker]
url = %q
queue = "sitesync.test"
[database]
url = %q
[metrics]
listen = "127.0.0.1:%d"
`, ports[0], secret, brokerURL, dbURL, ports[1])
	path := filepath.Join(dir, "sitesync.toml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &svc{t: t, nginx: n, repo: repo, cfg: cfg, cfgPath: path, log: &syncBuffer{}}
}

// start runs the service in-process until the test ends or stop is called.
func (s *svc) start(ro role) {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	log := s.logger()
	go func() { s.done <- runService(ctx, s.cfg, ro, log, prometheus.NewRegistry()) }()
	s.t.Cleanup(func() {
		s.stop()
		if s.t.Failed() {
			s.t.Logf("service log:\n%s", s.log.String())
		}
	})
	s.waitReady()
}

func (s *svc) logger() *slog.Logger { return slog.New(slog.NewTextHandler(s.log, nil)) }

func (s *svc) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("service stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Error("service did not stop within 30s")
	}
	s.cancel = nil
}

func (s *svc) url(listen, path string) string { return "http://" + listen + path }

func (s *svc) waitReady() {
	s.t.Helper()
	eventually(s.t, 30*time.Second, "the service to become ready", func() bool {
		resp, err := http.Get(s.url(s.cfg.Metrics.Listen, "/readyz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// push delivers a signed GitHub push for the repository's head, as GitHub
// sends it, and returns the HTTP status.
func (s *svc) push(delivery, commit string) int {
	s.t.Helper()
	payload, _ := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "after": commit, "repository": map[string]any{"full_name": "org/sites"},
		"head_commit": map[string]any{"id": commit},
	})
	req, _ := http.NewRequest(http.MethodPost, s.url(s.cfg.Webhook.Listen, "/github-webhook"), bytes.NewReader(payload))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte(testSecret), payload))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("push: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (s *svc) snapshot() status.Snapshot {
	s.t.Helper()
	resp, err := http.Get(s.url(s.cfg.Metrics.Listen, "/status.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap status.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		s.t.Fatal(err)
	}
	return snap
}

// TestRunEndToEnd runs `sitesync run` on the embedded defaults' kind of
// setup (no broker, no database server): a push delivered as GitHub
// delivers it converges nginx, a hand edit is repaired by itself, the
// metrics pass promtool, and `sitesync status` agrees with the page.
func TestRunEndToEnd(t *testing.T) {
	s := newSvc(t, "", "")
	s.start(role{webhook: true, reconcile: true})
	if code, _ := s.nginx.GetEventually(t, "one.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatalf("startup pass did not converge: %d", code)
	}

	sha := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "two")}, "add two")
	if code := s.push("d-1", sha); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	if code := s.push("d-1", sha); code != http.StatusOK {
		t.Fatalf("redelivery of d-1: %d, want 200 (duplicate)", code)
	}
	if code, _ := s.nginx.GetEventually(t, "two.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatalf("two.test: %d", code)
	}
	eventually(t, 10*time.Second, "the status page to show the pushed revision", func() bool {
		return s.snapshot().AppliedRevision == sha
	})

	// A hand edit is reverted by the running service within seconds.
	conf := filepath.Join(s.cfg.Nginx.ConfDir, "two.conf")
	want, _ := os.ReadFile(conf)
	if err := os.WriteFile(conf, []byte("# hand edit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the hand edit to be reverted", func() bool {
		got, _ := os.ReadFile(conf)
		return bytes.Equal(got, want)
	})

	// The exposition passes promtool and shows the drift that was repaired.
	var exposition []byte
	eventually(t, 10*time.Second, "the repair pass to be in the metrics", func() bool {
		resp, err := http.Get(s.url(s.cfg.Metrics.Listen, "/metrics"))
		if err != nil {
			return false
		}
		exposition, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		return bytes.Contains(exposition, []byte(`sitesync_drift_total{kind="config_changed"} 1`))
	})
	cmd := exec.Command(testenv.RequireTool(t, "promtool"), "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	for _, want := range []string{`sitesync_drift_total{kind="config_changed"} 1`, `sitesync_site_ready{site="two"} 1`, `sitesync_webhook_deliveries_total{event="push",result="duplicate"} 1`, `sitesync_applied_revision_info{revision="` + sha + `"} 1`} {
		if !bytes.Contains(exposition, []byte(want)) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// sitesync status (talking to the running service) says what the page says.
	code, out, errOut := sitesync(t, nil, "status", "--config", s.cfgPath)
	if code != exitOK {
		t.Fatalf("status: %d %s", code, errOut)
	}
	snap := s.snapshot()
	for _, site := range snap.Sites {
		state := "ready"
		if !site.Ready {
			state = "NOT READY"
		}
		if !strings.Contains(out, site.Name+"  ") || !strings.Contains(out, state) {
			t.Errorf("status output lacks %s %s:\n%s", site.Name, state, out)
		}
	}
	code, out, _ = sitesync(t, nil, "status", "--json", "--config", s.cfgPath)
	var fromCLI status.Snapshot
	if code != exitOK || json.Unmarshal([]byte(out), &fromCLI) != nil || len(fromCLI.Sites) != len(snap.Sites) || fromCLI.AppliedRevision != snap.AppliedRevision {
		t.Fatalf("status --json disagrees with the page: %s", out)
	}

	// Passes are recorded in the database, with the delivery that triggered them.
	s.stop()
	st, err := store.Open(context.Background(), store.Options{StateDir: s.cfg.Reconcile.StateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	passes, err := st.RecentPasses(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range passes {
		if p.Revision == sha && strings.Contains(strings.Join(p.Deliveries, ","), "d-1") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no recorded pass applied %s for delivery d-1: %+v", sha, passes)
	}
}

// TestRunReportsCommitStatus checks the commit statuses a pushed commit
// gets, against a local server standing in for the GitHub API.
func TestRunReportsCommitStatus(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		calls = append(calls, r.URL.Path+" "+body["state"]+" "+body["context"]+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer api.Close()
	s := newSvc(t, "", "")
	tokenFile := filepath.Join(t.TempDir(), "gh-token")
	if err := os.WriteFile(tokenFile, []byte("gh-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cfg.GitHub.TokenFile, s.cfg.GitHub.APIURL, s.cfg.GitHub.Context = tokenFile, api.URL, "sitesync/test"
	s.start(role{webhook: true, reconcile: true})

	sha := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "two")}, "add two")
	if code := s.push("gh-1", sha); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	path := "/repos/org/sites/statuses/" + sha
	eventually(t, 15*time.Second, "pending then success statuses", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(calls, path+" pending sitesync/test Bearer gh-test-token") &&
			slices.Contains(calls, path+" success sitesync/test Bearer gh-test-token")
	})

	// A broken commit gets a failure status.
	bad := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": "version: 1\nsites:\n  - name: Bad\n"}, "break it")
	s.push("gh-2", bad)
	eventually(t, 15*time.Second, "a failure status on the broken commit", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(calls, "/repos/org/sites/statuses/"+bad+" failure sitesync/test Bearer gh-test-token")
	})
}
