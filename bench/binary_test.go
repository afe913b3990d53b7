package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testenv"
)

// buildSitesync builds the sitesync binary into dir and returns its path.
// Under the race detector the binary is built with it too, so that the
// build reuses the packages go test compiled; the report says so.
func buildSitesync(t *testing.T, root, dir string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("bench: the go command is needed to build sitesync: %v", err)
	}
	bin := filepath.Join(dir, "sitesync")
	argv := []string{gobin, "build", "-o", bin}
	if raceEnabled {
		argv = append(argv, "-race")
	}
	argv = append(argv, "./cmd/sitesync")
	mustRun(t, 10*time.Minute, root, nil, argv...)
	return bin
}

// writeFile writes a test file and fails the test on error.
func writeFile(t testing.TB, path, text string, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), perm); err != nil {
		t.Fatal(err)
	}
}

// applySummary matches the last line of `sitesync apply`.
var applySummary = regexp.MustCompile(`: (\d+) written, \d+ deleted, \d+ certificate\(s\) issued`)

// rssResult is the peak resident set size of `sitesync apply` runs.
type rssResult struct {
	// Converge and Noop are ru_maxrss in KiB of a full converge from an
	// empty directory and of the no-op pass after it.
	Converge, Noop int64
	// ConvergeWall and NoopWall are the wall times of those runs (a new
	// process: start-up, clone or fetch, parse, render, observe).
	ConvergeWall, NoopWall time.Duration
	// Launcher is the peak RSS in KiB of the launcher that started them
	// (see launcher_test.go): no measurement can be below it.
	Launcher int64
}

// measureRSS runs the sitesync binary on the host's repository through
// the launcher: a converge into empty directories (which must write files
// files), then a no-op pass. The configuration leaves the nginx test and
// reload commands empty: ru_maxrss of a process includes the children it
// waited for, and nginx -t on a large fleet peaks higher than sitesync
// itself (the report gives its RSS separately).
func measureRSS(t *testing.T, bin string, h *host, files int) rssResult {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sitesync.toml")
	writeFile(t, cfg, testenv.HostTOML(h.repo, filepath.Join(dir, "conf.d"), filepath.Join(dir, "snippets"), nil, nil,
		h.cfg.Nginx.HTTPPort, h.cfg.Nginx.HTTPSPort, dir), 0o644)

	var res rssResult
	conv, floor := measured(t, 10*time.Minute, dir, bin, "apply", "--config", cfg)
	if m := applySummary.FindSubmatch(conv.out); m == nil || string(m[1]) != strconv.Itoa(files) {
		t.Fatalf("sitesync apply (converge) did not write %d files:\n%s", files, tailBytes(conv.out, 2000))
	}
	res.Converge, res.ConvergeWall, res.Launcher = conv.maxRSS, conv.wall, floor
	noop, _ := measured(t, 10*time.Minute, dir, bin, "apply", "--config", cfg)
	if !strings.Contains(string(noop.out), ": 0 written, 0 deleted, 0 certificate(s) issued, 0 failed, reloaded: false") {
		t.Fatalf("sitesync apply (no-op) did something:\n%s", tailBytes(noop.out, 2000))
	}
	res.Noop, res.NoopWall = noop.maxRSS, noop.wall
	return res
}
