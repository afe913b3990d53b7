package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/sitesync/sitesync/broker"
	"github.com/sitesync/sitesync/commitstatus"
	"github.com/sitesync/sitesync/config"
	"github.com/sitesync/sitesync/lock"
	"github.com/sitesync/sitesync/loop"
	"github.com/sitesync/sitesync/metrics"
	"github.com/sitesync/sitesync/status"
	"github.com/sitesync/sitesync/store"
	"github.com/sitesync/sitesync/webhook"
)

// role says which halves of sitesync a process runs.
type role struct {
	webhook, reconcile bool
}

func (r role) name() string {
	switch {
	case r.webhook && r.reconcile:
		return "sitesync run"
	case r.webhook:
		return "sitesync webhook"
	}
	return "sitesync reconcile"
}

func cmdRun(ctx context.Context, e *env, args []string) int {
	return serve(ctx, e, args, role{webhook: true, reconcile: true})
}

func cmdWebhook(ctx context.Context, e *env, args []string) int {
	return serve(ctx, e, args, role{webhook: true})
}

func cmdReconcile(ctx context.Context, e *env, args []string) int {
	return serve(ctx, e, args, role{reconcile: true})
}

// serve runs a long-lived sitesync process until ctx is done (SIGINT or
// SIGTERM).
func serve(ctx context.Context, e *env, args []string, ro role) int {
	var c commonFlags
	fs := newFlagSet(e, strings.TrimPrefix(ro.name(), "sitesync "), &c)
	if err := fs.Parse(args); err != nil {
		return parseErr(err)
	}
	log, err := c.logger(e)
	if err != nil {
		fmt.Fprintln(e.stderr, "sitesync:", err)
		return exitUsage
	}
	cfg, err := loadConfig(e, c.config)
	if err != nil {
		log.Error("configuration", "err", err)
		return exitError
	}
	warnRoot(log)
	if err := runService(ctx, cfg, ro, log, prometheus.NewRegistry()); err != nil {
		log.Error(ro.name()+" stopped", "err", err)
		return exitError
	}
	log.Info(ro.name() + " stopped")
	return exitOK
}

// service is one running sitesync process and its parts.
type service struct {
	cfg  *config.Config
	ro   role
	log  *slog.Logger
	host string

	reg     *prometheus.Registry
	metrics *metrics.Metrics
	store   *store.Store
	amqp    *broker.AMQP
	local   *broker.Local
	relay   *broker.Relay
	loop    *loop.Loop
	tracker *status.Tracker
	github  *commitstatus.Client
	lock    *lock.Lock
}

// runService wires and runs the process's parts until ctx is done. Every
// part stops when ctx is cancelled; a pass in progress finishes first.
func runService(ctx context.Context, cfg *config.Config, ro role, log *slog.Logger, reg *prometheus.Registry) error {
	s := &service{cfg: cfg, ro: ro, log: log, reg: reg}
	s.host, _ = os.Hostname()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = metrics.New(reg)

	if ro.reconcile {
		l, err := hostLock(cfg, ro.name())
		if err != nil {
			return err
		}
		s.lock = l
		defer l.Release()
	}
	if !ro.reconcile || !ro.webhook {
		if cfg.Broker.URL == "" {
			return errors.New("running the webhook and reconcile halves as separate processes needs a broker: set [broker] url")
		}
	}

	st, err := store.Open(ctx, store.Options{URL: cfg.Database.URL, StateDir: cfg.Reconcile.StateDir, Log: log})
	if err != nil {
		return err
	}
	defer st.Close()
	s.store = st

	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				log.Error(name+" stopped", "err", err)
				cancel()
			}
		}()
	}

	var pub broker.Publisher
	if cfg.Broker.URL != "" {
		s.amqp = broker.NewAMQP(cfg.Broker.URL, cfg.Broker.Exchange, log)
		goRun("broker connection", s.amqp.Run)
		pub = s.amqp
	} else {
		s.local = broker.NewLocal(4096)
		pub = s.local
		s.metrics.SetBrokerConnected(true)
	}
	if ro.webhook {
		s.relay = broker.NewRelay(outbox{st}, pub, log, broker.RelayOptions{})
		goRun("outbox relay", s.relay.Run)
	}
	goRun("gauges", s.updateGauges)
	if r := cfg.Database.Retention.Duration; r > 0 {
		goRun("history pruning", func(ctx context.Context) error { return s.pruneHistory(ctx, r, time.Hour) })
	}

	if ro.reconcile {
		if err := s.startReconciler(ctx, goRun); err != nil {
			return err
		}
	}
	if ro.webhook {
		if err := s.startWebhook(ctx, goRun); err != nil {
			return err
		}
	}
	if err := s.startStatus(ctx, goRun); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// startReconciler starts the reconcile loop, the file watcher and the
// consumer of webhook messages.
func (s *service) startReconciler(ctx context.Context, goRun func(string, func(context.Context) error)) error {
	cfg := s.cfg
	r, err := newReconciler(cfg, s.log)
	if err != nil {
		return err
	}
	if cfg.GitHub.TokenFile != "" {
		tok, err := webhook.ReadSecret(cfg.GitHub.TokenFile)
		if err != nil {
			return fmt.Errorf("github.token_file: %w", err)
		}
		ctxName := cfg.GitHub.Context
		if ctxName == "" {
			ctxName = "sitesync/" + s.host
		}
		s.github = &commitstatus.Client{APIURL: cfg.GitHub.APIURL, Token: string(tok), Repository: cfg.Webhook.Repository, Context: ctxName}
	}
	s.loop = loop.New(r, loop.Options{
		Interval:  cfg.Reconcile.Interval.Duration,
		OnPass:    s.onPass,
		OnTrigger: s.metrics.ObserveTrigger,
	}, s.log)
	s.tracker = status.NewTracker(s.host, s.loop.Running)
	goRun("reconcile loop", s.loop.Run)
	goRun("file watcher", func(ctx context.Context) error {
		return s.loop.Watch(ctx, loop.WatchOptions{
			ConfDir: cfg.Nginx.ConfDir, SnippetsDir: cfg.Nginx.SnippetsDir,
			LiveDir: filepath.Join(cfg.Certbot.ConfigDir, "live"),
		})
	})

	goRun("webhook consumer", func(ctx context.Context) error {
		// Consume waits for the broker; the loop meanwhile self-heals on
		// its timer and file watcher.
		var deliveries <-chan broker.Delivery
		var err error
		if s.amqp != nil {
			queue := cfg.Broker.Queue
			if queue == "" {
				queue = "sitesync." + s.host
			}
			deliveries, err = s.amqp.Consume(ctx, queue)
			if err == nil {
				// RabbitMQ drops what is published before the queue is
				// bound, which on a first start can be after the startup
				// pass pulled: one more pass covers such a push.
				s.loop.Trigger(loop.Trigger{Source: loop.SourceStartup})
			}
		} else {
			deliveries, err = s.local.Consume(ctx, "")
		}
		if err != nil {
			return err
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case d, ok := <-deliveries:
				if !ok {
					return nil
				}
				s.onMessage(ctx, d)
			}
		}
	})
	return nil
}

// onMessage turns a broker message into a trigger whose ack waits for the
// pass that covers it.
func (s *service) onMessage(ctx context.Context, d broker.Delivery) {
	m := d.Message
	s.log.Debug("webhook message", "delivery", m.DeliveryID, "commit", m.Commit, "redelivered", d.Redelivered)
	if s.github != nil && m.Commit != "" {
		if err := s.github.Set(ctx, m.Commit, commitstatus.Pending, "sitesync on "+s.host+" is applying this commit"); err != nil {
			s.log.Warn("commit status", "err", err)
		}
	}
	s.loop.Trigger(loop.Trigger{Source: loop.SourceWebhook, Delivery: m.DeliveryID, Commit: m.Commit, Ack: func() {
		if err := d.Ack(); err != nil {
			s.log.Debug("ack", "delivery", m.DeliveryID, "err", err)
		}
	}})
}

// onPass logs, records and reports a finished pass.
func (s *service) onPass(ctx context.Context, p loop.Pass) {
	res, err := p.Result, p.Err
	s.metrics.ObservePass(p)
	s.tracker.ObservePass(p)
	outcome := status.Outcome(res, err)
	attrs := []any{"pass", res.ID, "revision", status.ShortRev(res.Revision), "triggers", p.Sources(),
		"outcome", outcome, "changes", status.Changes(res), "duration", res.Finished.Sub(res.Started).Round(time.Millisecond)}
	if err != nil {
		s.log.Warn("pass", append(attrs, "err", err)...)
	} else {
		s.log.Info("pass", attrs...)
	}

	rec := store.Pass{ID: res.ID, Host: s.host, Started: res.Started, Finished: res.Finished, Revision: res.Revision,
		Actions: len(res.Plan), Written: res.Written, Deleted: res.Deleted, Issued: res.Issued, IssueFailed: res.IssueFailed,
		Reloaded: res.Reloaded, Outcome: outcome}
	for _, src := range p.Sources() {
		rec.Triggers = append(rec.Triggers, string(src))
	}
	for _, t := range p.Triggers {
		if t.Delivery != "" {
			rec.Deliveries = append(rec.Deliveries, t.Delivery)
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.store.RecordPass(rctx, rec); err != nil {
		s.log.Warn("could not record the pass; it is still logged above", "pass", res.ID, "err", err)
	}
	s.reportCommits(rctx, p)
}

// reportCommits sets the final commit status on the commits the pass's
// webhook triggers announced.
func (s *service) reportCommits(ctx context.Context, p loop.Pass) {
	if s.github == nil {
		return
	}
	res, err := p.Result, p.Err
	done := map[string]bool{}
	for _, t := range p.Triggers {
		if t.Commit == "" || done[t.Commit] {
			continue
		}
		done[t.Commit] = true
		state, desc := commitstatus.Success, "applied on "+s.host+": "+status.Changes(res)
		switch {
		case err != nil:
			state, desc = commitstatus.Failure, "not applied on "+s.host+": "+err.Error()
		case res.Revision != t.Commit:
			// A newer commit was applied in its place.
			desc = "superseded on " + s.host + " by " + status.ShortRev(res.Revision)
		}
		if err := s.github.Set(ctx, t.Commit, state, desc); err != nil {
			s.log.Warn("commit status", "err", err)
		}
	}
}

// startWebhook starts the webhook receiver.
func (s *service) startWebhook(ctx context.Context, goRun func(string, func(context.Context) error)) error {
	cfg := s.cfg.Webhook
	wc := webhook.Config{Insecure: cfg.InsecureNoSecret, Repository: cfg.Repository, Branch: s.cfg.Source.Branch, TrustedProxyHops: cfg.TrustedProxyHops}
	if cfg.SecretFile != "" {
		secret, err := webhook.ReadSecret(cfg.SecretFile)
		if err != nil {
			return fmt.Errorf("webhook.secret_file: %w", err)
		}
		wc.Secret = secret
	}
	for _, c := range cfg.AllowedCIDRs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return fmt.Errorf("webhook.allowed_cidrs: %w", err)
		}
		wc.AllowedCIDRs = append(wc.AllowedCIDRs, p)
	}
	acc := &acceptor{store: s.store, relay: s.relay, log: s.log}
	if s.amqp != nil {
		acc.direct = s.amqp
	} else {
		acc.direct = s.local
	}
	h, err := webhook.NewHandler(wc, acc, s.metrics.ObserveWebhook, s.log)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(cfg.Path, h)
	return s.listen(ctx, goRun, "webhook", cfg.Listen, mux)
}

// startStatus starts the metrics, health and status listener.
func (s *service) startStatus(ctx context.Context, goRun func(string, func(context.Context) error)) error {
	page, err := status.NewPage()
	if err != nil {
		return err
	}
	tracker := s.tracker
	h := status.Health{MaxFailing: 3 * s.cfg.Reconcile.Interval.Duration, Ping: s.store.Ping}
	if tracker == nil {
		tracker = status.NewTracker(s.host, nil)
	} else {
		h.LockHeld = func() bool { return s.lock != nil }
	}
	return s.listen(ctx, goRun, "metrics", s.cfg.Metrics.Listen, status.Handler(tracker, page, s.reg, h))
}

// listen serves h on addr until ctx is done, then shuts down gracefully.
func (s *service) listen(ctx context.Context, goRun func(string, func(context.Context) error), name, addr string, h http.Handler) error {
	if addr == "" {
		return nil
	}
	srv := webhook.NewServer(addr, h)
	ln, err := listenTCP(addr)
	if err != nil {
		return fmt.Errorf("%s listener: %w", name, err)
	}
	s.log.Info(name+" listening", "addr", ln.Addr().String())
	goRun(name+" listener", func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return srv.Shutdown(sctx)
		}
	})
	return nil
}

// updateGauges refreshes the gauges that are polled rather than pushed.
// pruneHistory deletes database history older than retention at once and
// then every interval, until ctx is done. A failure is logged and retried
// at the next interval: history is not worth stopping the service for.
func (s *service) pruneHistory(ctx context.Context, retention, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p, err := s.store.Prune(ctx, time.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("pruning database history failed", "err", err)
		case p.Total() > 0:
			s.log.Info("pruned database history", "older_than", retention.String(),
				"deliveries", p.Deliveries, "outbox", p.Outbox, "passes", p.Passes)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (s *service) updateGauges(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		if n, err := s.store.OutboxPending(ctx); err == nil {
			s.metrics.SetOutboxPending(n)
		}
		if s.amqp != nil {
			s.metrics.SetBrokerConnected(s.amqp.Connected())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
