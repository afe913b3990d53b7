package testenv

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// commandTimeout bounds every external command the harness runs itself.
const commandTimeout = 2 * time.Minute

// RequireTool returns the absolute path of the executable name, looked up in
// $PATH and then in the sbin directories. A missing tool fails the test with
// a hint to run scripts/test.sh, which installs every tool the suite needs.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil && !strings.ContainsRune(name, filepath.Separator) {
		// The sbin directories are searched after $PATH: unprivileged users
		// often lack them, while nginx lives in /usr/sbin.
		for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
			if p, serr := exec.LookPath(filepath.Join(dir, name)); serr == nil {
				path, err = p, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatalf("testenv: required tool %q not found (%v); run scripts/test.sh, which installs all test dependencies", name, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatalf("testenv: absolute path of %q: %v", path, err)
	}
	return abs
}

// InCI reports whether the tests run under continuous integration, that is
// whether the environment variable CI is set to a true value such as "true".
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// runCmd runs argv (no shell) in dir with extra environment variables
// appended to the current environment, and returns its combined output.
func runCmd(dir string, env []string, argv ...string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.String(), err
}

// mustRun is runCmd that fails the test, showing the output, on error.
func mustRun(t testing.TB, dir string, env []string, argv ...string) string {
	t.Helper()
	out, err := runCmd(dir, env, argv...)
	if err != nil {
		t.Fatalf("testenv: %s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// tail returns at most the last n bytes of s, for failure messages.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
