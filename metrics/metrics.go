package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/reconciler"
	"github.com/sitesync/sitesync/webhook"
)

const ns = "sitesync"

// Pass outcomes, the values of the result label of sitesync_reconcile_total.
const (
	ResultSuccess = "success"
	ResultError   = "error"
	ResultNoop    = "noop"
)

// Metrics holds sitesync's collectors.
type Metrics struct {
	reconcileTotal   *prometheus.CounterVec
	reconcileSeconds prometheus.Histogram
	lastSuccess      prometheus.Gauge
	triggers         *prometheus.CounterVec

	drift       *prometheus.GaugeVec
	driftTotal  *prometheus.CounterVec
	siteReady   *prometheus.GaugeVec
	certExpiry  *prometheus.GaugeVec
	issuance    *prometheus.CounterVec
	reloads     *prometheus.CounterVec
	configValid prometheus.Gauge
	lastReload  prometheus.Gauge

	webhook         *prometheus.CounterVec
	outboxPending   prometheus.Gauge
	brokerConnected prometheus.Gauge

	desiredRevision *prometheus.GaugeVec
	appliedRevision *prometheus.GaugeVec
	unmanaged       prometheus.Gauge

	mu sync.Mutex // serialises ObservePass's replacement of per-site series
}

// New creates the collectors and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reconcileTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reconcile_total",
			Help: "Reconcile passes by result: success (changed something), noop (nothing to do), error."}, []string{"result"}),
		reconcileSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "reconcile_duration_seconds",
			Help: "Duration of reconcile passes.", Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_reconcile_success_timestamp_seconds",
			Help: "Unix time of the end of the last pass that did not fail."}),
		triggers: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reconcile_trigger_total",
			Help: "Triggers that marked the host dirty, by source."}, []string{"source"}),
		drift: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "drift",
			Help: "1 if the site showed this kind of drift at the start of the last pass, else 0."}, []string{"site", "kind"}),
		driftTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "drift_total",
			Help: "Drift repaired, by kind."}, []string{"kind"}),
		siteReady: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "site_ready",
			Help: "1 if the site is served as declared after the last pass."}, []string{"site"}),
		certExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "certificate_expiry_timestamp_seconds",
			Help: "Unix time at which the site's certificate expires."}, []string{"site"}),
		issuance: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "certificate_issuance_total",
			Help: "Certificate issuances and renewals, by result (deferred: not attempted while the name backs off after failures)."}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "nginx_reload_total",
			Help: "nginx reloads, by result."}, []string{"result"}),
		configValid: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nginx_config_valid",
			Help: "1 if the last nginx configuration test passed, 0 if it failed."}),
		lastReload: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful nginx reload."}),
		webhook: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "webhook_deliveries_total",
			Help: "Webhook requests, by event and result."}, []string{"event", "result"}),
		outboxPending: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "outbox_pending",
			Help: "Accepted deliveries not yet confirmed by the broker."}),
		brokerConnected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "broker_connected",
			Help: "1 if connected to RabbitMQ (always 1 with the in-process broker)."}),
		desiredRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "desired_revision_info",
			Help: "The revision of the site repository the last pass fetched."}, []string{"revision"}),
		appliedRevision: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "applied_revision_info",
			Help: "The revision of the site repository last applied completely."}, []string{"revision"}),
		unmanaged: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "unmanaged_files",
			Help: "Files in the managed directories that sitesync did not create."}),
	}
	reg.MustRegister(m.reconcileTotal, m.reconcileSeconds, m.lastSuccess, m.triggers, m.drift, m.driftTotal,
		m.siteReady, m.certExpiry, m.issuance, m.reloads, m.configValid, m.lastReload, m.webhook,
		m.outboxPending, m.brokerConnected, m.desiredRevision, m.appliedRevision, m.unmanaged)

	for _, r := range []string{ResultSuccess, ResultError, ResultNoop} {
		m.reconcileTotal.WithLabelValues(r)
	}
	for _, s := range loop.Sources {
		m.triggers.WithLabelValues(string(s))
	}
	for _, k := range reconciler.DriftKinds {
		m.driftTotal.WithLabelValues(string(k))
	}
	for _, r := range []string{"success", "failure"} {
		m.issuance.WithLabelValues(r)
		m.reloads.WithLabelValues(r)
	}
	m.issuance.WithLabelValues("deferred")
	for _, r := range webhook.Results {
		m.webhook.WithLabelValues("push", string(r))
	}
	return m
}

// ObserveTrigger counts a trigger.
func (m *Metrics) ObserveTrigger(t loop.Trigger) { m.triggers.WithLabelValues(string(t.Source)).Inc() }

// ObserveWebhook counts a webhook request.
func (m *Metrics) ObserveWebhook(event string, result webhook.Result) {
	if event == "" {
		event = "unknown"
	}
	m.webhook.WithLabelValues(event, string(result)).Inc()
}

// SetOutboxPending sets the number of unsent outbox rows.
func (m *Metrics) SetOutboxPending(n int64) { m.outboxPending.Set(float64(n)) }

// SetBrokerConnected sets the broker connection state.
func (m *Metrics) SetBrokerConnected(ok bool) { m.brokerConnected.Set(b2f(ok)) }

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
