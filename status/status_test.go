package status

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/state"
)

// sample returns a pass result with a ready site, a site whose certificate
// failed, a disabled site and drift.
func sample() (*reconciler.Result, error) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	res := &reconciler.Result{
		ID: "abc123", Revision: "0123456789abcdef0123456789abcdef01234567", Started: now, Finished: now.Add(1500 * time.Millisecond),
		Sites: []state.Site{
			{Name: "app", ServerNames: []string{"app.example.org"}, TLS: state.TLSLetsEncrypt},
			{Name: "shop", ServerNames: []string{"shop.example.org", "www.shop.example.org"}, TLS: state.TLSLetsEncrypt},
			{Name: "docs", ServerNames: []string{"docs.example.org"}, TLS: state.TLSNone},
		},
		Skipped:      []state.SkippedSite{{Name: "staging", Reason: "disabled"}},
		Certificates: map[string]certbot.Cert{"app": {Names: []string{"app.example.org"}, NotAfter: now.Add(60 * 24 * time.Hour)}},
		Drift: []reconciler.Drift{
			{Site: "docs", Kind: reconciler.DriftConfigChanged, Path: "conf.d/docs.conf"},
			{Site: "shop", Kind: reconciler.DriftCertMissing, Path: "shop"},
		},
		Plan:      reconciler.Plan{{Kind: reconciler.ActionWrite, Site: "docs", Dir: reconciler.DirConf, Name: "docs.conf"}},
		Written:   1,
		Reloaded:  true,
		Unmanaged: []string{"conf.d/default.conf"},
	}
	res.SiteErrors = reconciler.SiteErrors{"shop": errors.New("certificate shop: CA unreachable")}
	return res, res.SiteErrors
}

func tracked() *Tracker {
	t := NewTracker("web1", func() bool { return false })
	res, err := sample()
	t.ObservePass(loop.Pass{Result: res, Err: err, Triggers: []loop.Trigger{{Source: loop.SourceWebhook}, {Source: loop.SourceTimer}}})
	return t
}

func TestSnapshot(t *testing.T) {
	s := tracked().Snapshot()
	byName := map[string]Site{}
	for _, site := range s.Sites {
		byName[site.Name] = site
	}
	if !byName["app"].Ready || byName["app"].CertExpiry == nil {
		t.Errorf("app = %+v", byName["app"])
	}
	if byName["shop"].Ready || !strings.Contains(byName["shop"].Reason, "CA unreachable") || strings.Join(byName["shop"].Drift, ",") != "cert_missing" {
		t.Errorf("shop = %+v", byName["shop"])
	}
	if !byName["docs"].Ready || byName["docs"].LastChange != s.DesiredRevision {
		t.Errorf("docs = %+v", byName["docs"])
	}
	if byName["staging"].Enabled || !strings.Contains(byName["staging"].Reason, "disabled") {
		t.Errorf("staging = %+v", byName["staging"])
	}
	if len(s.Passes) != 1 || s.Passes[0].Outcome != "partial" || s.Passes[0].Changes != "1 written, reloaded" ||
		strings.Join(s.Passes[0].Triggers, ",") != "timer,webhook" {
		t.Errorf("passes = %+v", s.Passes)
	}
	if s.AppliedRevision != "" || s.DesiredRevision == "" {
		t.Errorf("a partial pass must not count as applied: %q %q", s.DesiredRevision, s.AppliedRevision)
	}
}

func TestTable(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, tracked().Snapshot(), false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes without a terminal")
	}
	for _, want := range []string{"2/3 sites ready", "shop is not ready: certificate shop: CA unreachable", "staging  off", "last pass abc123"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Columns are aligned: every row's STATE column starts at the same offset.
	lines := strings.Split(out, "\n")
	col := strings.Index(lines[2], "STATE")
	for _, l := range lines[3:6] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("misaligned row %q (STATE at %d)", l, col)
		}
	}
}

func TestReadiness(t *testing.T) {
	tr := NewTracker("h", nil)
	held := true
	h := Health{MaxFailing: time.Minute, LockHeld: func() bool { return held }, Ping: func(context.Context) error { return nil }}
	if r := tr.Ready(context.Background(), h); r.Ready {
		t.Fatal("ready before any pass")
	}
	ok := &reconciler.Result{ID: "1", Started: time.Now(), Finished: time.Now()}
	tr.ObservePass(loop.Pass{Result: ok})
	if r := tr.Ready(context.Background(), h); !r.Ready {
		t.Fatalf("not ready after a good pass: %+v", r)
	}
	bad := &reconciler.Result{ID: "2", Started: time.Now(), Finished: time.Now()}
	tr.ObservePass(loop.Pass{Result: bad, Err: errors.New("git remote unreachable")})
	if r := tr.Ready(context.Background(), h); !r.Ready {
		t.Fatalf("one recent failure must not flip readiness: %+v", r)
	}
	tr.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if r := tr.Ready(context.Background(), h); r.Ready || !strings.Contains(r.Checks[2].Why, "git remote unreachable") {
		t.Fatalf("failing beyond MaxFailing: %+v", r)
	}
	tr.now = time.Now
	held = false
	h.Ping = func(context.Context) error { return errors.New("connection refused") }
	r := tr.Ready(context.Background(), h)
	if r.Ready || r.Checks[0].OK || r.Checks[1].OK || r.Checks[1].Why != "connection refused" {
		t.Fatalf("lock and database checks: %+v", r)
	}
}

func server(t *testing.T) *httptest.Server {
	page, err := NewPage()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(Handler(tracked(), page, reg, Health{MaxFailing: time.Hour}))
	t.Cleanup(srv.Close)
	return srv
}

func TestEndpoints(t *testing.T) {
	srv := server(t)
	for path, want := range map[string]int{"/": 200, "/status.json": 200, "/healthz": 200, "/readyz": 200, "/metrics": 200, "/nope": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
	}
}

// TestPageInChromium renders the status page in real headless Chromium,
// checks the DOM it built and keeps a screenshot.
func TestPageInChromium(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium")
	srv := server(t)
	profile := t.TempDir()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + profile}

	dom, err := exec.Command(chromium, append(base, "--dump-dom", srv.URL+"/")...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	for _, want := range []string{`data-site="app" data-ready="true"`, `data-site="shop" data-ready="false"`, "CA unreachable", `id="counts">2 of 3 sites ready`, "cert_missing", `data-pass="abc123"`} {
		if !strings.Contains(string(dom), want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}

	dir := os.Getenv("SITESYNC_TEST_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "status-page.png")
	cmd := exec.Command(chromium, append(base, "--window-size=1280,800", "--hide-scrollbars", "--screenshot="+shot, srv.URL+"/")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	colors := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if b.Dx() != 1280 || len(colors) < 20 {
		t.Fatalf("screenshot %dx%d with %d colours: blank page?", b.Dx(), b.Dy(), len(colors))
	}
	t.Logf("screenshot: %s", shot)
}
