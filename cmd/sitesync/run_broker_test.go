package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/store"
)

// passesCovering returns the recorded passes and the set of delivery ids
// they covered.
func passesCovering(t *testing.T, dbURL string) ([]store.Pass, map[string]bool) {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	passes, err := st.RecentPasses(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, p := range passes {
		for _, d := range p.Deliveries {
			covered[d] = true
		}
	}
	return passes, covered
}

func pendingOutbox(t *testing.T, dbURL string) int64 {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := st.OutboxPending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRunWithPostgresAndRabbitMQ covers the service against the real
// PostgreSQL and RabbitMQ: a burst of 1,000 signed deliveries costs at most
// two passes, and no accepted delivery is lost while the broker or the
// database is unreachable (each is cut off by a proxy, so other tests keep
// their servers).
func TestRunWithPostgresAndRabbitMQ(t *testing.T) {
	mq := testenv.StartProxy(t, testenv.RabbitMQAddr)
	pg := testenv.StartProxy(t, testenv.PostgresAddr)
	brokerURL := testenv.RabbitMQURL(t, mq.Addr)
	dbURL := testenv.PostgresURL(t, pg.Addr)
	s := newSvc(t, brokerURL, dbURL)
	s.start(role{webhook: true, reconcile: true})
	if code, _ := s.nginx.GetEventually(t, "one.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatal("startup pass did not converge")
	}

	// A burst of 1,000 deliveries, 16 at a time.
	sha := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "two")}, "add two")
	ids := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				code := s.push(id, sha)
				mu.Lock()
				statuses[code]++
				mu.Unlock()
			}
		}()
	}
	var all []string
	burstStart := time.Now()
	for i := range 1000 {
		id := fmt.Sprintf("burst-%04d", i)
		all = append(all, id)
		ids <- id
	}
	close(ids)
	wg.Wait()
	span := time.Since(burstStart)
	if statuses[http.StatusAccepted] != 1000 {
		t.Fatalf("burst statuses = %v, want 1000 × 202", statuses)
	}
	eventually(t, 30*time.Second, "every burst delivery to be covered by a recorded pass", func() bool {
		_, covered := passesCovering(t, dbURL)
		for _, id := range all {
			if !covered[id] {
				return false
			}
		}
		return true
	})
	// Only passes that consumed a burst delivery count: the startup pass
	// may be recorded after readiness, so a before/after difference could
	// include it.
	passes, _ := passesCovering(t, dbURL)
	burstPasses := 0
	for _, p := range passes {
		if slices.ContainsFunc(p.Deliveries, func(d string) bool { return strings.HasPrefix(d, "burst-") }) {
			burstPasses++
		}
	}
	t.Logf("1,000 deliveries accepted in %v -> %d pass(es)", span.Round(time.Millisecond), burstPasses)
	// The loop starts a pass once triggers pause for Settle or after
	// MaxSettle (2 s) of steady arrivals; the triggers that arrive during it
	// make one follow-up. Deliveries arriving for longer than that cap are
	// not a burst but a stream, and may cost one more pass per cap.
	if limit := 2 + int(span/(2*time.Second)); burstPasses > limit {
		t.Fatalf("1,000 deliveries over %v cost %d passes, want at most %d", span, burstPasses, limit)
	}
	if code, _ := s.nginx.GetEventually(t, "two.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatal("the pushed commit was not applied")
	}

	// The broker goes away: deliveries are still accepted (outbox), and
	// every one is consumed once it is back.
	mq.Cut()
	sha = testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "two", "three")}, "add three")
	var outage []string
	for i := range 20 {
		id := fmt.Sprintf("mq-down-%02d", i)
		outage = append(outage, id)
		if code := s.push(id, sha); code != http.StatusAccepted {
			t.Fatalf("push while the broker is down: %d", code)
		}
	}
	if n := pendingOutbox(t, dbURL); n == 0 {
		t.Fatal("outbox empty while the broker is unreachable")
	}
	mq.Restore()
	eventually(t, 60*time.Second, "deliveries accepted during the broker outage to be consumed", func() bool {
		_, covered := passesCovering(t, dbURL)
		for _, id := range outage {
			if !covered[id] {
				return false
			}
		}
		return pendingOutbox(t, dbURL) == 0
	})
	if code, _ := s.nginx.GetEventually(t, "three.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatal("commit pushed during the broker outage was not applied")
	}

	// The database goes away: deliveries are published to the broker
	// directly and still converge the host.
	pg.Cut()
	sha = testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "two", "three", "four")}, "add four")
	if code := s.push("pg-down-1", sha); code != http.StatusAccepted {
		t.Fatalf("push while the database is down: %d", code)
	}
	if code, _ := s.nginx.GetEventually(t, "four.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatal("commit pushed while the database was down was not applied")
	}
	pg.Restore()
	_, covered := passesCovering(t, dbURL)
	if !slices.ContainsFunc(outage, func(id string) bool { return covered[id] }) {
		t.Fatal("database lost pass records")
	}
}

// TestSplitWebhookAndReconcile runs the two halves as separate services
// (as the two systemd units do) over RabbitMQ and PostgreSQL.
func TestSplitWebhookAndReconcile(t *testing.T) {
	dbURL := testenv.PostgresURL(t, "")
	s := newSvc(t, testenv.RabbitMQURL(t, ""), dbURL)
	recon := *s.cfg
	recon.Metrics.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	rs := &svc{t: t, nginx: s.nginx, repo: s.repo, cfg: &recon, log: &syncBuffer{}}
	rs.start(role{reconcile: true})
	s.start(role{webhook: true})

	sha := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "split")}, "add split")
	if code := s.push("split-1", sha); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	if code, _ := s.nginx.GetEventually(t, "split.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatal("split services did not converge")
	}
	// Only the reconcile half holds the host lock: a second reconciler is refused.
	other := recon
	other.Metrics.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	err := runService(context.Background(), &other, role{reconcile: true}, rs.logger(), prometheus.NewRegistry())
	if err == nil || !strings.Contains(err.Error(), "held by") {
		t.Fatalf("second reconciler: %v, want the lock to be refused", err)
	}
}

// TestPushBeforeFirstSubscriptionIsApplied starts the reconcile half while
// it cannot reach RabbitMQ, so its queue does not exist yet when the
// webhook half publishes a push, and RabbitMQ drops the message. Once the
// reconcile half subscribes, a pass must pick the commit up; without it
// the push would wait for the hour-long resync.
func TestPushBeforeFirstSubscriptionIsApplied(t *testing.T) {
	dbURL := testenv.PostgresURL(t, "")
	direct := testenv.RabbitMQURL(t, "")
	mq := testenv.StartProxy(t, testenv.RabbitMQAddr)
	s := newSvc(t, direct, dbURL)
	recon := *s.cfg
	recon.Broker.URL = strings.Replace(direct, testenv.RabbitMQAddr, mq.Addr, 1)
	if recon.Broker.URL == direct {
		t.Fatalf("broker URL %q does not name %s", direct, testenv.RabbitMQAddr)
	}
	recon.Metrics.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	mq.Cut()
	rs := &svc{t: t, nginx: s.nginx, repo: s.repo, cfg: &recon, log: &syncBuffer{}}
	rs.start(role{reconcile: true}) // ready after its startup pass
	s.start(role{webhook: true})

	sha := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": siteYAML("one", "early")}, "add early")
	if code := s.push("early-1", sha); code != http.StatusAccepted {
		t.Fatalf("push: %d", code)
	}
	eventually(t, 30*time.Second, "the push to be published", func() bool { return pendingOutbox(t, dbURL) == 0 })
	if code, _ := s.nginx.Get(t, "early.test", "/"); code == 204 {
		t.Fatal("test setup: the commit was applied before the reconcile half subscribed")
	}
	mq.Restore()
	if code, _ := s.nginx.GetEventually(t, "early.test", "/", func(c int, _ string) bool { return c == 204 }); code != 204 {
		t.Fatal("a push published before the first subscription was not applied")
	}
}
