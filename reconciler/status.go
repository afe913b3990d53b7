package reconciler

import (
	"slices"
	"time"

	"github.com/sitesync/sitesync/state"
)

// SiteStatus is one site's state after a pass, as the status page, the
// status command and the metrics show it.
type SiteStatus struct {
	Name        string
	ServerNames []string
	TLS         state.TLSMode
	// Ready is true when the site is served as declared: its file is in
	// place and, for TLS sites, its certificate exists.
	Ready bool
	// Reason says why a site is not ready ("" when ready).
	Reason string
	// Drift lists the kinds of drift found for the site at the start of
	// the pass.
	Drift []DriftKind
	// CertNotAfter is the certificate's expiry (zero when none).
	CertNotAfter time.Time
}

// SiteStatuses returns the status of every desired site after the pass
// that produced res and err, in file order.
func SiteStatuses(res *Result, err error) []SiteStatus {
	if res == nil {
		return nil
	}
	out := make([]SiteStatus, 0, len(res.Sites))
	for _, s := range res.Sites {
		st := SiteStatus{Name: s.Name, ServerNames: s.ServerNames, TLS: s.TLS, Ready: true}
		for _, d := range res.Drift {
			if d.Site == s.Name && !slices.Contains(st.Drift, d.Kind) {
				st.Drift = append(st.Drift, d.Kind)
			}
		}
		cert, haveCert := res.Certificates[s.Name]
		if haveCert {
			st.CertNotAfter = cert.NotAfter
		}
		switch {
		case res.SiteErrors[s.Name] != nil:
			st.Ready, st.Reason = false, res.SiteErrors[s.Name].Error()
		case err != nil && !isOnlySiteErrors(err):
			st.Ready, st.Reason = false, "the last pass failed: "+err.Error()
		case s.TLS == state.TLSLetsEncrypt && !haveCert:
			st.Ready, st.Reason = false, "no certificate yet: served over HTTP only"
		}
		out = append(out, st)
	}
	return out
}

// isOnlySiteErrors reports whether the pass itself went through and only
// some sites failed (Reconcile then returns the SiteErrors unwrapped).
func isOnlySiteErrors(err error) bool {
	_, ok := err.(SiteErrors)
	return ok
}
