package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testenv"
	"github.com/sitesync/sitesync/store"
	"github.com/sitesync/sitesync/webhook"
)

// webhookSecret signs the deliveries the benchmark sends.
const webhookSecret = "bench-webhook-secret"

// service is a `sitesync run` child process with its own nginx, site
// repository, PostgreSQL schema and RabbitMQ vhost.
type service struct {
	t       *testing.T
	nginx   *testenv.Nginx
	repo    string
	fleet   testenv.Fleet
	variant int
	// webhookURL and metricsURL are the service's listeners.
	webhookURL, metricsURL string
	dbURL                  string
	store                  *store.Store
	logPath                string
	cmd                    *exec.Cmd
	done                   chan struct{}
	client                 *http.Client
}

// startService starts `sitesync run` on an n-site fleet and waits until it
// has converged nginx.
func startService(t *testing.T, bin string, n int) *service {
	t.Helper()
	ngx := testenv.StartNginx(t)
	fl := testenv.Fleet{N: n, Port: ngx.HTTPPort}
	repo := testenv.NewGitRepo(t, fl.Files())
	brokerURL := testenv.RabbitMQURL(t, "")
	dbURL := testenv.PostgresURL(t, "")
	dir := t.TempDir()
	secret := filepath.Join(dir, "webhook-secret")
	writeFile(t, secret, webhookSecret+"\n", 0o600)
	ports := testenv.FreePorts(t, 2)
	cfg := filepath.Join(dir, "sitesync.toml")
	writeFile(t, cfg, testenv.HostTOML(repo, ngx.ConfDir, ngx.SnippetsDir, ngx.TestCommand, ngx.ReloadCommand, ngx.HTTPPort, ngx.HTTPSPort, dir)+fmt.Sprintf(`interval = "1h"
[webhook]
listen = "127.0.0.1:%d"
path = "/github-webhook"
secret_file = %s
repository = "org/sites"
[broker]
url = %s
queue = "sitesync.bench"
[database]
url = %s
[metrics]
listen = "127.0.0.1:%d"
`, ports[0], testenv.TOMLString(secret), testenv.TOMLString(brokerURL), testenv.TOMLString(dbURL), ports[1]), 0o644)

	s := &service{
		t: t, nginx: ngx, repo: repo, fleet: fl, dbURL: dbURL,
		webhookURL: fmt.Sprintf("http://127.0.0.1:%d/github-webhook", ports[0]),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		logPath:    filepath.Join(dir, "sitesync.log"),
		done:       make(chan struct{}),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			Proxy: nil, MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute,
		}},
	}
	logFile, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, "run", "--config", cfg, "--log-format", "text")
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		logFile.Close()
		t.Fatal(err)
	}
	logFile.Close()
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(s.stop)

	deadline := time.Now().Add(2 * time.Minute)
	for !s.ready() {
		select {
		case <-s.done:
			t.Fatalf("sitesync run exited during start-up: %v\n%s", s.cmd.ProcessState, s.logTail())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sitesync run not ready within 2 minutes\n%s", s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitServed(t, ngx, fl.Host(testenv.ProbeSite), 301, fl.RedirectTarget(0), 20*time.Millisecond, 5*time.Minute)
	s.store, err = store.Open(context.Background(), store.Options{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ready reports whether /readyz answers 200.
func (s *service) ready() bool {
	resp, err := s.client.Get(s.metricsURL + "/readyz")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits up to 30 seconds before killing the service.
func (s *service) stop() {
	if s.store != nil {
		s.store.Close()
		s.store = nil
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		s.t.Errorf("sitesync run did not stop within 30s of SIGTERM; killing it")
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if s.t.Failed() {
		s.t.Logf("sitesync run log:\n%s", s.logTail())
	}
	s.cmd = nil
}

// logTail returns the end of the service's log.
func (s *service) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	return tailBytes(b, 6000)
}

// pushPayload returns a GitHub push payload for commit on org/sites main
// and its signature.
func pushPayload(commit string) (body []byte, signature string) {
	body, _ = json.Marshal(map[string]any{
		"ref": "refs/heads/main", "after": commit, "before": strings.Repeat("0", 40),
		"repository":  map[string]any{"full_name": "org/sites"},
		"head_commit": map[string]any{"id": commit},
	})
	return body, webhook.Sign([]byte(webhookSecret), body)
}

// deliver POSTs one signed push delivery and returns its status.
func (s *service) deliver(id string, body []byte, signature string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, s.webhookURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", id)
	req.Header.Set("X-Hub-Signature-256", signature)
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// head returns the repository's head commit.
func (s *service) head() string {
	s.t.Helper()
	return testenv.CommitFiles(s.t, s.repo, nil, "bench: empty commit")
}

// loadResult is one webhook load level.
type loadResult struct {
	// Concurrency is the number of clients; N the deliveries sent.
	Concurrency, N int
	// Wall is the time from the first request to the last answer.
	Wall time.Duration
	// Latency holds one entry per delivery answered 202.
	Latency durs
	// Other counts answers that were not 202, and errors.
	Other int
}

// throughput returns accepted deliveries per second.
func (l loadResult) throughput() float64 {
	if l.Wall <= 0 {
		return 0
	}
	return float64(len(l.Latency)) / l.Wall.Seconds()
}

// load sends n signed deliveries of one push with distinct ids
// (prefix-i), from conc concurrent clients, bounded by n and by a
// 10-minute deadline.
func (s *service) load(prefix string, commit string, conc, n int) loadResult {
	body, sig := pushPayload(commit)
	res := loadResult{Concurrency: conc, N: n}
	var next atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	deadline := time.Now().Add(10 * time.Minute)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make(durs, 0, n/conc+1)
			other := 0
			for {
				i := int(next.Add(1)) - 1
				if i >= n || time.Now().After(deadline) {
					break
				}
				t0 := time.Now()
				code, err := s.deliver(fmt.Sprintf("%s-%d", prefix, i), body, sig)
				d := time.Since(t0)
				if err == nil && code == http.StatusAccepted {
					lat = append(lat, d)
				} else {
					other++
				}
			}
			mu.Lock()
			res.Latency = append(res.Latency, lat...)
			res.Other += other
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	return res
}

// covered returns the recorded passes and the delivery ids they covered.
func (s *service) covered() ([]store.Pass, map[string]bool) {
	s.t.Helper()
	passes, err := s.store.RecentPasses(context.Background(), 100000)
	if err != nil {
		s.t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, p := range passes {
		for _, d := range p.Deliveries {
			ids[d] = true
		}
	}
	return passes, ids
}

// waitCovered waits (up to limit) until a recorded pass covered every
// delivery prefix-0 .. prefix-(n-1), and the outbox is empty.
func (s *service) waitCovered(prefix string, n int, limit time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		_, ids := s.covered()
		missing := 0
		for i := range n {
			if !ids[fmt.Sprintf("%s-%d", prefix, i)] {
				missing++
			}
		}
		pending, err := s.store.OutboxPending(context.Background())
		if err != nil {
			s.t.Fatal(err)
		}
		if missing == 0 && pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d of %d deliveries %s-* not covered by a pass (outbox pending %d) after %v\n%s", missing, n, prefix, pending, limit, s.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reconcileTotal sums the sitesync_reconcile_total counter of /metrics.
func (s *service) reconcileTotal() float64 {
	s.t.Helper()
	resp, err := s.client.Get(s.metricsURL + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	total := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "sitesync_reconcile_total") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			total += v
		}
	}
	return total
}

// pushToReload commits a change to the probe site, delivers its push and
// returns the time from the delivery to nginx serving the change.
func (s *service) pushToReload(id string) (sent time.Time, d time.Duration) {
	s.t.Helper()
	s.variant++
	sha := testenv.CommitFiles(s.t, s.repo, map[string]string{"sites.yaml": s.fleet.SitesYAML(s.variant, false)}, "bench: push")
	body, sig := pushPayload(sha)
	start := time.Now()
	code, err := s.deliver(id, body, sig)
	if err != nil || code != http.StatusAccepted {
		s.t.Fatalf("push %s: %d %v", id, code, err)
	}
	waitServed(s.t, s.nginx, s.fleet.Host(testenv.ProbeSite), 301, s.fleet.RedirectTarget(s.variant), 10*time.Millisecond, time.Minute)
	return start, time.Since(start)
}

// burstResult is what a burst of deliveries cost.
type burstResult struct {
	// N is the number of deliveries, Wall how long sending them took.
	N    int
	Wall time.Duration
	// Covered is the time from the first delivery until every one was
	// covered by a recorded pass.
	Covered time.Duration
	// Passes are the recorded passes that covered burst deliveries;
	// AllPasses every pass recorded in that time; Metric the increase of
	// sitesync_reconcile_total.
	Passes, AllPasses int
	Metric            float64
}

// serviceResult is what TestReport measured on `sitesync run`.
type serviceResult struct {
	// Sites is the fleet size the webhook load and the burst ran on.
	Sites int
	// Levels holds one webhook load result per concurrency level.
	Levels []loadResult
	// Burst is the delivery burst.
	Burst burstResult
	// Push maps fleet sizes to push-to-reload times.
	Push map[int]pushResult
}

// measureWebhook measures the webhook load levels and the burst.
func measureWebhook(t *testing.T, o options, s *service) (levels []loadResult, burst burstResult) {
	head := s.head()
	// Warm-up: connections, prepared statements, the broker channel.
	if w := s.load("warmup", head, 4, 50); w.Other != 0 {
		t.Fatalf("warm-up: %d deliveries not accepted\n%s", w.Other, s.logTail())
	}
	s.waitCovered("warmup", 50, 2*time.Minute)
	for _, c := range o.concurrency {
		prefix := fmt.Sprintf("load-c%d", c)
		l := s.load(prefix, head, c, o.webhookN)
		if l.Other != 0 || len(l.Latency) != o.webhookN {
			t.Fatalf("concurrency %d: %d of %d deliveries not accepted\n%s", c, l.Other, o.webhookN, s.logTail())
		}
		t.Logf("webhook concurrency %d: %.0f/s, p50 %v, p99 %v", c, l.throughput(), l.Latency.median(), l.Latency.quantile(0.99))
		levels = append(levels, l)
		// Let the service drain the level before the next one.
		s.waitCovered(prefix, o.webhookN, 5*time.Minute)
	}

	// A burst for a new commit: how many passes does it cost?
	s.variant++
	sha := testenv.CommitFiles(t, s.repo, map[string]string{"sites.yaml": s.fleet.SitesYAML(s.variant, false)}, "bench: burst")
	before, _ := s.covered()
	seen := map[string]bool{}
	for _, p := range before {
		seen[p.ID] = true
	}
	metric := s.reconcileTotal()
	start := time.Now()
	l := s.load("burst", sha, 16, o.burst)
	if l.Other != 0 {
		t.Fatalf("burst: %d of %d deliveries not accepted", l.Other, o.burst)
	}
	burst = burstResult{N: o.burst, Wall: l.Wall}
	s.waitCovered("burst", o.burst, 5*time.Minute)
	burst.Covered = time.Since(start)
	waitServed(t, s.nginx, s.fleet.Host(testenv.ProbeSite), 301, s.fleet.RedirectTarget(s.variant), 10*time.Millisecond, time.Minute)
	after, _ := s.covered()
	for _, p := range after {
		if seen[p.ID] {
			continue
		}
		burst.AllPasses++
		for _, d := range p.Deliveries {
			if strings.HasPrefix(d, "burst-") {
				burst.Passes++
				break
			}
		}
	}
	burst.Metric = s.reconcileTotal() - metric
	if burst.Passes < 1 {
		t.Fatalf("no pass covered the burst")
	}
	return levels, burst
}

// pushResult is the push-to-reload measurement at one fleet size.
type pushResult struct {
	// Reload is the time from the delivery to nginx serving the change.
	Reload durs
	// Start is the time from the delivery to the start of the pass that
	// covered it, and Pass that pass's duration, as the service recorded
	// them.
	Start, Pass durs
}

// measurePushes times pushes from delivery to reload on one service.
func measurePushes(t *testing.T, o options, s *service) pushResult {
	var res pushResult
	for i := range o.pushes {
		id := fmt.Sprintf("push-%d", i)
		sent, d := s.pushToReload(id)
		res.Reload = append(res.Reload, d)
		// Let the pass that applied it finish recording before the next push.
		s.waitCovered("push", i+1, time.Minute)
		nginxSettle(t, s.nginx, -1)
		passes, _ := s.covered()
		for _, p := range passes {
			if slices.Contains(p.Deliveries, id) {
				res.Start = append(res.Start, p.Started.Sub(sent))
				res.Pass = append(res.Pass, p.Finished.Sub(p.Started))
				break
			}
		}
	}
	return res
}
