package reconciler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/render"
	"github.com/sitesync/sitesync/source"
	"github.com/sitesync/sitesync/state"
	"github.com/sitesync/sitesync/templates"
)

// Issuer obtains certificates.
//
// Issue obtains or renews one certificate and returns once certbot has
// finished; ctx bounds it. The reconciler never calls Issue concurrently
// and never twice for one site in a pass. An error means no new certificate
// was installed; an existing one is left in place.
type Issuer interface {
	Issue(ctx context.Context, req certbot.Request) error
}

// CertBackoff rations certificate issuance so a failing name never
// hammers the CA (package certbot's Backoff implements it).
//
// Check returns nil when an attempt for name and domains is allowed now,
// else an error saying until when it is not. Failed and Succeeded record
// the outcome of an attempt; their errors only mean the record may not
// survive a restart. Methods are called from one pass at a time.
type CertBackoff interface {
	Check(name string, domains []string) error
	Failed(name string, domains []string, err error) error
	Succeeded(name string) error
}

// Reconciler converges the host toward the repository's desired state. Its
// methods must not be called concurrently (one pass at a time; the caller
// holds the host lock).
type Reconciler struct {
	cfg    *config.Config
	src    Source
	issuer Issuer
	log    *slog.Logger
	now    func() time.Time
	// backoff, if set, rations issuance attempts (see SetCertBackoff).
	backoff CertBackoff
	// validated is set once the test command accepted the configuration.
	validated bool
	// crash, if set, is called at named points of the apply steps; tests
	// use it to kill the process there (see SetCrashHook).
	crash func(point string)

	// last caches the parsed and rendered desired state of the last
	// revision: a pass over an unchanged revision then costs observing the
	// host, not re-parsing and re-rendering the fleet. Only the run of one
	// pass at a time touches it.
	last *desiredCache
	// stat saves re-reading managed files whose metadata did not change.
	stat statCache
	// raw saves re-reading and re-parsing the raw site files of the
	// checkout that a new revision did not change.
	raw state.RawCache
}

// desiredCache is everything a pass derives from one revision alone.
type desiredCache struct {
	revision string
	desired  *state.Desired
	tmpl     *template.Template
	out      *render.Output
	// overridden says the repository overrides the embedded templates.
	overridden bool
}

// New returns a Reconciler. issuer may be nil, which disables certificate
// management: TLS sites are then served over HTTP until a certificate
// exists.
func New(cfg *config.Config, src Source, issuer Issuer, log *slog.Logger) *Reconciler {
	return &Reconciler{cfg: cfg, src: src, issuer: issuer, log: log, now: time.Now}
}

// SetCertBackoff makes the reconciler consult b before every certificate
// issuance and record every outcome in it.
func (r *Reconciler) SetCertBackoff(b CertBackoff) { r.backoff = b }

// SetCrashHook installs f to be called at each named point of the apply
// steps ("journal-written", "after-write-N", "before-test", "after-test",
// "before-reload", "after-reload"). It exists for crash-consistency tests,
// which kill the process there; production code never sets it.
func (r *Reconciler) SetCrashHook(f func(point string)) { r.crash = f }

func (r *Reconciler) crashPoint(name string) {
	if r.crash != nil {
		r.crash(name)
	}
}

// Result says what one pass saw and did.
type Result struct {
	// ID identifies the pass in logs and records.
	ID string
	// Revision is the revision of the site repository the pass applied.
	Revision          string
	Started, Finished time.Time
	// Sites and Skipped are the desired sites and the declared sites this
	// host does not deploy.
	Sites   []state.Site
	Skipped []state.SkippedSite
	// Plan is what the pass planned to do.
	Plan Plan
	// Drift is what differed at the start of the pass.
	Drift []Drift
	// Unmanaged lists files in the managed directories sitesync did not
	// create.
	Unmanaged []string
	// Certificates maps TLS sites to their certificate after the pass.
	Certificates map[string]certbot.Cert
	// Written, Deleted, Issued and IssueFailed count what was done;
	// Reloaded says whether nginx was reloaded.
	Written, Deleted, Issued, IssueFailed int
	// IssueDeferred counts issuances not attempted because the name is
	// backing off after failures (or the CA's rate limit).
	IssueDeferred int
	Reloaded      bool
	// Tested says whether the test command ran (see ErrConfigRejected for
	// its failure).
	Tested bool
	// SiteErrors holds the sites that did not converge.
	SiteErrors SiteErrors
	// Notes are things an operator should know that are not errors.
	Notes []string
}

// Drift is one observed difference.
type Drift struct {
	Site string // "" for shared files and snippets
	Kind DriftKind
	Path string
}

// Changed reports whether the pass changed anything on the host.
func (r *Result) Changed() bool {
	return r.Written+r.Deleted+r.Issued > 0 || r.Reloaded
}

// pass is the working state of one pass, threaded through its steps.
type pass struct {
	dryRun   bool
	res      *Result
	checkout source.Checkout
	desired  *state.Desired
	tmpl     *template.Template
	opts     render.Options
	out      *render.Output
	obs      *Observed
	undo     []undoEntry
	// touched says the write step changed files that the test step must
	// check and the reload step must load.
	touched bool
	// wroteJournal says the write step journaled its files.
	wroteJournal bool
	// quarantineChanged says the quarantine list must be saved.
	quarantineChanged bool
	// fresh says parse loaded a revision the cache does not hold;
	// overridden that its repository overrides the templates.
	fresh, overridden bool
}

func (p *pass) journaled() bool { return p.wroteJournal }

type step struct {
	name string
	run  func(ctx context.Context, p *pass) error
}

// Reconcile runs one full pass: it converges the host and returns what it
// did. The Result is non-nil even on error and says how far the pass got.
func (r *Reconciler) Reconcile(ctx context.Context) (*Result, error) {
	return r.run(ctx, false)
}

// Plan runs the pass up to the plan step, changing nothing on the host but
// the repository checkout, and returns the plan in the Result.
func (r *Reconciler) Plan(ctx context.Context) (*Result, error) {
	return r.run(ctx, true)
}

func (r *Reconciler) run(ctx context.Context, dryRun bool) (*Result, error) {
	p := &pass{dryRun: dryRun, res: &Result{ID: newID(), Started: r.now()}}
	steps := []step{
		{"pull", r.pull},
		{"parse", r.parse},
		{"render", r.render},
		{"observe", r.observeStep},
		{"plan", r.plan},
	}
	if !dryRun {
		steps = append(steps,
			step{"issue", r.issue},
			step{"write", r.write},
			step{"test", r.test},
			step{"reload", r.reload},
		)
	}
	var err error
	for _, s := range steps {
		if err = s.run(ctx, p); err != nil {
			err = fmt.Errorf("%s: %w", s.name, err)
			break
		}
	}
	p.res.Finished = r.now()
	if err == nil && len(p.res.SiteErrors) > 0 {
		err = p.res.SiteErrors
	}
	return p.res, err
}

func newID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (r *Reconciler) pull(ctx context.Context, p *pass) error {
	c, err := r.src.Checkout(ctx)
	if source.IsPermanent(err) {
		return Terminal(err)
	}
	if err != nil {
		return err
	}
	p.checkout = c
	p.res.Revision = c.Revision
	return nil
}

func (r *Reconciler) parse(ctx context.Context, p *pass) error {
	if c := r.last; c != nil && c.revision == p.checkout.Revision && c.revision != "" {
		p.desired, p.tmpl, p.fresh = c.desired, c.tmpl, false
		p.res.Sites, p.res.Skipped = c.desired.Sites, c.desired.Skipped
		return nil
	}
	p.fresh = true
	root, err := os.OpenRoot(p.checkout.Dir)
	if err != nil {
		return err
	}
	defer root.Close()
	f := state.Filter{Include: r.cfg.Reconcile.Include, Exclude: r.cfg.Reconcile.Exclude}
	d, err := r.raw.Load(root.FS(), r.cfg.Source.File, f)
	if err != nil {
		return Terminal(err)
	}
	p.desired = d
	p.res.Sites, p.res.Skipped = d.Sites, d.Skipped
	var override fs.FS
	if st, err := root.Stat("templates"); err == nil && st.IsDir() {
		p.overridden = true
		override, err = fs.Sub(root.FS(), "templates")
		if err != nil {
			return err
		}
	}
	if p.tmpl, err = templates.Load(override); err != nil {
		return Terminal(err)
	}
	return nil
}

func (r *Reconciler) render(ctx context.Context, p *pass) error {
	cfg := r.cfg
	p.opts = render.Options{
		HTTPPort:       cfg.Nginx.HTTPPort,
		HTTPSPort:      cfg.Nginx.HTTPSPort,
		ListenAddress:  cfg.Nginx.ListenAddress,
		Webroot:        cfg.Certbot.Webroot,
		SnippetsDir:    cfg.Nginx.SnippetsDir,
		LiveDir:        filepath.Join(cfg.Certbot.ConfigDir, "live"),
		DefaultServer:  cfg.Nginx.DefaultServer,
		HTTP2Directive: cfg.Nginx.HTTP2Directive,
	}
	c := r.last
	if c != nil && !p.fresh {
		// Later steps replace entries (a site rendered without TLS), so
		// each pass gets its own maps over the shared bytes.
		p.out = &render.Output{Conf: maps.Clone(c.out.Conf), Snippets: maps.Clone(c.out.Snippets)}
		return nil
	}
	var out *render.Output
	var err error
	if c != nil && !c.overridden && !p.overridden {
		// A new revision with the embedded templates: only the sites that
		// changed are rendered again.
		out, err = render.Incremental(p.desired, p.tmpl, p.opts, c.desired, c.out)
	} else {
		out, err = render.Render(p.desired, p.tmpl, p.opts)
	}
	if err != nil {
		return Terminal(err)
	}
	r.last = &desiredCache{revision: p.checkout.Revision, desired: p.desired, tmpl: p.tmpl, out: out, overridden: p.overridden}
	p.out = &render.Output{Conf: maps.Clone(out.Conf), Snippets: maps.Clone(out.Snippets)}
	return nil
}

func (r *Reconciler) observeStep(ctx context.Context, p *pass) error {
	if id, n, err := r.recover(); err != nil {
		return err
	} else if id != "" {
		r.log.Warn("recovered from an interrupted pass: its files were put back as they were", "pass", p.res.ID, "interrupted", id, "restored", n)
		p.res.Notes = append(p.res.Notes, fmt.Sprintf("recovered from interrupted pass %s: restored %d file(s)", id, n))
	}
	obs, err := r.observe(p.desired)
	if err != nil {
		return err
	}
	p.obs = obs
	p.res.Unmanaged = obs.Unmanaged
	return nil
}

func (r *Reconciler) reloadMarker() string {
	return filepath.Join(r.cfg.Reconcile.StateDir, "reload-pending")
}

// errNoSites guards against pruning every site because of a mistake.
var errNoSites = errors.New("the desired state has no sites for this host; refusing to remove every managed site (set [reconcile] allow_empty = true to allow it)")
