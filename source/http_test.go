package source

import (
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// testToken is distinctive so that any leak is easy to spot.
const testToken = "ghp_SITESYNCtestTOKEN0123456789abcdefXYZ"

// gitServer serves bare repositories over smart HTTP with git http-backend,
// requiring basic auth with password token.
type gitServer struct {
	srv    *httptest.Server
	caFile string

	mu    sync.Mutex
	users []string // basic-auth user names seen on authorised requests
}

// newGitServer starts a TLS server on 127.0.0.1 serving up's repository as
// /site.git. With tls false it serves plain HTTP.
func newGitServer(t *testing.T, up *upstream, token string, tls bool) *gitServer {
	t.Helper()
	root := t.TempDir()
	runGit(t, "", "clone", "-q", "--bare", up.dir, filepath.Join(root, "site.git"))
	backend := &cgi.Handler{
		Path: filepath.Join(runGit(t, "", "--exec-path"), "git-http-backend"),
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
		},
		Stderr: io.Discard,
	}
	gs := &gitServer{}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || pass != token {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			// Echo the rejected password, as a careless server might: the
			// client must still keep it out of its errors.
			http.Error(w, "bad credentials: "+pass, http.StatusUnauthorized)
			return
		}
		gs.mu.Lock()
		gs.users = append(gs.users, user)
		gs.mu.Unlock()
		backend.ServeHTTP(w, r)
	})
	gs.srv = httptest.NewUnstartedServer(handler)
	// Keep expected TLS handshake failures out of the test output.
	gs.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tls {
		gs.srv.StartTLS()
		gs.caFile = filepath.Join(t.TempDir(), "ca.pem")
		block := &pem.Block{Type: "CERTIFICATE", Bytes: gs.srv.Certificate().Raw}
		if err := os.WriteFile(gs.caFile, pem.EncodeToMemory(block), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		gs.srv.Start()
	}
	t.Cleanup(gs.srv.Close)
	return gs
}

// repoURL returns the URL of the served repository.
func (gs *gitServer) repoURL() string { return gs.srv.URL + "/site.git" }

// seenUsers returns the user names of authorised requests.
func (gs *gitServer) seenUsers() []string {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return append([]string(nil), gs.users...)
}

func TestSyncHTTPSWithToken(t *testing.T) {
	up := newUpstream(t)
	gs := newGitServer(t, up, testToken, true)
	tokenFile := writeSecret(t, "token", "  "+testToken+"\n", 0o600)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: gs.repoURL(), Dir: dir, TokenFile: tokenFile, CAFile: gs.caFile}

	rev := mustSync(t, r)
	if rev.Commit != up.head() {
		t.Fatalf("commit = %s, want %s", rev.Commit, up.head())
	}
	if got := readFile(t, dir, "sites.yaml"); got != "sites: []\n" {
		t.Errorf("sites.yaml = %q", got)
	}
	users := gs.seenUsers()
	if len(users) == 0 || users[0] != "x-access-token" {
		t.Errorf("basic-auth users = %v, want x-access-token", users)
	}
	// The token is not persisted in the checkout.
	cfg, err := os.ReadFile(filepath.Join(dir, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), testToken) {
		t.Errorf(".git/config holds the token:\n%s", cfg)
	}
	// A second sync over HTTPS is a no-op.
	if again := mustSync(t, r); again != rev {
		t.Errorf("second sync = %+v, want %+v", again, rev)
	}
}

func TestSyncHTTPSWrongToken(t *testing.T) {
	up := newUpstream(t)
	gs := newGitServer(t, up, "the-right-token", true)
	tokenFile := writeSecret(t, "token", testToken+"\n", 0o600)
	_, err := (&Repo{
		URL: gs.repoURL(), Dir: filepath.Join(t.TempDir(), "c"), TokenFile: tokenFile, CAFile: gs.caFile,
	}).Sync(testCtx(t))
	if !errors.Is(err, ErrAuth) || !IsPermanent(err) {
		t.Fatalf("err = %v, want permanent ErrAuth", err)
	}
	if strings.Contains(err.Error(), testToken) {
		t.Fatalf("error leaks the token: %v", err)
	}
	// The server echoed the token; the message must show the mask instead.
	if !strings.Contains(err.Error(), "bad credentials: ***") {
		t.Errorf("error %q does not carry the redacted server message", err)
	}
}

func TestSyncHTTPSNoCredentials(t *testing.T) {
	up := newUpstream(t)
	gs := newGitServer(t, up, testToken, true)
	_, err := (&Repo{URL: gs.repoURL(), Dir: filepath.Join(t.TempDir(), "c"), CAFile: gs.caFile}).Sync(testCtx(t))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("err = %v, want ErrAuth", err)
	}
}

func TestSyncHTTPSUnknownCA(t *testing.T) {
	up := newUpstream(t)
	gs := newGitServer(t, up, testToken, true)
	tokenFile := writeSecret(t, "token", testToken, 0o600)
	_, err := (&Repo{URL: gs.repoURL(), Dir: filepath.Join(t.TempDir(), "c"), TokenFile: tokenFile}).Sync(testCtx(t))
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Fatalf("err = %v, want a token-free certificate error", err)
	}
	if len(gs.seenUsers()) != 0 {
		t.Errorf("token accepted over an unverified connection")
	}
}

func TestSyncHTTPSCredentialsInURL(t *testing.T) {
	up := newUpstream(t)
	gs := newGitServer(t, up, testToken, true)
	u := strings.Replace(gs.repoURL(), "https://", "https://deploy:"+testToken+"@", 1)
	dir := filepath.Join(t.TempDir(), "c")
	rev := mustSync(t, &Repo{URL: u, Dir: dir, CAFile: gs.caFile})
	if rev.Commit != up.head() {
		t.Fatalf("commit = %s, want %s", rev.Commit, up.head())
	}
	if users := gs.seenUsers(); len(users) == 0 || users[0] != "deploy" {
		t.Errorf("users = %v, want deploy", users)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), testToken) {
		t.Errorf(".git/config holds the token:\n%s", cfg)
	}
}

func TestSyncPlainHTTPLoopbackWithToken(t *testing.T) {
	up := newUpstream(t)
	gs := newGitServer(t, up, testToken, false)
	tokenFile := writeSecret(t, "token", testToken, 0o600)
	rev := mustSync(t, &Repo{URL: gs.repoURL(), Dir: filepath.Join(t.TempDir(), "c"), TokenFile: tokenFile})
	if rev.Commit != up.head() {
		t.Fatalf("commit = %s, want %s", rev.Commit, up.head())
	}
}

func TestSyncRefusesTokenOverPlainHTTP(t *testing.T) {
	tokenFile := writeSecret(t, "token", testToken, 0o600)
	// Refused before any connection is attempted.
	_, err := (&Repo{
		URL: "http://sitesync.invalid/site.git", Dir: filepath.Join(t.TempDir(), "c"), TokenFile: tokenFile,
	}).Sync(testCtx(t))
	if !errors.Is(err, ErrConfig) || strings.Contains(err.Error(), testToken) {
		t.Fatalf("err = %v, want token-free ErrConfig", err)
	}
}

func TestSyncErrorNeverContainsToken(t *testing.T) {
	// A port on 127.0.0.1 with nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	tokenFile := writeSecret(t, "token", testToken+"\n", 0o600)
	for name, u := range map[string]string{
		"user and token": "https://x-access-token:" + testToken + "@" + addr + "/org/site.git",
		"token as user":  "https://" + testToken + "@" + addr + "/org/site.git",
	} {
		t.Run(name, func(t *testing.T) {
			for _, tf := range []string{tokenFile, ""} {
				_, err := (&Repo{URL: u, Dir: filepath.Join(t.TempDir(), "c"), TokenFile: tf}).Sync(testCtx(t))
				if err == nil {
					t.Fatal("sync against a closed port succeeded")
				}
				if strings.Contains(err.Error(), testToken) {
					t.Fatalf("error leaks the token: %v", err)
				}
				if IsPermanent(err) {
					t.Errorf("unreachable server classified permanent: %v", err)
				}
				if !strings.Contains(err.Error(), addr) {
					t.Errorf("error %q does not name the server", err)
				}
				t.Logf("token file %q: %v", tf, err)
			}
		})
	}
}

func TestTokenFileChecks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	for name, tc := range map[string]struct {
		content string
		perm    os.FileMode
		want    string
	}{
		"group readable": {testToken, 0o640, "chmod 600"},
		"world readable": {testToken, 0o644, "chmod 600"},
		"empty":          {"  \n", 0o600, "is empty"},
		"two lines":      {testToken + "\nsecond\n", 0o600, "more than one line"},
	} {
		t.Run(name, func(t *testing.T) {
			tokenFile := writeSecret(t, "token", tc.content, tc.perm)
			_, err := (&Repo{URL: "https://127.0.0.1:1/site.git", Dir: dir, TokenFile: tokenFile}).Sync(testCtx(t))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tokenFile) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q should name %s and say %q", msg, tokenFile, tc.want)
			}
			if strings.Contains(msg, testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope")
		_, err := (&Repo{URL: "https://127.0.0.1:1/site.git", Dir: dir, TokenFile: missing}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("err = %v, want ErrConfig naming the file", err)
		}
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("checkout directory created despite configuration errors")
	}
}
