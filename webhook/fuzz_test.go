package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fuzzRecorder checks every delivery it is given against the fuzz
// configuration and fails when told to.
type fuzzRecorder struct {
	t    *testing.T
	fail bool

	mu    sync.Mutex
	calls []Delivery
}

// Accept implements Recorder.
func (f *fuzzRecorder) Accept(ctx context.Context, d Delivery) (bool, error) {
	f.mu.Lock()
	f.calls = append(f.calls, d)
	f.mu.Unlock()
	if !strings.EqualFold(d.Repository, testRepo) || d.Ref != "refs/heads/main" {
		f.t.Errorf("Accept called for repository %q ref %q", d.Repository, d.Ref)
	}
	if d.Event != "push" || !validDeliveryID(d.ID) || (d.HeadCommit != "" && !validCommit(d.HeadCommit)) {
		f.t.Errorf("Accept called with %+v", d)
	}
	if f.fail {
		return false, errors.New("recorder failure")
	}
	return false, nil
}

// FuzzHandler sends arbitrary bodies, content types, events and
// signatures. mode bit 0 clear: the signature is replaced by the correct
// one (half of the inputs); bit 1 set: the Recorder fails.
func FuzzHandler(f *testing.F) {
	push := validPush()
	f.Add(push, "application/json", "", "push", byte(0))
	f.Add(push, "application/json", "", "push", byte(2))
	f.Add(push, "application/json", "sha256=00", "push", byte(1))
	f.Add(formBody(push), "application/x-www-form-urlencoded", "", "push", byte(0))
	f.Add([]byte("payload=%zz"), "application/x-www-form-urlencoded", "", "push", byte(0))
	f.Add([]byte(`{"zen":"hi"}`), "application/json", "", "ping", byte(0))
	f.Add(pushJSON("EXAMPLE/SITES", "refs/heads/main", strings.Repeat("0", 40)), "application/json; charset=utf-8", "", "push", byte(0))
	f.Add(pushJSON(testRepo, "refs/tags/v1", testCommit), "application/json", "", "push", byte(0))
	f.Add([]byte(`{"ref":"refs/heads/main","repository":{"full_name":"example/sites"},"head_commit":{"id":"x"}}`), "application/json", "", "push", byte(0))
	f.Add([]byte(`null`), "text/plain", "sha1=abc", "", byte(1))

	f.Fuzz(func(t *testing.T, body []byte, contentType, signature, event string, mode byte) {
		sign, failRec := mode&1 == 0, mode&2 != 0
		cfg := testConfig()
		cfg.MaxBody = 1 << 16
		rec := &fuzzRecorder{t: t, fail: failRec}
		var observed []observation
		h, err := NewHandler(cfg, rec, func(e string, r Result) { observed = append(observed, observation{e, r}) }, nil)
		if err != nil {
			t.Fatal(err)
		}
		if sign {
			signature = Sign([]byte(testSecret), body)
		}
		req := httptest.NewRequest(http.MethodPost, "/github-webhook", bytes.NewReader(body))
		req.Header["Content-Type"] = []string{contentType}
		req.Header["X-Github-Event"] = []string{event}
		req.Header["X-Github-Delivery"] = []string{testID}
		req.Header["X-Hub-Signature-256"] = []string{signature}
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)

		if len(observed) != 1 {
			t.Fatalf("observer called %d times", len(observed))
		}
		res := observed[0].result
		want, known := map[Result][]int{
			ResultAccepted:         {http.StatusAccepted},
			ResultDuplicate:        {http.StatusOK},
			ResultIgnored:          {http.StatusOK},
			ResultPing:             {http.StatusOK},
			ResultBadSignature:     {http.StatusUnauthorized},
			ResultMissingSignature: {http.StatusUnauthorized},
			ResultTooLarge:         {http.StatusRequestEntityTooLarge},
			ResultBadRequest:       {http.StatusBadRequest, http.StatusUnsupportedMediaType},
			ResultUnavailable:      {http.StatusServiceUnavailable},
		}[res]
		if !known {
			t.Fatalf("unexpected result %q", res)
		}
		okCode := false
		for _, c := range want {
			okCode = okCode || rr.Code == c
		}
		if !okCode {
			t.Fatalf("result %q with status %d", res, rr.Code)
		}
		calls := len(rec.calls)
		if rr.Code >= 500 && !(rr.Code == http.StatusServiceUnavailable && failRec && calls == 1) {
			t.Fatalf("status %d without a recorder failure", rr.Code)
		}
		if calls > 0 && !Verify([]byte(testSecret), body, signature) {
			t.Fatalf("Accept called for a body whose signature does not verify")
		}
		if calls > 1 || (calls == 1) != (res == ResultAccepted || res == ResultUnavailable) {
			t.Fatalf("Accept called %d times for result %q", calls, res)
		}
		var resp response
		if err := json.Unmarshal(rr.Body.Bytes(), &resp); err != nil {
			t.Fatalf("response %q is not JSON: %v", rr.Body.Bytes(), err)
		}
		if resp.Status != string(res) && !(res == ResultPing && resp.Status == "pong") {
			t.Fatalf("response status %q for result %q", resp.Status, res)
		}
		if observed[0].event != "" && observed[0].event != event {
			t.Fatalf("observer event %q for header %q", observed[0].event, event)
		}
	})
}
