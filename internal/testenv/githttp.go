package testenv

import (
	"io"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ServeGitHTTP serves the git repository at dir (a work tree made by
// NewGitRepo) over smart HTTP with git http-backend on 127.0.0.1, and
// returns the server and the repository's URL path ("/<name>/.git").
func ServeGitHTTP(t testing.TB, dir string) (*httptest.Server, string) {
	t.Helper()
	git := RequireTool(t, "git")
	out, err := exec.Command(git, "--exec-path").Output()
	if err != nil {
		t.Fatalf("testenv: git --exec-path: %v", err)
	}
	backend := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Env: []string{
			"GIT_PROJECT_ROOT=" + filepath.Dir(dir),
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_GLOBAL=" + os.DevNull,
		},
		Stderr: io.Discard,
	}
	srv := httptest.NewServer(backend)
	t.Cleanup(srv.Close)
	return srv, "/" + filepath.Base(dir) + "/.git"
}
