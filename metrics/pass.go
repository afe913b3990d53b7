package metrics

import (
	"errors"

	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/reconciler"
)

// ObservePass updates every series a pass determines.
func (m *Metrics) ObservePass(p loop.Pass) {
	res, err := p.Result, p.Err
	if res == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	result := ResultNoop
	switch {
	case err != nil:
		result = ResultError
	case res.Changed():
		result = ResultSuccess
	}
	m.reconcileTotal.WithLabelValues(result).Inc()
	if !res.Finished.IsZero() {
		m.reconcileSeconds.Observe(res.Finished.Sub(res.Started).Seconds())
	}
	if err == nil {
		m.lastSuccess.Set(float64(res.Finished.Unix()))
	}

	m.issuance.WithLabelValues("success").Add(float64(res.Issued))
	m.issuance.WithLabelValues("failure").Add(float64(res.IssueFailed))
	m.issuance.WithLabelValues("deferred").Add(float64(res.IssueDeferred))
	switch {
	case res.Reloaded:
		m.reloads.WithLabelValues("success").Inc()
		m.lastReload.Set(float64(res.Finished.Unix()))
	case errors.Is(err, reconciler.ErrReload):
		m.reloads.WithLabelValues("failure").Inc()
	}
	switch {
	case errors.Is(err, reconciler.ErrConfigRejected), errors.Is(err, reconciler.ErrConfigInvalid):
		m.configValid.Set(0)
	case res.Tested:
		m.configValid.Set(1)
	}

	if res.Revision != "" {
		m.desiredRevision.Reset()
		m.desiredRevision.WithLabelValues(res.Revision).Set(1)
		if err == nil {
			m.appliedRevision.Reset()
			m.appliedRevision.WithLabelValues(res.Revision).Set(1)
		}
	}
	m.unmanaged.Set(float64(len(res.Unmanaged)))

	// Per-site series are rebuilt from the sites of this pass. A pass that
	// failed before parsing knows no sites: keep the previous ones.
	if res.Sites == nil && err != nil {
		return
	}
	m.drift.Reset()
	m.siteReady.Reset()
	m.certExpiry.Reset()
	for _, st := range reconciler.SiteStatuses(res, err) {
		for _, k := range reconciler.DriftKinds {
			m.drift.WithLabelValues(st.Name, string(k)).Set(0)
		}
		for _, k := range st.Drift {
			m.drift.WithLabelValues(st.Name, string(k)).Set(1)
			if st.Ready {
				m.driftTotal.WithLabelValues(string(k)).Inc()
			}
		}
		m.siteReady.WithLabelValues(st.Name).Set(b2f(st.Ready))
		if !st.CertNotAfter.IsZero() {
			m.certExpiry.WithLabelValues(st.Name).Set(float64(st.CertNotAfter.Unix()))
		}
	}
	// Orphaned files belong to sites that are gone: count their repair.
	if err == nil {
		for _, d := range res.Drift {
			if d.Kind == reconciler.DriftConfigOrphaned {
				m.driftTotal.WithLabelValues(string(d.Kind)).Inc()
			}
		}
	}
}
