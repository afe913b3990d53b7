package reconciler

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/command"
	"github.com/sitesync/sitesync/render"
	"github.com/sitesync/sitesync/state"
)

// ErrConfigRejected is wrapped by the error of a pass whose files the test
// command rejected; the files were put back as they were.
var ErrConfigRejected = errors.New("nginx rejected the new configuration; every file was put back as it was")

// ErrConfigInvalid is wrapped by the error of a pass that found the
// configuration on disk rejected by the test command although the pass
// changed nothing (someone else broke it); nothing is reloaded.
var ErrConfigInvalid = errors.New("nginx rejects the configuration on disk, which this pass did not change")

// ErrReload is wrapped by the error of a pass whose reload command failed.
// The files are in place and valid; the next pass reloads again.
var ErrReload = errors.New("nginx reload failed")

// issue obtains the planned certificates one at a time, and adjusts the
// file actions of the sites whose issuance failed.
func (r *Reconciler) issue(ctx context.Context, p *pass) error {
	var reqs []Action
	for _, a := range p.res.Plan {
		if a.Kind == ActionIssue {
			reqs = append(reqs, a)
		}
	}
	for i, a := range reqs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.backoff != nil {
			if err := r.backoff.Check(a.Name, a.Domains); err != nil {
				r.log.Info(fmt.Sprintf("not issuing %d/%d: %s", i+1, len(reqs), a.Name), "pass", p.res.ID, "why", err)
				p.res.IssueDeferred++
				r.failSite(p, a.Site, err)
				if err := r.fallBack(p, a); err != nil {
					return err
				}
				continue
			}
		}
		r.log.Info(fmt.Sprintf("issuing %d/%d: %s", i+1, len(reqs), a.Name), "pass", p.res.ID, "domains", a.Domains, "reason", a.Reason)
		err := r.issuer.Issue(ctx, certbot.Request{Name: a.Name, Domains: a.Domains, Force: a.Force})
		if err == nil {
			var c certbot.Cert
			c, err = certbot.Read(r.cfg.Certbot.ConfigDir, a.Name)
			if err == nil && !sameNames(c.Names, a.Domains) {
				err = fmt.Errorf("certbot succeeded but %s covers %v, not %v", a.Name, c.Names, a.Domains)
			}
			if err == nil {
				p.res.Issued++
				p.res.Certificates[a.Name] = c
				r.recordIssue(a, nil)
				continue
			}
		}
		if ctx.Err() != nil {
			return ctx.Err() // a shutdown is not a failed issuance
		}
		r.recordIssue(a, err)
		p.res.IssueFailed++
		r.failSite(p, a.Site, err)
		if err := r.fallBack(p, a); err != nil {
			return err
		}
	}
	return nil
}

// recordIssue records an issuance outcome in the backoff, if any.
func (r *Reconciler) recordIssue(a Action, err error) {
	if r.backoff == nil {
		return
	}
	var rerr error
	if err == nil {
		rerr = r.backoff.Succeeded(a.Name)
	} else {
		rerr = r.backoff.Failed(a.Name, a.Domains, err)
	}
	if rerr != nil {
		r.log.Warn("could not persist the certificate backoff; it still applies in this process", "site", a.Site, "err", rerr)
	}
}

// fallBack decides what a site whose certificate could not be obtained gets
// written. A site with no certificate at all is served over HTTP only; a
// site whose certificate names the wrong hosts keeps its current file; a
// site whose certificate is merely expiring keeps being written with it.
func (r *Reconciler) fallBack(p *pass, a Action) error {
	switch DriftKind(a.Reason) {
	case DriftCertMissing:
		site := p.site(a.Site)
		if site == nil {
			return nil
		}
		if err := r.renderWithoutTLS(p, *site); err != nil {
			return err
		}
		name := render.SiteFile(a.Site)
		data := p.out.Conf[name].Data
		p.res.Plan = slices.DeleteFunc(p.res.Plan, func(x Action) bool {
			return x.Kind == ActionWrite && x.Dir == DirConf && x.Name == name
		})
		if old, ok := p.obs.Conf[name]; !ok || !bytes.Equal(old, data) {
			p.res.Plan = append(p.res.Plan, Action{Kind: ActionWrite, Site: a.Site, Dir: DirConf, Name: name, Old: old, New: data, Reason: string(DriftConfigChanged)})
			sortPlan(p.res.Plan)
		}
	case DriftCertNamesMismatch:
		name := render.SiteFile(a.Site)
		if _, ok := p.obs.Conf[name]; ok {
			p.res.Plan = slices.DeleteFunc(p.res.Plan, func(x Action) bool {
				return x.Kind == ActionWrite && x.Dir == DirConf && x.Name == name
			})
		}
	}
	return nil
}

func (p *pass) site(name string) *state.Site {
	for i := range p.desired.Sites {
		if p.desired.Sites[i].Name == name {
			return &p.desired.Sites[i]
		}
	}
	return nil
}

// undoEntry restores one file: its bytes before the pass, or its absence.
type undoEntry struct {
	path    string
	site    string
	old     []byte
	existed bool
	deleted bool // the pass deleted the file (else wrote it)
}

// write applies the planned file actions: it journals what every file held,
// then replaces the files atomically (temporary file in the same
// directory, fsync, rename). Cancellation is not honoured once the first
// file is written: the write, test and reload steps run to completion
// (bounded by the command timeouts) so that a pass never leaves a
// half-applied directory behind; a crash is recovered from the journal.
func (r *Reconciler) write(ctx context.Context, p *pass) error {
	var files []Action
	for _, a := range p.res.Plan {
		if a.Kind == ActionWrite || a.Kind == ActionDelete {
			files = append(files, a)
		}
	}
	if len(files) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, dir := range []string{r.cfg.Nginx.ConfDir, r.cfg.Nginx.SnippetsDir, r.cfg.Reconcile.StateDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	for _, a := range files {
		p.undo = append(p.undo, undoEntry{path: r.path(a), site: a.Site, old: a.Old, existed: a.Old != nil, deleted: a.Kind == ActionDelete})
	}
	if err := r.writeJournal(p); err != nil {
		p.undo = nil
		return err
	}
	p.wroteJournal = true
	r.crashPoint("journal-written")
	p.touched = true
	for i, a := range files {
		path := r.path(a)
		var err error
		if a.Kind == ActionWrite {
			err = renameio.WriteFile(path, a.New, 0o644, renameio.WithTempDir(filepath.Dir(path)))
			p.res.Written++
		} else {
			if err = os.Remove(path); errors.Is(err, fs.ErrNotExist) {
				err = nil
			}
			p.res.Deleted++
		}
		if err != nil {
			err = fmt.Errorf("%s: %w", a.Path(), err)
			if rerr := r.rollback(p); rerr != nil {
				return errors.Join(err, rerr)
			}
			return err
		}
		r.crashPoint(fmt.Sprintf("after-write-%d", i+1))
	}
	return r.syncDirs()
}

func (r *Reconciler) path(a Action) string {
	if a.Dir == DirSnippets {
		return filepath.Join(r.cfg.Nginx.SnippetsDir, a.Name)
	}
	return filepath.Join(r.cfg.Nginx.ConfDir, a.Name)
}

// rollback puts every file the pass touched back as it was, newest first,
// and clears the journal once that succeeded (otherwise the next pass
// retries from it).
func (r *Reconciler) rollback(p *pass) error {
	var errs []error
	for i := len(p.undo) - 1; i >= 0; i-- {
		u := p.undo[i]
		if err := restoreFile(u.path, u.existed, u.old); err != nil {
			errs = append(errs, fmt.Errorf("roll back: %w", err))
		}
	}
	p.undo = nil
	p.touched = false
	p.res.Written, p.res.Deleted = 0, 0
	if err := r.syncDirs(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := r.clearJournal(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (r *Reconciler) syncDirs() error {
	for _, dir := range []string{r.cfg.Nginx.ConfDir, r.cfg.Nginx.SnippetsDir} {
		d, err := os.Open(dir)
		if err != nil {
			return err
		}
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync %s: %w", dir, err)
		}
	}
	return nil
}

// needsReload reports whether the pass has something for nginx to load.
func (p *pass) needsReload() bool {
	return p.touched || p.res.Issued > 0 || p.obs.ReloadPending
}

// maxHeldPerPass is how many sites one pass holds back, one nginx -t run
// each, before it concludes that the rejections have a common cause.
const maxHeldPerPass = 10

// test runs the test command when nginx is about to be reloaded. When
// nginx rejects a file this pass wrote for a site, that site alone is put
// back (held at its last version that passed) and the test runs again, so
// one bad site never blocks the others. A failure that cannot be pinned on
// a site, or rejections of more than maxHeldPerPass sites in one pass,
// put every file back.
func (r *Reconciler) test(ctx context.Context, p *pass) error {
	argv := r.cfg.Nginx.TestCommand
	// The first pass of a process always tests, so the configuration's
	// validity is known (and reported) from the start.
	if len(argv) == 0 || (!p.needsReload() && r.validated) {
		return r.settle(p)
	}
	r.crashPoint("before-test")
	var held []string
	for {
		_, err := command.Run(context.WithoutCancel(ctx), argv, nil, r.cfg.Nginx.CommandTimeout.Duration)
		p.res.Tested = true
		if err == nil {
			r.validated = true
			break
		}
		if !p.touched {
			// Nothing of ours changed: the configuration on disk was
			// already broken (by someone else) before this pass.
			return fmt.Errorf("%w: %w", ErrConfigInvalid, err)
		}
		site, msg, ok := p.attribute(err)
		if !ok || len(held) == maxHeldPerPass {
			why := "the failure is not in a site's file"
			if ok {
				// nginx names one file per run: holding sites one by
				// one would run nginx -t once per site of the fleet.
				why = fmt.Sprintf("nginx rejected more than %d sites (%s, ...), which points at something they share, such as a template or a directive this nginx does not know", maxHeldPerPass, strings.Join(held, ", "))
				for _, s := range held {
					delete(p.res.SiteErrors, s)
				}
			}
			rejected := fmt.Errorf("%w (%s, so nothing was applied): %w", ErrConfigRejected, why, err)
			if rerr := r.rollback(p); rerr != nil {
				return errors.Join(rejected, rerr)
			}
			return Terminal(rejected)
		}
		held = append(held, site)
		var rendered []byte
		for _, a := range p.res.Plan {
			if a.Site == site && a.Kind == ActionWrite && a.Dir == DirConf {
				rendered = a.New
			}
		}
		q := quarantined{Sum: sum(rendered), Error: msg, Since: r.now(), Revision: p.res.Revision}
		p.obs.quarantine[site] = q
		p.quarantineChanged = true
		r.failSite(p, site, quarantineError(q))
		r.log.Warn("nginx rejects a site: holding it at its last good version", "pass", p.res.ID, "site", site, "nginx", msg)
		if err := r.revertSite(p, site); err != nil {
			return err
		}
		if len(p.undo) == 0 {
			p.touched = false
			break
		}
	}
	r.crashPoint("after-test")
	return r.settle(p)
}

// settle records that the pass's files are final: a reload is owed, the
// inventory and quarantine are updated, and the journal is no longer
// needed.
func (r *Reconciler) settle(p *pass) error {
	if p.quarantineChanged {
		if err := r.saveQuarantine(p.obs.quarantine); err != nil {
			return fmt.Errorf("record quarantine: %w", err)
		}
	}
	if !p.touched {
		if len(p.undo) == 0 && p.journaled() {
			return r.clearJournal()
		}
		return nil
	}
	if err := os.WriteFile(r.reloadMarker(), []byte(p.res.ID+"\n"), 0o644); err != nil {
		return fmt.Errorf("mark reload pending: %w", err)
	}
	if err := r.saveInventory(p); err != nil {
		return fmt.Errorf("record managed files: %w", err)
	}
	return r.clearJournal()
}

// reload runs the reload command once if anything changed.
func (r *Reconciler) reload(ctx context.Context, p *pass) error {
	if !p.needsReload() {
		return nil
	}
	r.crashPoint("before-reload")
	if argv := r.cfg.Nginx.ReloadCommand; len(argv) > 0 {
		if _, err := command.Run(context.WithoutCancel(ctx), argv, nil, r.cfg.Nginx.CommandTimeout.Duration); err != nil {
			return fmt.Errorf("%w: %w", ErrReload, err)
		}
		p.res.Reloaded = true
	}
	r.crashPoint("after-reload")
	if err := os.Remove(r.reloadMarker()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
