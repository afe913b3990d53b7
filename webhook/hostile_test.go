package webhook

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// hostileCase is one request the handler must reject, and exactly how.
type hostileCase struct {
	name   string
	config func(*Config)        // changes to testConfig, or nil
	req    func() *http.Request // the request
	code   int
	result Result
	event  string // the event the Observer must be told
}

// validPush is a push the handler would accept.
func validPush() []byte { return pushJSON(testRepo, "refs/heads/main", testCommit) }

// signed returns a signed request for body with the given content type.
func signed(contentType string, body []byte) func() *http.Request {
	return func() *http.Request { return newDelivery(testSecret, "push", contentType, body) }
}

// edited returns a signed valid push changed by edit.
func edited(edit func(*http.Request)) func() *http.Request {
	return func() *http.Request {
		r := newDelivery(testSecret, "push", "application/json", validPush())
		edit(r)
		return r
	}
}

// withSig returns a valid push whose X-Hub-Signature-256 is sig.
func withSig(sig string) func() *http.Request {
	return edited(func(r *http.Request) { r.Header.Set("X-Hub-Signature-256", sig) })
}

// hexDigest is the lowercase hex HMAC-SHA256 of the valid push.
func hexDigest() string { return Sign([]byte(testSecret), validPush())[len("sha256="):] }

// allowOnly restricts the source to 192.0.2.0/24 behind hops proxies.
func allowOnly(hops int) func(*Config) {
	return func(c *Config) {
		c.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		c.TrustedProxyHops = hops
	}
}

// hostileInputs returns the table of hostile requests. Every one of them
// must be rejected without calling Recorder.Accept.
func hostileInputs() []hostileCase {
	const (
		unauth = ""
		push   = "push"
	)
	bad := http.StatusBadRequest
	return []hostileCase{
		// Signatures.
		{"wrong secret", nil, func() *http.Request { return newDelivery("not the secret", "push", "application/json", validPush()) }, 401, ResultBadSignature, unauth},
		{"signature of another body", nil, edited(func(r *http.Request) {
			r.Header.Set("X-Hub-Signature-256", Sign([]byte(testSecret), pushJSON(testRepo, "refs/heads/other", testCommit)))
		}), 401, ResultBadSignature, unauth},
		{"missing signature", nil, edited(func(r *http.Request) { r.Header.Del("X-Hub-Signature-256") }), 401, ResultMissingSignature, unauth},
		{"SHA-1 signature only", nil, edited(func(r *http.Request) {
			r.Header.Del("X-Hub-Signature-256")
			m := hmac.New(sha1.New, []byte(testSecret))
			m.Write(validPush())
			r.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
		}), 401, ResultMissingSignature, unauth},
		{"empty signature", nil, withSig(""), 401, ResultBadSignature, unauth},
		{"sha1= prefix on the right digest", nil, withSig("sha1=" + hexDigest()), 401, ResultBadSignature, unauth},
		{"sha512= prefix", nil, withSig("sha512=" + hexDigest()), 401, ResultBadSignature, unauth},
		{"SHA256= prefix", nil, withSig("SHA256=" + hexDigest()), 401, ResultBadSignature, unauth},
		{"digest without prefix", nil, withSig(hexDigest()), 401, ResultBadSignature, unauth},
		// GitHub sends lowercase hex; uppercase is a non-canonical encoding, rejected.
		{"uppercase hex of the right digest", nil, withSig("sha256=" + strings.ToUpper(hexDigest())), 401, ResultBadSignature, unauth},
		{"truncated digest", nil, withSig("sha256=" + hexDigest()[:63]), 401, ResultBadSignature, unauth},
		{"digest with trailing garbage", nil, withSig("sha256=" + hexDigest() + "0"), 401, ResultBadSignature, unauth},
		{"non-hex digest", nil, withSig("sha256=" + strings.Repeat("zz", 32)), 401, ResultBadSignature, unauth},
		{"two signature headers", nil, edited(func(r *http.Request) { r.Header.Add("X-Hub-Signature-256", "sha256="+strings.Repeat("0", 64)) }), 401, ResultBadSignature, unauth},

		// Bodies, signed correctly.
		{"empty body", nil, signed("application/json", nil), bad, ResultBadRequest, push},
		{"malformed JSON", nil, signed("application/json", []byte(`{"ref":"refs/heads/main",`)), bad, ResultBadRequest, push},
		{"JSON null", nil, signed("application/json", []byte(`null`)), bad, ResultBadRequest, push},
		{"JSON array", nil, signed("application/json", []byte(`[{"ref":"refs/heads/main"}]`)), bad, ResultBadRequest, push},
		{"JSON with trailing data", nil, signed("application/json", append(validPush(), `{}`...)), bad, ResultBadRequest, push},
		{"ref of the wrong type", nil, signed("application/json", []byte(`{"ref":1,"repository":{"full_name":"example/sites"}}`)), bad, ResultBadRequest, push},
		{"malformed commit id", nil, signed("application/json", pushJSON(testRepo, "refs/heads/main", "HEAD; rm -rf /")), bad, ResultBadRequest, push},
		{"form with bad escapes", nil, signed("application/x-www-form-urlencoded", []byte("payload=%zz")), bad, ResultBadRequest, push},
		{"form without payload", nil, signed("application/x-www-form-urlencoded", []byte("data="+string(formBody(validPush())[len("payload="):]))), bad, ResultBadRequest, push},
		{"form with two payloads", nil, signed("application/x-www-form-urlencoded", append(append(formBody(validPush()), '&'), formBody(validPush())...)), bad, ResultBadRequest, push},
		{"form whose payload is not JSON", nil, signed("application/x-www-form-urlencoded", []byte("payload=hello")), bad, ResultBadRequest, push},
		{"JSON sent as form", nil, signed("application/x-www-form-urlencoded", validPush()), bad, ResultBadRequest, push},

		// Methods and content types.
		{"GET", nil, edited(func(r *http.Request) { r.Method = http.MethodGet }), 405, ResultMethodNotAllowed, unauth},
		{"PUT", nil, edited(func(r *http.Request) { r.Method = http.MethodPut }), 405, ResultMethodNotAllowed, unauth},
		{"unknown content type", nil, signed("text/plain", validPush()), 415, ResultBadRequest, unauth},
		{"multipart content type", nil, signed("multipart/form-data; boundary=x", validPush()), 415, ResultBadRequest, unauth},
		{"missing content type", nil, edited(func(r *http.Request) { r.Header.Del("Content-Type") }), 415, ResultBadRequest, unauth},
		{"malformed content type", nil, signed("application/json; charset", validPush()), 415, ResultBadRequest, unauth},

		// GitHub headers.
		{"missing event header", nil, edited(func(r *http.Request) { r.Header.Del("X-GitHub-Event") }), bad, ResultBadRequest, unauth},
		{"event with a space", nil, edited(func(r *http.Request) { r.Header.Set("X-GitHub-Event", "push now") }), bad, ResultBadRequest, unauth},
		{"two event headers", nil, edited(func(r *http.Request) { r.Header.Add("X-GitHub-Event", "push") }), bad, ResultBadRequest, unauth},
		{"oversized event", nil, edited(func(r *http.Request) { r.Header.Set("X-GitHub-Event", strings.Repeat("p", 65)) }), bad, ResultBadRequest, unauth},
		{"missing delivery header", nil, edited(func(r *http.Request) { r.Header.Del("X-GitHub-Delivery") }), bad, ResultBadRequest, unauth},
		{"oversized delivery id", nil, edited(func(r *http.Request) { r.Header.Set("X-GitHub-Delivery", strings.Repeat("a", 101)) }), bad, ResultBadRequest, unauth},
		{"delivery id with markup", nil, edited(func(r *http.Request) { r.Header.Set("X-GitHub-Delivery", "<script>alert(1)</script>") }), bad, ResultBadRequest, unauth},
		{"delivery id with a newline", nil, edited(func(r *http.Request) { r.Header.Set("X-GitHub-Delivery", "a\nlevel=ERROR msg=forged") }), bad, ResultBadRequest, unauth},
		{"two delivery headers", nil, edited(func(r *http.Request) { r.Header.Add("X-GitHub-Delivery", "other") }), bad, ResultBadRequest, unauth},

		// Size.
		{"body over MaxBody", func(c *Config) { c.MaxBody = 64 }, signed("application/json", validPush()), 413, ResultTooLarge, unauth},
		{"body over MaxBody without Content-Length", func(c *Config) { c.MaxBody = 64 }, func() *http.Request {
			r := newDelivery(testSecret, "push", "application/json", validPush())
			r.ContentLength = -1
			return r
		}, 413, ResultTooLarge, unauth},

		// Source addresses.
		{"source not allowed", allowOnly(0), edited(func(r *http.Request) { r.RemoteAddr = "203.0.113.5:5000" }), 403, ResultForbidden, unauth},
		{"XFF spoofing with no trusted proxy", allowOnly(0), edited(func(r *http.Request) {
			r.RemoteAddr = "203.0.113.5:5000"
			r.Header.Set("X-Forwarded-For", "192.0.2.10")
		}), 403, ResultForbidden, unauth},
		{"XFF spoofing behind one proxy", allowOnly(1), edited(func(r *http.Request) {
			r.RemoteAddr = "127.0.0.1:5000"
			r.Header.Set("X-Forwarded-For", "192.0.2.10, 203.0.113.5") // client wrote the first, the proxy appended the second
		}), 403, ResultForbidden, unauth},
		{"XFF spoofing in a separate header line", allowOnly(1), edited(func(r *http.Request) {
			r.RemoteAddr = "127.0.0.1:5000"
			r.Header.Add("X-Forwarded-For", "192.0.2.10")
			r.Header.Add("X-Forwarded-For", "203.0.113.5")
		}), 403, ResultForbidden, unauth},
		{"one trusted proxy but no XFF", allowOnly(1), edited(func(r *http.Request) { r.RemoteAddr = "192.0.2.10:5000" }), 403, ResultForbidden, unauth},
		{"two trusted proxies but one XFF entry", allowOnly(2), edited(func(r *http.Request) {
			r.RemoteAddr = "127.0.0.1:5000"
			r.Header.Set("X-Forwarded-For", "192.0.2.10")
		}), 403, ResultForbidden, unauth},
		{"garbage XFF entry", allowOnly(1), edited(func(r *http.Request) {
			r.RemoteAddr = "127.0.0.1:5000"
			r.Header.Set("X-Forwarded-For", "192.0.2.10, unknown")
		}), 403, ResultForbidden, unauth},
		{"unix socket peer", allowOnly(0), edited(func(r *http.Request) { r.RemoteAddr = "@" }), 403, ResultForbidden, unauth},
		{"forbidden source checked before the method", allowOnly(0), edited(func(r *http.Request) {
			r.RemoteAddr = "203.0.113.5:5000"
			r.Method = http.MethodGet
		}), 403, ResultForbidden, unauth},
	}
}

func TestHostileRequests(t *testing.T) {
	for _, tc := range hostileInputs() {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			if tc.config != nil {
				tc.config(&cfg)
			}
			fx := newFixture(t, cfg)
			req := tc.req()
			res := fx.serve(t, req)
			fx.wantOutcome(t, res, tc.code, tc.result, tc.event)
			if n := len(fx.rec.deliveries()); n != 0 {
				t.Errorf("Accept called %d times", n)
			}
			if n := len(fx.obs.all()); n != 1 {
				t.Errorf("observer called %d times, want 1", n)
			}
			if res.body.Error == "" {
				t.Errorf("no error text in %s", res.raw)
			}
			if tc.code == http.StatusMethodNotAllowed && res.hdr.Get("Allow") != "POST" {
				t.Errorf("Allow = %q, want POST", res.hdr.Get("Allow"))
			}
			// Nothing of the request comes back, and nothing secret is logged.
			for _, h := range []string{"X-GitHub-Delivery", "X-GitHub-Event", "X-Hub-Signature-256", "X-Forwarded-For"} {
				if v := req.Header.Get(h); len(v) > 4 && strings.Contains(res.raw, v) {
					t.Errorf("response echoes %s %q: %s", h, v, res.raw)
				}
			}
			logs := fx.log.String()
			if sig := req.Header.Get("X-Hub-Signature-256"); len(sig) > 8 && strings.Contains(logs, sig) {
				t.Errorf("signature header logged:\n%s", logs)
			}
			if strings.Contains(logs, testSecret) || strings.Contains(logs, "level=ERROR") {
				t.Errorf("unexpected log:\n%s", logs)
			}
		})
	}
}

// startServer serves h with timeouts t on a free port of 127.0.0.1 and
// returns its address.
func startServer(t *testing.T, h http.Handler, timeouts serverTimeouts) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(ln.Addr().String(), h, timeouts)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// chanObserver sends every observation on a channel.
type chanObserver chan observation

// observe is the Observer.
func (c chanObserver) observe(event string, result Result) { c <- observation{event, result} }

func TestSlowBodyIsCut(t *testing.T) {
	rec := &fakeRecorder{}
	obs := make(chanObserver, 4)
	h, err := NewHandler(testConfig(), rec, obs.observe, nil)
	if err != nil {
		t.Fatal(err)
	}
	const readTimeout = 300 * time.Millisecond
	addr := startServer(t, h, serverTimeouts{readHeader: time.Second, read: readTimeout, write: 5 * time.Second, idle: 5 * time.Second})

	body := validPush()
	start := time.Now() // the server's read deadline starts after this
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /github-webhook HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"X-GitHub-Event: push\r\nX-GitHub-Delivery: %s\r\nX-Hub-Signature-256: %s\r\nContent-Length: %d\r\n\r\n",
		addr, testID, Sign([]byte(testSecret), body), len(body))

	// Trickle the body one byte every 50 ms: it would take seconds, far
	// longer than the read timeout. The signature is right, so only the
	// timeout stands between this request and Accept.
	trickled := make(chan error, 1)
	go func() {
		for i := range body {
			if _, err := conn.Write(body[i : i+1]); err != nil {
				trickled <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		trickled <- nil
	}()

	select {
	case o := <-obs:
		if o != (observation{"", ResultTimeout}) {
			t.Errorf("observer got %+v, want a timeout", o)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never gave up on the slow body")
	}
	if d := time.Since(start); d < readTimeout-20*time.Millisecond || d > readTimeout+2*time.Second {
		t.Errorf("cut after %v, want about %v", d, readTimeout)
	}

	// The server answers 408 if it still can, and closes the connection.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(br, nil); err != nil {
		t.Logf("no response (%v)", err)
	} else {
		t.Logf("response: %s", resp.Status)
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("status = %d, want 408", resp.StatusCode)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if _, err := br.ReadByte(); err == nil {
		t.Errorf("connection still open after the timeout")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("connection not closed by the server: %v", err)
	}
	select {
	case err := <-trickled:
		t.Logf("trickle stopped after %v: %v", time.Since(start), err)
		if err == nil {
			t.Errorf("the whole body was written to a connection that should be cut")
		}
	case <-time.After(10 * time.Second):
		t.Errorf("writes to the cut connection kept succeeding")
	}
	if n := len(rec.deliveries()); n != 0 {
		t.Errorf("Accept called %d times for a body that never arrived in time", n)
	}
}

func TestSlowHeadersAreCut(t *testing.T) {
	rec := &fakeRecorder{}
	obs := make(chanObserver, 4)
	h, err := NewHandler(testConfig(), rec, obs.observe, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := startServer(t, h, serverTimeouts{readHeader: 200 * time.Millisecond, read: time.Second, write: time.Second, idle: time.Second})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST /github-webhook HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection with unfinished headers still open after 5 s")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut after %v, want about 200ms", d)
	}
	if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
		t.Errorf("unexpected answer %q", b)
	}
	select {
	case o := <-obs:
		t.Errorf("handler ran for incomplete headers: %+v", o)
	default:
	}
	if n := len(rec.deliveries()); n != 0 {
		t.Errorf("Accept called %d times", n)
	}
}

func TestRealServerAccepts(t *testing.T) {
	rec := &fakeRecorder{}
	h, err := NewHandler(testConfig(), rec, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/github-webhook", h)
	addr := startServer(t, mux, defaultTimeouts())
	body := validPush()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/github-webhook", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", testID)
	req.Header.Set("X-Hub-Signature-256", Sign([]byte(testSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted || string(got) != `{"status":"accepted","delivery":"`+testID+"\"}\n" {
		t.Errorf("got %d %q", resp.StatusCode, got)
	}
	if n := len(rec.deliveries()); n != 1 {
		t.Errorf("Accept called %d times, want 1", n)
	}
}
