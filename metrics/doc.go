// Package metrics exports what sitesync sees and does as Prometheus
// metrics: pass outcomes and durations, trigger sources, drift per site and
// kind, site readiness, certificate expiry and issuance, nginx reloads,
// webhook deliveries, the outbox and the broker connection, and the
// desired and applied revisions.
//
// Everything is registered on a prometheus.Registerer passed in; there are
// no package-level collectors. Every labelled series with a fixed label
// set is initialised at construction, so an absent series never stands in
// for a zero. Per-site series are replaced after every pass, so a site
// removed from the repository disappears from the metrics too.
//
// A *Metrics is safe for concurrent use.
package metrics
