package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/render"
	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/templates"
)

// discard is the logger of the reconcilers under measurement.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// countingIssuer counts certbot runs; with no inner issuer every run is an
// error, so a fleet without TLS proves that no pass ran certbot.
type countingIssuer struct {
	inner reconciler.Issuer
	runs  atomic.Int64
	// nanos is the time spent in the inner issuer, in nanoseconds.
	nanos atomic.Int64
}

// Issue implements reconciler.Issuer.
func (c *countingIssuer) Issue(ctx context.Context, req certbot.Request) error {
	c.runs.Add(1)
	if c.inner == nil {
		return errors.New("bench: unexpected certbot run for " + req.Name)
	}
	start := time.Now()
	defer func() { c.nanos.Add(int64(time.Since(start))) }()
	return c.inner.Issue(ctx, req)
}

// host is one benchmark host: a private nginx, a generated site repository
// and the configuration that ties them together, as in
// reconciler/e2e_test.go.
type host struct {
	t       *testing.T
	nginx   *testenv.Nginx
	repo    string
	fleet   testenv.Fleet
	cfg     *config.Config
	issuer  *countingIssuer
	variant int
	// sent counts the reload commands run since nginx started, by the
	// test and by passes.
	sent int
}

// newHost starts a private nginx and creates the repository of an n-site
// fleet.
func newHost(t *testing.T, n int) *host {
	t.Helper()
	ngx := testenv.StartNginx(t)
	fl := testenv.Fleet{N: n, Port: ngx.HTTPPort}
	repo := testenv.NewGitRepo(t, fl.Files())
	cfg := testenv.HostConfig(t, ngx, repo)
	return &host{t: t, nginx: ngx, repo: repo, fleet: fl, cfg: cfg, issuer: &countingIssuer{}}
}

// reconciler returns a new Reconciler, whose cache of the parsed and
// rendered desired state is empty.
func (h *host) reconciler() *reconciler.Reconciler {
	return reconciler.New(h.cfg, reconciler.SourceFor(h.cfg), h.issuer, discard)
}

// pass runs one timed pass of r and fails the test on error.
func (h *host) pass(r *reconciler.Reconciler) (*reconciler.Result, time.Duration) {
	h.t.Helper()
	runtime.GC()
	var res *reconciler.Result
	var err error
	d := timed(func() { res, err = r.Reconcile(context.Background()) })
	if err != nil {
		h.t.Fatalf("pass: %v", err)
	}
	if res.Reloaded {
		h.sent++
	}
	return res, d
}

// commit commits sites.yaml with the probe site in the current variant,
// without the deleted sites when withoutDeleted is set.
func (h *host) commit(withoutDeleted bool) {
	h.t.Helper()
	testenv.CommitFiles(h.t, h.repo, map[string]string{"sites.yaml": h.fleet.SitesYAML(h.variant, withoutDeleted)}, "bench")
}

// reset empties conf.d and the snippets directory, forgets sitesync's
// inventory and reload marker, reloads nginx and waits for the reload.
func (h *host) reset() {
	h.t.Helper()
	for _, dir := range []string{h.cfg.Nginx.ConfDir, h.cfg.Nginx.SnippetsDir} {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			h.t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	for _, name := range []string{"managed-files", "reload-pending"} {
		if err := os.Remove(filepath.Join(h.cfg.Reconcile.StateDir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			h.t.Fatal(err)
		}
	}
	h.reload()
}

// reload reloads nginx outside any measurement and waits for it.
func (h *host) reload() {
	h.t.Helper()
	mustRun(h.t, 2*time.Minute, h.nginx.Prefix, nil, h.nginx.ReloadCommand...)
	h.sent++
	h.settle()
}

// settle waits until nginx has loaded every reload sent so far.
func (h *host) settle() {
	h.t.Helper()
	nginxSettle(h.t, h.nginx, h.sent)
}

// testAndReload is the end of every floor: one nginx -t, one reload.
func (h *host) testAndReload() {
	h.t.Helper()
	mustRun(h.t, 2*time.Minute, h.nginx.Prefix, nil, h.nginx.TestCommand...)
	mustRun(h.t, 2*time.Minute, h.nginx.Prefix, nil, h.nginx.ReloadCommand...)
	h.sent++
}

// probeServed checks that nginx serves the probe site in the current
// variant.
func (h *host) probeServed() {
	h.t.Helper()
	waitServed(h.t, h.nginx, h.fleet.Host(testenv.ProbeSite), 301, h.fleet.RedirectTarget(h.variant), 10*time.Millisecond, 30*time.Second)
}

// managedFiles reads every file sitesync wrote, by path.
func (h *host) managedFiles() map[string][]byte {
	h.t.Helper()
	files := map[string][]byte{}
	for _, dir := range []string{h.cfg.Nginx.ConfDir, h.cfg.Nginx.SnippetsDir} {
		entries, err := os.ReadDir(dir)
		if err != nil {
			h.t.Fatal(err)
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				h.t.Fatal(err)
			}
			files[path] = b
		}
	}
	return files
}

// parseAndRender parses and renders the fleet at the repository's working
// tree, as a pass does for a revision it has not seen.
func (h *host) parseAndRender() (int, time.Duration) {
	h.t.Helper()
	runtime.GC()
	var out *render.Output
	d := timed(func() {
		root, err := os.OpenRoot(h.repo)
		if err != nil {
			h.t.Fatal(err)
		}
		defer root.Close()
		d, err := state.Load(root.FS(), "sites.yaml", state.Filter{})
		if err != nil {
			h.t.Fatal(err)
		}
		tmpl, err := templates.Load(nil)
		if err != nil {
			h.t.Fatal(err)
		}
		c := h.cfg
		out, err = render.Render(d, tmpl, render.Options{
			HTTPPort: c.Nginx.HTTPPort, HTTPSPort: c.Nginx.HTTPSPort, ListenAddress: c.Nginx.ListenAddress,
			Webroot: c.Certbot.Webroot, SnippetsDir: c.Nginx.SnippetsDir,
			LiveDir: filepath.Join(c.Certbot.ConfigDir, "live"), DefaultServer: c.Nginx.DefaultServer,
		})
		if err != nil {
			h.t.Fatal(err)
		}
	})
	return len(out.Conf) + len(out.Snippets), d
}

// sizeResult is what TestReport measured at one fleet size.
type sizeResult struct {
	// N is the number of sites; Files the managed files a converge writes.
	N, Files int
	// Converge is a full converge from an empty conf.d by a new
	// Reconciler; its floor writes the same files atomically, then runs
	// nginx -t and one reload.
	Converge, ConvergeFloor durs
	// Noop is a pass over a host in sync by the Reconciler that converged
	// it (its cache holds the revision), NoopSteady the pass after it (the
	// steady state of a running service); NoopCold is the same pass by a
	// new Reconciler, as `sitesync apply` runs it. The floor reads every
	// managed file once.
	Noop, NoopSteady, NoopCold, NoopFloor durs
	// Pull is the pull step alone (fetch and check of an up-to-date
	// checkout), which every pass pays before it looks at the host.
	Pull durs
	// NoopWrites, NoopReloads and NoopCertbot add up what every no-op pass
	// did: they must be zero.
	NoopWrites, NoopReloads, NoopCertbot int
	// NoopTests counts the no-op passes that ran nginx -t (the first pass
	// of a new Reconciler validates the configuration on disk).
	NoopTests int
	// Change is the pass after a commit that changes one site; its floor
	// writes one file atomically, then runs nginx -t and one reload.
	Change, ChangeFloor durs
	// ChangeServed and ChangeFloorServed run from the start of the pass
	// (of the floor) until nginx answers with the change (polled every
	// 10 ms): the reload command only signals the nginx master, which then
	// loads the whole configuration.
	ChangeServed, ChangeFloorServed durs
	// ParseRender is parsing and rendering the whole fleet, which a new
	// revision costs a pass before it observes anything.
	ParseRender durs
	// Delete is the pass after a commit that removes 10% of the sites; its
	// floor removes those files, then runs nginx -t and one reload.
	Delete, DeleteFloor durs
	// Deleted is the number of sites the deletion removes.
	Deleted int
	// NginxTest is nginx -t alone on the converged host, and NginxTestRSS
	// its peak RSS in KiB.
	NginxTest    durs
	NginxTestRSS int64
	// RSS holds the peak RSS of the sitesync binary.
	RSS rssResult
}

// measureSize runs every reconcile measurement at one fleet size.
func measureSize(t *testing.T, o options, bin string, n int) sizeResult {
	h := newHost(t, n)
	res := sizeResult{N: n, Deleted: h.fleet.DeletedCount()}

	// Warm-up: a converge that also gives the floor the rendered bytes.
	h.reset()
	first, _ := h.pass(h.reconciler())
	if !first.Reloaded || first.Written < n {
		t.Fatalf("warm-up converge: written=%d reloaded=%t, want at least %d files and a reload", first.Written, first.Reloaded, n)
	}
	h.settle()
	h.probeServed()
	files, filesVariant := h.managedFiles(), h.variant
	res.Files = len(files)
	confDir := h.cfg.Nginx.ConfDir
	probeFile := filepath.Join(confDir, render.SiteFile(h.fleet.Name(testenv.ProbeSite)))

	for rep := range o.reps {
		t.Logf("sites=%d rep %d/%d", n, rep+1, o.reps)

		// Full converge: the floor, then sitesync, each from empty.
		h.reset()
		runtime.GC()
		res.ConvergeFloor = append(res.ConvergeFloor, timed(func() {
			for path, data := range files {
				if err := atomicWrite(path, data); err != nil {
					t.Fatal(err)
				}
			}
			for _, dir := range []string{confDir, h.cfg.Nginx.SnippetsDir} {
				if err := syncDir(dir); err != nil {
					t.Fatal(err)
				}
			}
			h.testAndReload()
		}))
		h.settle()
		waitServed(t, h.nginx, h.fleet.Host(testenv.ProbeSite), 301, h.fleet.RedirectTarget(filesVariant), 10*time.Millisecond, 30*time.Second)

		h.reset()
		r := h.reconciler()
		pr, d := h.pass(r)
		if pr.Written != len(files) || pr.Deleted != 0 || !pr.Reloaded {
			t.Fatalf("converge: written=%d deleted=%d reloaded=%t, want %d files and a reload", pr.Written, pr.Deleted, pr.Reloaded, len(files))
		}
		res.Converge = append(res.Converge, d)
		h.settle()
		h.probeServed()
		// The next floor writes what this converge wrote.
		files, filesVariant = h.managedFiles(), h.variant

		// No-op passes: warm cache, cold cache, and the floor.
		reloads := h.nginx.ReloadCount(t)
		certbotRuns := h.issuer.runs.Load()
		noop := func(r *reconciler.Reconciler) time.Duration {
			pr, d := h.pass(r)
			if !pr.Plan.Empty() || pr.Written+pr.Deleted+pr.Issued+pr.IssueFailed != 0 || pr.Reloaded {
				t.Fatalf("no-op pass did something: written=%d deleted=%d issued=%d reloaded=%t tested=%t plan=%v",
					pr.Written, pr.Deleted, pr.Issued, pr.Reloaded, pr.Tested, pr.Plan)
			}
			res.NoopWrites += pr.Written + pr.Deleted
			if pr.Tested {
				res.NoopTests++
			}
			return d
		}
		res.Noop = append(res.Noop, noop(r))
		res.NoopSteady = append(res.NoopSteady, noop(r))
		res.NoopCold = append(res.NoopCold, noop(h.reconciler()))
		runtime.GC()
		res.Pull = append(res.Pull, timed(func() {
			if _, err := reconciler.SourceFor(h.cfg).Checkout(context.Background()); err != nil {
				t.Fatal(err)
			}
		}))
		runtime.GC()
		res.NoopFloor = append(res.NoopFloor, timed(func() {
			for _, dir := range []string{confDir, h.cfg.Nginx.SnippetsDir} {
				if _, err := readDirFiles(dir); err != nil {
					t.Fatal(err)
				}
			}
		}))
		time.Sleep(100 * time.Millisecond)
		res.NoopReloads += h.nginx.ReloadCount(t) - reloads
		res.NoopCertbot += int(h.issuer.runs.Load() - certbotRuns)
		if res.NoopReloads != 0 || res.NoopCertbot != 0 {
			t.Fatalf("no-op passes: %d reloads, %d certbot runs, want 0", res.NoopReloads, res.NoopCertbot)
		}

		// nginx -t alone, for reference.
		nt, _ := measured(t, 2*time.Minute, h.nginx.Prefix, h.nginx.TestCommand...)
		res.NginxTest = append(res.NginxTest, nt.wall)
		res.NginxTestRSS = max(res.NginxTestRSS, nt.maxRSS)

		// One-site change, then its floor (rewriting that one file).
		h.variant++
		h.commit(false)
		start := time.Now()
		pr, d = h.pass(r)
		if pr.Written != 1 || pr.Deleted != 0 || !pr.Reloaded {
			t.Fatalf("one-site change: written=%d deleted=%d reloaded=%t, want 1 file and a reload", pr.Written, pr.Deleted, pr.Reloaded)
		}
		res.Change = append(res.Change, d)
		h.probeServed()
		res.ChangeServed = append(res.ChangeServed, time.Since(start))
		h.settle()
		_, d = h.parseAndRender()
		res.ParseRender = append(res.ParseRender, d)

		data, err := os.ReadFile(probeFile)
		if err != nil {
			t.Fatal(err)
		}
		// The floor writes a visibly different redirect, so that the time
		// until nginx serves it can be measured too; the file is put back
		// afterwards.
		target := h.fleet.RedirectTarget(h.variant)
		changed := bytes.Replace(data, []byte(target), []byte(target+"-floor"), 1)
		if bytes.Equal(changed, data) {
			t.Fatalf("%s does not redirect to %s", probeFile, target)
		}
		runtime.GC()
		start = time.Now()
		res.ChangeFloor = append(res.ChangeFloor, timed(func() {
			if err := atomicWrite(probeFile, changed); err != nil {
				t.Fatal(err)
			}
			if err := syncDir(confDir); err != nil {
				t.Fatal(err)
			}
			h.testAndReload()
		}))
		waitServed(t, h.nginx, h.fleet.Host(testenv.ProbeSite), 301, target+"-floor", 10*time.Millisecond, 30*time.Second)
		res.ChangeFloorServed = append(res.ChangeFloorServed, time.Since(start))
		h.settle()
		if err := atomicWrite(probeFile, data); err != nil {
			t.Fatal(err)
		}
		h.reload()

		// Deleting 10% of the sites, then its floor.
		h.commit(true)
		pr, d = h.pass(r)
		if pr.Deleted != res.Deleted || pr.Written != 0 || !pr.Reloaded {
			t.Fatalf("deletion: deleted=%d written=%d reloaded=%t, want %d deletions and a reload", pr.Deleted, pr.Written, pr.Reloaded, res.Deleted)
		}
		res.Delete = append(res.Delete, d)
		h.settle()
		waitServed(t, h.nginx, h.fleet.Host(0), 404, "", 10*time.Millisecond, 30*time.Second)

		h.commit(false)
		if pr, _ = h.pass(r); pr.Written != res.Deleted || !pr.Reloaded {
			t.Fatalf("restoring the deleted sites: written=%d, want %d", pr.Written, res.Deleted)
		}
		h.settle()
		var gone []string
		for i := range n {
			if h.fleet.Deleted(i) {
				gone = append(gone, filepath.Join(confDir, render.SiteFile(h.fleet.Name(i))))
			}
		}
		runtime.GC()
		res.DeleteFloor = append(res.DeleteFloor, timed(func() {
			for _, path := range gone {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			}
			if err := syncDir(confDir); err != nil {
				t.Fatal(err)
			}
			h.testAndReload()
		}))
		h.settle()
	}
	// The floor left the deleted sites out; put the host back in sync.
	if pr, _ := h.pass(h.reconciler()); pr.Written != res.Deleted {
		t.Fatalf("final pass wrote %d files, want %d", pr.Written, res.Deleted)
	}
	h.settle()

	res.RSS = measureRSS(t, bin, h, res.Files)
	return res
}
