package commitstatus

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

type call struct {
	path, auth string
	body       map[string]string
}

// recorder is a local stand-in for the GitHub API that records calls.
func recorder(t *testing.T, status int) (*httptest.Server, func() []call) {
	var mu sync.Mutex
	var calls []call
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		calls = append(calls, call{r.URL.Path, r.Header.Get("Authorization"), body})
		mu.Unlock()
		w.WriteHeader(status)
		w.Write([]byte(`{"message":"echo ` + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") + `"}`))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []call { mu.Lock(); defer mu.Unlock(); return append([]call(nil), calls...) }
}

const sha = "0123456789abcdef0123456789abcdef01234567"

func TestSet(t *testing.T) {
	srv, calls := recorder(t, 201)
	c := &Client{APIURL: srv.URL + "/", Token: "tok-123", Repository: "org/sites", Context: "sitesync/web1"}
	if err := c.Set(context.Background(), sha, Pending, "applying"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("é", 200)
	if err := c.Set(context.Background(), sha, Failure, long); err != nil {
		t.Fatal(err)
	}
	got := calls()
	if len(got) != 2 || got[0].path != "/repos/org/sites/statuses/"+sha || got[0].auth != "Bearer tok-123" ||
		got[0].body["state"] != "pending" || got[0].body["context"] != "sitesync/web1" || got[0].body["description"] != "applying" {
		t.Fatalf("calls = %+v", got)
	}
	if n := len([]rune(got[1].body["description"])); n != 140 {
		t.Fatalf("description has %d runes, want 140", n)
	}
}

func TestErrorsNeverCarryTheToken(t *testing.T) {
	srv, _ := recorder(t, 401)
	c := &Client{APIURL: srv.URL, Token: "tok-secret-xyz", Repository: "org/sites", Context: "s"}
	err := c.Set(context.Background(), sha, Success, "ok")
	if err == nil || strings.Contains(err.Error(), "tok-secret-xyz") || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v", err)
	}
	c.APIURL = "http://127.0.0.1:1"
	if err := c.Set(context.Background(), sha, Success, "ok"); err == nil || strings.Contains(err.Error(), "tok-secret-xyz") {
		t.Fatalf("unreachable: %v", err)
	}
	for _, bad := range []struct{ repo, sha string }{{"org/sites/../x", sha}, {"org/sites", "HEAD"}, {"org/sites", sha[:12]}} {
		c.Repository = bad.repo
		if err := c.Set(context.Background(), bad.sha, Success, ""); err == nil {
			t.Errorf("accepted repo %q sha %q", bad.repo, bad.sha)
		}
	}
}
