package source

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing/transport"
)

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:secret@host/x":          "https://user:***@host/x",
		"https://ghp_abc@github.com/org/r":    "https://***@github.com/org/r",
		"http://u:p@127.0.0.1:8080/r.git":     "http://u:***@127.0.0.1:8080/r.git",
		"https://host/x":                      "https://host/x",
		"ssh://git@host:22/org/r.git":         "ssh://git@host:22/org/r.git",
		"ssh://git:pw@host/r.git":             "ssh://git:***@host/r.git",
		"git@github.com:org/repo.git":         "git@github.com:org/repo.git",
		"/srv/site-repo":                      "/srv/site-repo",
		"https://user:p%zz@host/x":            "https://user:***@host/x",
		"https://user:a%2Fb@host/x?q=1#frag":  "https://user:***@host/x?q=1#frag",
		"":                                    "",
		"not a url at all, user:pass@nothing": "not a url at all, user:pass@nothing",
	} {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	const tok = "s3cr3t/+ tok"
	for _, tc := range []struct {
		in, want string
		secrets  []string
	}{
		{
			in:   `Get "https://x-access-token:abc@127.0.0.1:1/r/info/refs": dial tcp: refused`,
			want: `Get "https://x-access-token:***@127.0.0.1:1/r/info/refs": dial tcp: refused`,
		},
		{
			in:   "clone https://tok@host/a and https://u:p@other/b failed",
			want: "clone https://***@host/a and https://u:***@other/b failed",
		},
		{in: "server said: bad token " + tok, secrets: []string{tok}, want: "server said: bad token ***"},
		{in: "escaped s3cr3t%2F%2B+tok", secrets: []string{tok}, want: "escaped ***"},
		{in: "path s3cr3t%2F+%20tok", secrets: []string{tok}, want: "path ***"},
		{in: "nothing secret", secrets: []string{"", tok}, want: "nothing secret"},
		{in: "ab abc", secrets: []string{"ab", "abc"}, want: "*** ***"},
		{in: "ssh://git@host/x", want: "ssh://git@host/x"},
		{in: "trailing https://u:pass@", want: "trailing https://u:***@"},
		{in: "scheme only https://", want: "scheme only https://"},
	} {
		if got := Redact(tc.in, tc.secrets...); got != tc.want {
			t.Errorf("Redact(%q, %q) = %q, want %q", tc.in, tc.secrets, got, tc.want)
		}
	}
}

func TestSanitizeError(t *testing.T) {
	if SanitizeError(nil) != "" {
		t.Error("SanitizeError(nil) != \"\"")
	}
	err := fmt.Errorf("fetch https://u:%s@h/x: %s", testToken, testToken)
	if got := SanitizeError(err, testToken); strings.Contains(got, testToken) {
		t.Errorf("SanitizeError = %q", got)
	}
}

func TestRedactedErrorKeepsIs(t *testing.T) {
	inner := fmt.Errorf("get https://u:%s@h: %w", testToken, context.DeadlineExceeded)
	err := fmt.Errorf("fetch: %w", redactErr(inner, testToken))
	if strings.Contains(err.Error(), testToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("errors.Is lost context.DeadlineExceeded")
	}
	// The raw error is not reachable through errors.As.
	var target *wrapped
	if errors.As(err, &target) {
		t.Error("errors.As reached the unredacted error")
	}
	if redactErr(nil) != nil {
		t.Error("redactErr(nil) != nil")
	}
}

// wrapped is an error type that must not be reachable through a redacted
// error.
type wrapped struct{ msg string }

func (w *wrapped) Error() string { return w.msg }

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("%w: nope", transport.ErrAuthenticationRequired), ErrAuth},
		{fmt.Errorf("%w: nope", transport.ErrAuthorizationFailed), ErrAuth},
		{errors.New("ssh: handshake failed: ssh: unable to authenticate, attempted methods [none publickey]"), ErrAuth},
		{transport.ErrRepositoryNotFound, ErrNotRepository},
		{transport.ErrEmptyRemoteRepository, ErrBranchNotFound},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), nil},
		{context.DeadlineExceeded, nil},
	} {
		if got := classify(tc.err); got != tc.want {
			t.Errorf("classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
