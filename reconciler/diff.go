package reconciler

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/sitesync/sitesync/certbot"
	"github.com/sitesync/sitesync/render"
	"github.com/sitesync/sitesync/state"
)

// plan diffs the rendered files and the desired certificates against what
// was observed.
func (r *Reconciler) plan(ctx context.Context, p *pass) error {
	res, obs := p.res, p.obs
	var plan Plan

	if len(p.desired.Sites) == 0 && !r.cfg.Reconcile.AllowEmpty {
		for name := range obs.Conf {
			if name != render.SharedFile {
				return Terminal(errNoSites)
			}
		}
	}

	// Certificates first: whether a site can be rendered with TLS depends
	// on them.
	for _, s := range p.desired.Sites {
		if s.TLS != state.TLSLetsEncrypt {
			continue
		}
		cert, have := obs.Certs[s.Name]
		kind, force := r.certDrift(s, cert, have)
		if kind == "" {
			continue
		}
		res.Drift = append(res.Drift, Drift{Site: s.Name, Kind: kind, Path: s.Name})
		if r.issuer == nil {
			if !have {
				if err := r.renderWithoutTLS(p, s); err != nil {
					return err
				}
				res.Notes = append(res.Notes, fmt.Sprintf("site %s: no certificate and certbot is disabled; serving it over HTTP only", s.Name))
			}
			continue
		}
		plan = append(plan, Action{Kind: ActionIssue, Site: s.Name, Name: s.Name, Domains: s.ServerNames, Force: force, Reason: string(kind)})
	}

	for _, g := range []struct {
		dir     Dir
		desired map[string]render.File
		current map[string][]byte
	}{
		{DirConf, p.out.Conf, obs.Conf},
		{DirSnippets, p.out.Snippets, obs.Snippets},
	} {
		for name, f := range g.desired {
			if obs.isUnmanaged(g.dir, name) {
				err := Terminal(fmt.Errorf("%s/%s exists and was not created by sitesync; not touching it (remove or rename it to let sitesync manage it)", g.dir, name))
				if f.Site == "" {
					return err
				}
				r.failSite(p, f.Site, err)
				continue
			}
			old, ok := g.current[name]
			switch {
			case !ok:
				plan = append(plan, Action{Kind: ActionWrite, Site: f.Site, Dir: g.dir, Name: name, New: f.Data, Reason: string(DriftConfigMissing)})
				res.Drift = append(res.Drift, Drift{Site: f.Site, Kind: DriftConfigMissing, Path: string(g.dir) + "/" + name})
			case !bytes.Equal(old, f.Data):
				plan = append(plan, Action{Kind: ActionWrite, Site: f.Site, Dir: g.dir, Name: name, Old: old, New: f.Data, Reason: string(DriftConfigChanged)})
				res.Drift = append(res.Drift, Drift{Site: f.Site, Kind: DriftConfigChanged, Path: string(g.dir) + "/" + name})
			}
		}
		for name, old := range g.current {
			if _, ok := g.desired[name]; ok {
				continue
			}
			site := ""
			if h, ok := render.ParseHeader(old); ok && h.Kind == render.KindSite {
				site = h.Name
			}
			plan = append(plan, Action{Kind: ActionDelete, Site: site, Dir: g.dir, Name: name, Old: old, Reason: string(DriftConfigOrphaned)})
			res.Drift = append(res.Drift, Drift{Site: site, Kind: DriftConfigOrphaned, Path: string(g.dir) + "/" + name})
		}
	}
	p.res.Plan = plan
	p.quarantineChanged = r.holdQuarantined(p)
	plan = p.res.Plan

	// A site that cannot be written gets no certificate either.
	plan = slices.DeleteFunc(plan, func(a Action) bool {
		_, failed := res.SiteErrors[a.Site]
		return a.Site != "" && failed
	})
	if len(plan) > 0 || obs.ReloadPending {
		reason := "files or certificates change"
		if len(plan) == 0 {
			reason = "an earlier pass changed files but its reload did not complete"
		}
		plan = append(plan, Action{Kind: ActionReload, Reason: reason})
	}
	sortPlan(plan)
	slices.SortFunc(res.Drift, func(a, b Drift) int {
		return strings.Compare(a.Site+"\x00"+a.Path+string(a.Kind), b.Site+"\x00"+b.Path+string(b.Kind))
	})
	res.Plan = plan
	res.Certificates = obs.Certs
	return nil
}

// certDrift says whether a TLS site's certificate needs issuing, and
// whether certbot must be forced to renew it.
func (r *Reconciler) certDrift(s state.Site, c certbot.Cert, have bool) (kind DriftKind, force bool) {
	switch {
	case !have:
		return DriftCertMissing, false
	case !sameNames(c.Names, s.ServerNames):
		return DriftCertNamesMismatch, false
	case c.NotAfter.Sub(r.now()) < r.cfg.Certbot.RenewBefore.Duration:
		return DriftCertExpiring, true
	}
	return "", false
}

func sameNames(have, want []string) bool {
	w := slices.Clone(want)
	slices.Sort(w)
	w = slices.Compact(w)
	return slices.Equal(have, w)
}

// renderWithoutTLS replaces a site's rendered file with its HTTP-only
// variant.
func (r *Reconciler) renderWithoutTLS(p *pass, s state.Site) error {
	o := p.opts
	o.NoTLS = map[string]bool{s.Name: true}
	b, err := render.Site(p.tmpl, s, o)
	if err != nil {
		return Terminal(err)
	}
	name := render.SiteFile(s.Name)
	p.out.Conf[name] = render.File{Site: s.Name, Data: b}
	return nil
}

// failSite records that a site did not converge this pass.
func (r *Reconciler) failSite(p *pass, site string, err error) {
	if p.res.SiteErrors == nil {
		p.res.SiteErrors = SiteErrors{}
	}
	p.res.SiteErrors[site] = err
}
