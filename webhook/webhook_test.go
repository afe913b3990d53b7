package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testSecret = "s3cret-for-tests"
	testRepo   = "example/sites"
	testCommit = "0123456789abcdef0123456789abcdef01234567"
	testID     = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
)

// testNow is the fixed clock of the test handlers.
func testNow() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// fakeRecorder records the deliveries it is given. It reports an ID it has
// seen as a duplicate, like a real recorder, and fails with err when set.
type fakeRecorder struct {
	mu    sync.Mutex
	calls []Delivery
	seen  map[string]bool
	err   error
}

// Accept implements Recorder.
func (f *fakeRecorder) Accept(ctx context.Context, d Delivery) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, d)
	if f.err != nil {
		return false, f.err
	}
	if f.seen == nil {
		f.seen = map[string]bool{}
	}
	dup := f.seen[d.ID]
	f.seen[d.ID] = true
	return dup, nil
}

// deliveries returns a copy of the deliveries Accept was called with.
func (f *fakeRecorder) deliveries() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.calls...)
}

// observation is one call of the Observer.
type observation struct {
	event  string
	result Result
}

// observer collects Observer calls.
type observer struct {
	mu  sync.Mutex
	got []observation
}

// observe is the Observer.
func (o *observer) observe(event string, result Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.got = append(o.got, observation{event, result})
}

// all returns the observations so far.
func (o *observer) all() []observation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]observation(nil), o.got...)
}

// testConfig is the configuration of most tests.
func testConfig() Config {
	return Config{Secret: []byte(testSecret), Repository: testRepo, Branch: "main", Now: testNow}
}

// fixture is a handler with its fake recorder and observer.
type fixture struct {
	h   *handler
	rec *fakeRecorder
	obs *observer
	log *bytes.Buffer
}

// newFixture builds a handler for cfg; it fails the test on a config error.
func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	fx := &fixture{rec: &fakeRecorder{}, obs: &observer{}, log: &bytes.Buffer{}}
	log := slog.New(slog.NewTextHandler(&lockedWriter{w: fx.log}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := NewHandler(cfg, fx.rec, fx.obs.observe, log)
	if err != nil {
		t.Fatalf("NewHandler: %v", err)
	}
	fx.h = h.(*handler)
	return fx
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// result is a served request's response.
type result struct {
	code int
	hdr  http.Header
	body response
	raw  string
}

// serve runs req through the fixture's handler.
func (fx *fixture) serve(t testing.TB, req *http.Request) result {
	t.Helper()
	rr := httptest.NewRecorder()
	fx.h.ServeHTTP(rr, req)
	res := result{code: rr.Code, hdr: rr.Header(), raw: rr.Body.String()}
	if ct := rr.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	dec := json.NewDecoder(strings.NewReader(res.raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&res.body); err != nil {
		t.Fatalf("response %q is not the JSON status object: %v", res.raw, err)
	}
	return res
}

// pushJSON returns a push payload.
func pushJSON(repo, ref, after string) []byte {
	b, err := json.Marshal(map[string]any{
		"ref":         ref,
		"before":      "0000000000000000000000000000000000000000",
		"after":       after,
		"deleted":     false,
		"repository":  map[string]any{"full_name": repo, "name": "sites", "private": true},
		"head_commit": map[string]any{"id": after, "message": "update sites"},
		"pusher":      map[string]any{"name": "octocat"},
	})
	if err != nil {
		panic(err)
	}
	return b
}

// formBody form-encodes payload as GitHub does.
func formBody(payload []byte) []byte {
	return []byte(url.Values{"payload": {string(payload)}}.Encode())
}

// newDelivery returns a signed request carrying body.
func newDelivery(secret string, event, contentType string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/github-webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", testID)
	req.Header.Set("User-Agent", "GitHub-Hookshot/test")
	if secret != "" {
		req.Header.Set("X-Hub-Signature-256", Sign([]byte(secret), body))
	}
	return req
}

// wantOutcome checks the status, result and Observer call of res.
func (fx *fixture) wantOutcome(t *testing.T, res result, code int, want Result, event string) {
	t.Helper()
	if res.code != code {
		t.Errorf("status = %d, want %d (body %s)", res.code, code, res.raw)
	}
	status := string(want)
	if want == ResultPing {
		status = "pong"
	}
	if res.body.Status != status {
		t.Errorf("body status = %q, want %q", res.body.Status, status)
	}
	obs := fx.obs.all()
	if len(obs) == 0 {
		t.Fatalf("observer not called")
	}
	if last := obs[len(obs)-1]; last != (observation{event, want}) {
		t.Errorf("observer got %+v, want %+v", last, observation{event, want})
	}
}

func TestVerifyGitHubTestVector(t *testing.T) {
	// https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries#testing-the-webhook-payload-validation
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := Sign(secret, body); got != sig {
		t.Errorf("Sign = %q, want %q", got, sig)
	}
	if !Verify(secret, body, sig) {
		t.Errorf("Verify rejected GitHub's test vector")
	}
	for name, bad := range map[string]string{
		"last digit changed": sig[:len(sig)-1] + "8",
		"uppercase hex":      "sha256=" + strings.ToUpper(sig[len("sha256="):]),
		"uppercase prefix":   "SHA256=" + sig[len("sha256="):],
		"sha1 prefix":        "sha1=" + sig[len("sha256="):],
		"no prefix":          sig[len("sha256="):],
		"truncated":          sig[:len(sig)-2],
		"extra digits":       sig + "00",
		"trailing space":     sig + " ",
		"empty":              "",
	} {
		if Verify(secret, body, bad) {
			t.Errorf("Verify accepted %s: %q", name, bad)
		}
	}
	if Verify([]byte("It's a Secret to Everybody!"), body, sig) {
		t.Errorf("Verify accepted the signature under another secret")
	}
	if Verify(secret, []byte("Hello, World?"), sig) {
		t.Errorf("Verify accepted the signature for another body")
	}
}

func TestGitHubTestVectorThroughHandler(t *testing.T) {
	cfg := testConfig()
	cfg.Secret = []byte("It's a Secret to Everybody")
	const sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	request := func(event string) *http.Request {
		req := newDelivery("", event, "application/json", []byte("Hello, World!"))
		req.Header.Set("X-Hub-Signature-256", sig)
		return req
	}
	fx := newFixture(t, cfg)
	// The signature verifies: a ping is answered, and a push gets as far
	// as decoding the (non-JSON) payload.
	fx.wantOutcome(t, fx.serve(t, request("ping")), http.StatusOK, ResultPing, "ping")
	fx.wantOutcome(t, fx.serve(t, request("push")), http.StatusBadRequest, ResultBadRequest, "push")

	cfg.Secret = []byte("another secret")
	fx2 := newFixture(t, cfg)
	fx2.wantOutcome(t, fx2.serve(t, request("ping")), http.StatusUnauthorized, ResultBadSignature, "")
	if n := len(fx.rec.deliveries()) + len(fx2.rec.deliveries()); n != 0 {
		t.Errorf("Accept called %d times", n)
	}
}

func TestPushAccepted(t *testing.T) {
	payload := pushJSON("Example/Sites", "refs/heads/main", testCommit)
	for _, tc := range []struct {
		name, contentType string
		body              []byte
	}{
		{"json", "application/json", payload},
		{"json with charset", "application/json; charset=utf-8", payload},
		{"form", "application/x-www-form-urlencoded", formBody(payload)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, testConfig())
			res := fx.serve(t, newDelivery(testSecret, "push", tc.contentType, tc.body))
			fx.wantOutcome(t, res, http.StatusAccepted, ResultAccepted, "push")
			if res.body.Delivery != testID {
				t.Errorf("body delivery = %q, want %q", res.body.Delivery, testID)
			}
			want := Delivery{ID: testID, Event: "push", Repository: "Example/Sites", Ref: "refs/heads/main", HeadCommit: testCommit, ReceivedAt: testNow()}
			if got := fx.rec.deliveries(); len(got) != 1 || got[0] != want {
				t.Errorf("Accept got %+v, want [%+v]", got, want)
			}
			if !strings.Contains(fx.log.String(), "level=INFO msg=\"webhook delivery accepted\"") {
				t.Errorf("accepted delivery not logged at info:\n%s", fx.log)
			}
		})
	}
}

func TestPushCommitFromHeadCommit(t *testing.T) {
	fx := newFixture(t, testConfig())
	body := []byte(`{"ref":"refs/heads/main","repository":{"full_name":"example/sites"},"head_commit":{"id":"` + testCommit + `"}}`)
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "push", "application/json", body)), http.StatusAccepted, ResultAccepted, "push")
	if got := fx.rec.deliveries(); len(got) != 1 || got[0].HeadCommit != testCommit {
		t.Errorf("Accept got %+v, want HeadCommit %s", got, testCommit)
	}
}

func TestPing(t *testing.T) {
	fx := newFixture(t, testConfig())
	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1,"hook":{"type":"Repository"},"repository":{"full_name":"example/sites"}}`)
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "ping", "application/json", body)), http.StatusOK, ResultPing, "ping")
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "ping", "application/x-www-form-urlencoded", formBody(body))), http.StatusOK, ResultPing, "ping")
	if n := len(fx.rec.deliveries()); n != 0 {
		t.Errorf("Accept called %d times for a ping", n)
	}
}

func TestIgnored(t *testing.T) {
	for _, tc := range []struct {
		name, event string
		body        []byte
	}{
		{"tag push", "push", pushJSON(testRepo, "refs/tags/main", testCommit)},
		{"other branch", "push", pushJSON(testRepo, "refs/heads/develop", testCommit)},
		{"branch with the watched name as prefix", "push", pushJSON(testRepo, "refs/heads/main-old", testCommit)},
		{"branch ending with the watched name", "push", pushJSON(testRepo, "refs/heads/feature/main", testCommit)},
		{"short ref", "push", pushJSON(testRepo, "main", testCommit)},
		{"other repository", "push", pushJSON("example/other", "refs/heads/main", testCommit)},
		{"repository of the same name under another owner", "push", pushJSON("evil/sites", "refs/heads/main", testCommit)},
		{"repository name only", "push", pushJSON("sites", "refs/heads/main", testCommit)},
		{"no repository", "push", []byte(`{"ref":"refs/heads/main","after":"` + testCommit + `"}`)},
		{"other event", "issues", []byte(`{"action":"opened"}`)},
		{"pull request to the branch", "pull_request", pushJSON(testRepo, "refs/heads/main", testCommit)},
		{"Push in another case", "Push", pushJSON(testRepo, "refs/heads/main", testCommit)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, testConfig())
			fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, tc.event, "application/json", tc.body)), http.StatusOK, ResultIgnored, tc.event)
			if n := len(fx.rec.deliveries()); n != 0 {
				t.Errorf("Accept called %d times", n)
			}
		})
	}
}

func TestAnyRepository(t *testing.T) {
	cfg := testConfig()
	cfg.Repository = ""
	fx := newFixture(t, cfg)
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "push", "application/json", pushJSON("someone/else", "refs/heads/main", testCommit))), http.StatusAccepted, ResultAccepted, "push")
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "push", "application/json", pushJSON("not a repo", "refs/heads/main", testCommit))), http.StatusOK, ResultIgnored, "push")
	if got := fx.rec.deliveries(); len(got) != 1 || got[0].Repository != "someone/else" {
		t.Errorf("Accept got %+v", got)
	}
}

func TestBranchDeletionAccepted(t *testing.T) {
	fx := newFixture(t, testConfig())
	const zero = "0000000000000000000000000000000000000000"
	body := []byte(`{"ref":"refs/heads/main","before":"` + testCommit + `","after":"` + zero + `","deleted":true,"repository":{"full_name":"example/sites"},"head_commit":null}`)
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "push", "application/json", body)), http.StatusAccepted, ResultAccepted, "push")
	if got := fx.rec.deliveries(); len(got) != 1 || got[0].HeadCommit != zero {
		t.Errorf("Accept got %+v, want one delivery with the zero commit", got)
	}
	if !strings.Contains(fx.log.String(), "branch deleted") {
		t.Errorf("deletion not noted in the log:\n%s", fx.log)
	}
}

func TestDuplicate(t *testing.T) {
	fx := newFixture(t, testConfig())
	body := pushJSON(testRepo, "refs/heads/main", testCommit)
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "push", "application/json", body)), http.StatusAccepted, ResultAccepted, "push")
	res := fx.serve(t, newDelivery(testSecret, "push", "application/json", body))
	fx.wantOutcome(t, res, http.StatusOK, ResultDuplicate, "push")
	if res.raw != "{\"status\":\"duplicate\"}\n" {
		t.Errorf("duplicate body = %q", res.raw)
	}
}

func TestRecorderError(t *testing.T) {
	fx := newFixture(t, testConfig())
	fx.rec.err = errors.New("queue is full")
	req := newDelivery(testSecret, "push", "application/json", pushJSON(testRepo, "refs/heads/main", testCommit))
	sig := req.Header.Get("X-Hub-Signature-256")
	res := fx.serve(t, req)
	fx.wantOutcome(t, res, http.StatusServiceUnavailable, ResultUnavailable, "push")
	if n := len(fx.rec.deliveries()); n != 1 {
		t.Errorf("Accept called %d times, want 1", n)
	}
	logs := fx.log.String()
	if n := strings.Count(logs, "level=WARN"); n != 1 || !strings.Contains(logs, "queue is full") {
		t.Errorf("want the recorder error logged once at warn, got:\n%s", logs)
	}
	for _, secret := range []string{testSecret, sig, sig[len("sha256="):]} {
		if strings.Contains(logs, secret) || strings.Contains(res.raw, secret) {
			t.Errorf("secret material %q in the log or response", secret)
		}
	}
}

// blockingRecorder blocks until its context is done.
type blockingRecorder struct{}

// Accept implements Recorder.
func (blockingRecorder) Accept(ctx context.Context, d Delivery) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

func TestRecorderDeadline(t *testing.T) {
	h, err := NewHandler(testConfig(), blockingRecorder{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.(*handler).acceptTimeout = 50 * time.Millisecond
	start := time.Now()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, newDelivery(testSecret, "push", "application/json", pushJSON(testRepo, "refs/heads/main", testCommit)))
	if rr.Code != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503", rr.Code)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("handler took %v with a stuck recorder", d)
	}
}

func TestTooLarge(t *testing.T) {
	// A valid push padded with spaces to exactly n bytes.
	padded := func(n int) []byte {
		b := pushJSON(testRepo, "refs/heads/main", testCommit)
		return append(b, bytes.Repeat([]byte(" "), n-len(b))...)
	}
	atLimit := padded(int(DefaultMaxBody))
	overLimit := padded(int(DefaultMaxBody) + 1)
	for _, tc := range []struct {
		name    string
		body    []byte
		chunked bool
		code    int
		want    Result
	}{
		{"25 MiB + 1 byte", overLimit, false, http.StatusRequestEntityTooLarge, ResultTooLarge},
		{"25 MiB + 1 byte without Content-Length", overLimit, true, http.StatusRequestEntityTooLarge, ResultTooLarge},
		{"exactly 25 MiB", atLimit, false, http.StatusAccepted, ResultAccepted},
		{"exactly 25 MiB without Content-Length", atLimit, true, http.StatusAccepted, ResultAccepted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, testConfig())
			req := newDelivery(testSecret, "push", "application/json", tc.body)
			if tc.chunked {
				req.ContentLength = -1
			}
			event := "push"
			if tc.want == ResultTooLarge {
				event = ""
			}
			fx.wantOutcome(t, fx.serve(t, req), tc.code, tc.want, event)
			wantCalls := 0
			if tc.want == ResultAccepted {
				wantCalls = 1
			}
			if n := len(fx.rec.deliveries()); n != wantCalls {
				t.Errorf("Accept called %d times, want %d", n, wantCalls)
			}
		})
	}
}

func TestInsecure(t *testing.T) {
	body := pushJSON(testRepo, "refs/heads/main", testCommit)

	cfg := testConfig()
	cfg.Secret, cfg.Insecure = nil, true
	fx := newFixture(t, cfg)
	fx.wantOutcome(t, fx.serve(t, newDelivery("", "push", "application/json", body)), http.StatusAccepted, ResultAccepted, "push")
	// Without a secret, a signature cannot be checked and is not looked at.
	req := newDelivery("", "push", "application/json", body)
	req.Header.Set("X-GitHub-Delivery", "second")
	req.Header.Set("X-Hub-Signature-256", "sha256=whatever")
	fx.wantOutcome(t, fx.serve(t, req), http.StatusAccepted, ResultAccepted, "push")

	// With a secret, unsigned deliveries pass but signed ones are checked.
	cfg.Secret = []byte(testSecret)
	fx = newFixture(t, cfg)
	fx.wantOutcome(t, fx.serve(t, newDelivery("", "push", "application/json", body)), http.StatusAccepted, ResultAccepted, "push")
	fx.wantOutcome(t, fx.serve(t, newDelivery("wrong", "push", "application/json", body)), http.StatusUnauthorized, ResultBadSignature, "")
}

func TestDeliveryIDLimits(t *testing.T) {
	fx := newFixture(t, testConfig())
	req := newDelivery(testSecret, "push", "application/json", pushJSON(testRepo, "refs/heads/main", testCommit))
	id := strings.Repeat("aB3-", 25)
	req.Header.Set("X-GitHub-Delivery", id)
	fx.wantOutcome(t, fx.serve(t, req), http.StatusAccepted, ResultAccepted, "push")
	if got := fx.rec.deliveries(); len(got) != 1 || got[0].ID != id {
		t.Errorf("Accept got %+v, want ID %q", got, id)
	}
}

func TestProxiedSourceAllowed(t *testing.T) {
	allowed := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tc := range []struct {
		name   string
		hops   int
		remote string
		xff    []string
	}{
		{"direct", 0, "192.0.2.7:4000", nil},
		{"direct IPv6", 0, "[2001:db8::1]:4000", nil},
		{"direct IPv4-mapped", 0, "[::ffff:192.0.2.7]:4000", nil},
		{"one proxy", 1, "127.0.0.1:4000", []string{"192.0.2.7"}},
		{"one proxy, client-written entries ignored", 1, "127.0.0.1:4000", []string{"203.0.113.9, 10.1.1.1, 192.0.2.7"}},
		{"two proxies", 2, "127.0.0.1:4000", []string{"198.51.100.1, 192.0.2.7, 10.0.0.2"}},
		{"two proxies, two header lines", 2, "127.0.0.1:4000", []string{"192.0.2.7", "10.0.0.2"}},
		{"entry with port", 1, "127.0.0.1:4000", []string{"[2001:db8::5]:443"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.AllowedCIDRs, cfg.TrustedProxyHops = allowed, tc.hops
			fx := newFixture(t, cfg)
			req := newDelivery(testSecret, "push", "application/json", pushJSON(testRepo, "refs/heads/main", testCommit))
			req.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			fx.wantOutcome(t, fx.serve(t, req), http.StatusAccepted, ResultAccepted, "push")
		})
	}
}

func TestClientAddr(t *testing.T) {
	for _, tc := range []struct {
		hops    int
		remote  string
		xff     []string
		want    string // "" = error
		comment string
	}{
		{0, "192.0.2.1:1", []string{"198.51.100.1"}, "192.0.2.1", "hops 0 ignores XFF"},
		{0, "[fe80::1%eth0]:1", nil, "fe80::1", "zone dropped"},
		{0, "@", nil, "", "unix socket"},
		{0, "192.0.2.1", nil, "", "no port"},
		{1, "10.0.0.1:1", nil, "", "no XFF"},
		{1, "10.0.0.1:1", []string{""}, "", "empty XFF"},
		{1, "10.0.0.1:1", []string{"a, b, 192.0.2.9"}, "192.0.2.9", "rightmost"},
		{1, "10.0.0.1:1", []string{"192.0.2.9 , "}, "", "empty rightmost entry"},
		{2, "10.0.0.1:1", []string{"192.0.2.9"}, "", "too few entries"},
		{2, "10.0.0.1:1", []string{"x", "192.0.2.9, 10.0.0.2"}, "192.0.2.9", "second from the right"},
		{3, "10.0.0.1:1", []string{"192.0.2.9", "10.0.0.3", "10.0.0.2"}, "192.0.2.9", "third, over lines"},
		{1, "10.0.0.1:1", []string{"192.0.2.9, not-an-ip"}, "", "garbage at the trusted position"},
		{1, "10.0.0.1:1", []string{"::ffff:192.0.2.9"}, "192.0.2.9", "mapped"},
	} {
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.RemoteAddr = tc.remote
		for _, v := range tc.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		got, err := clientAddr(req, tc.hops)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: got %v, want an error", tc.comment, got)
		case tc.want != "" && (err != nil || got != netip.MustParseAddr(tc.want)):
			t.Errorf("%s: got %v, %v, want %s", tc.comment, got, err, tc.want)
		}
	}
}

func TestNewHandlerErrors(t *testing.T) {
	rec := &fakeRecorder{}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		rec  Recorder
		want string
	}{
		{"no secret", func(c *Config) { c.Secret = nil }, rec,
			"refusing to start without a webhook secret; set [webhook] secret_file or, for development only, insecure_no_secret = true"},
		{"empty secret", func(c *Config) { c.Secret = []byte{} }, rec, "refusing to start without a webhook secret"},
		{"nil recorder", func(c *Config) {}, nil, "webhook recorder is nil"},
		{"no branch", func(c *Config) { c.Branch = "" }, rec, "webhook branch is required"},
		{"branch as ref", func(c *Config) { c.Branch = "refs/heads/main" }, rec, "must be a branch name such as main, not a ref"},
		{"branch with space", func(c *Config) { c.Branch = "ma in" }, rec, "is not a valid branch name"},
		{"repository without owner", func(c *Config) { c.Repository = "sites" }, rec, `webhook repository "sites" is not of the form owner/name`},
		{"repository with two slashes", func(c *Config) { c.Repository = "a/b/c" }, rec, "is not of the form owner/name"},
		{"negative max body", func(c *Config) { c.MaxBody = -1 }, rec, "webhook max body -1 is negative"},
		{"negative hops", func(c *Config) { c.TrustedProxyHops = -1 }, rec, "webhook trusted proxy hops -1 is negative"},
		{"zero prefix", func(c *Config) { c.AllowedCIDRs = []netip.Prefix{{}} }, rec, "webhook allowed CIDR #1 is not a valid prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			tc.edit(&cfg)
			h, err := NewHandler(cfg, tc.rec, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewHandler = %v, %v; want error containing %q", h, err, tc.want)
			}
		})
	}
	cfg := testConfig()
	cfg.Secret, cfg.Insecure = nil, true
	if _, err := NewHandler(cfg, rec, nil, nil); err != nil {
		t.Errorf("insecure without secret: %v", err)
	}
	// Several mistakes are reported at once.
	cfg = testConfig()
	cfg.Branch, cfg.MaxBody = "", -5
	_, err := NewHandler(cfg, rec, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "branch is required") || !strings.Contains(err.Error(), "max body -5") {
		t.Errorf("want both errors, got %v", err)
	}
}

func TestNewHandlerCopiesSecret(t *testing.T) {
	cfg := testConfig()
	cfg.Secret = []byte(testSecret)
	fx := newFixture(t, cfg)
	clear(cfg.Secret)
	fx.wantOutcome(t, fx.serve(t, newDelivery(testSecret, "push", "application/json", pushJSON(testRepo, "refs/heads/main", testCommit))), http.StatusAccepted, ResultAccepted, "push")
}

func TestReadSecret(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-independent
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string // secret, or error substring prefixed with "error: "
	}{
		{"plain", "hunter2-very-secret", 0o600, "hunter2-very-secret"},
		{"trailing newline", "hunter2-very-secret\n", 0o600, "hunter2-very-secret"},
		{"only one newline trimmed", "hunter2-very-secret\n\n", 0o400, "hunter2-very-secret\n"},
		{"crlf", "hunter2-very-secret\r\n", 0o600, "hunter2-very-secret"},
		{"spaces kept", " hunter2-very-secret ", 0o600, " hunter2-very-secret "},
		{"group readable", "hunter2-very-secret\n", 0o640, "error: has mode 0640"},
		{"other readable", "hunter2-very-secret\n", 0o604, "error: has mode 0604"},
		{"group writable", "hunter2-very-secret\n", 0o620, "error: has mode 0620"},
		{"empty", "", 0o600, "error: is empty"},
		{"only a newline", "\n", 0o600, "error: is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "-"), tc.content, tc.mode)
			got, err := ReadSecret(p)
			if msg, isErr := strings.CutPrefix(tc.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), p) {
					t.Fatalf("ReadSecret = %q, %v; want an error naming the file and containing %q", got, err, msg)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error reveals the secret: %v", err)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Errorf("ReadSecret = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := ReadSecret(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := ReadSecret(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory: %v", err)
	}
	big := write("big", strings.Repeat("x", maxSecretFile+1), 0o600)
	if _, err := ReadSecret(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestNewServerTimeouts(t *testing.T) {
	h := http.NotFoundHandler()
	s := NewServer("127.0.0.1:0", h)
	if s.Addr != "127.0.0.1:0" || s.ReadHeaderTimeout != 5*time.Second || s.ReadTimeout != 15*time.Second ||
		s.WriteTimeout != 15*time.Second || s.IdleTimeout != 60*time.Second || s.MaxHeaderBytes != 64<<10 {
		t.Errorf("NewServer = %+v", s)
	}
}

func TestConcurrentDeliveries(t *testing.T) {
	fx := newFixture(t, testConfig())
	body := pushJSON(testRepo, "refs/heads/main", testCommit)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			req := newDelivery(testSecret, "push", "application/json", body)
			req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("id-%d", i%10))
			rr := httptest.NewRecorder()
			fx.h.ServeHTTP(rr, req)
			if rr.Code != http.StatusAccepted && rr.Code != http.StatusOK {
				t.Errorf("status %d", rr.Code)
			}
		})
	}
	wg.Wait()
	accepted := 0
	for _, o := range fx.obs.all() {
		if o.result == ResultAccepted {
			accepted++
		}
	}
	if accepted != 10 || len(fx.obs.all()) != 50 || len(fx.rec.deliveries()) != 50 {
		t.Errorf("accepted %d (want 10), observed %d, recorded %d (want 50)", accepted, len(fx.obs.all()), len(fx.rec.deliveries()))
	}
}

// nopRecorder accepts everything.
type nopRecorder struct{}

// Accept implements Recorder.
func (nopRecorder) Accept(context.Context, Delivery) (bool, error) { return false, nil }

// benchPayload returns a push payload of about size bytes.
func benchPayload(size int) []byte {
	base := pushJSON(testRepo, "refs/heads/main", testCommit)
	var commits []map[string]any
	for len(base) < size {
		commits = append(commits, map[string]any{
			"id": testCommit, "message": "Update sites.yaml: add site " + fmt.Sprint(len(commits)),
			"author":   map[string]string{"name": "Octo Cat", "email": "octocat@example.org", "username": "octocat"},
			"modified": []string{"sites.yaml", "raw/legacy.conf"},
		})
		b, err := json.Marshal(map[string]any{
			"ref": "refs/heads/main", "after": testCommit, "deleted": false,
			"repository":  map[string]any{"full_name": testRepo, "name": "sites"},
			"head_commit": map[string]any{"id": testCommit}, "commits": commits,
		})
		if err != nil {
			panic(err)
		}
		base = b
	}
	return base
}

// benchWriter is a reusable http.ResponseWriter that discards the body.
type benchWriter struct {
	hdr  http.Header
	code int
}

// Header implements http.ResponseWriter.
func (w *benchWriter) Header() http.Header { return w.hdr }

// WriteHeader implements http.ResponseWriter.
func (w *benchWriter) WriteHeader(code int) { w.code = code }

// Write implements http.ResponseWriter.
func (w *benchWriter) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkHandler(b *testing.B) {
	body := benchPayload(8 << 10)
	sig := Sign([]byte(testSecret), body)
	h, err := NewHandler(testConfig(), nopRecorder{}, func(string, Result) {}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{hdr: http.Header{}}
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/github-webhook", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-GitHub-Event", "push")
			req.Header.Set("X-GitHub-Delivery", testID)
			req.Header.Set("X-Hub-Signature-256", sig)
			clear(w.hdr)
			h.ServeHTTP(w, req)
			if w.code != http.StatusAccepted {
				b.Errorf("status %d", w.code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
}

func TestResults(t *testing.T) {
	var got []string
	for i, r := range Results {
		if i != len(got) {
			t.Errorf("index %d, want %d", i, len(got))
		}
		got = append(got, string(r))
	}
	want := "accepted duplicate ignored ping bad_signature missing_signature too_large bad_request forbidden method_not_allowed unavailable timeout"
	if strings.Join(got, " ") != want {
		t.Errorf("Results = %v, want %s", got, want)
	}
	n := 0
	for range Results {
		n++
		break // stopping early must not panic
	}
	if n != 1 {
		t.Errorf("loop ran %d times after break", n)
	}
}
