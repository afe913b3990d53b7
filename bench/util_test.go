package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testenv"
)

// durs is a set of timings of one measurement.
type durs []time.Duration

// min returns the shortest timing (0 for none).
func (d durs) min() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Min(d)
}

// median returns the median timing (0 for none).
func (d durs) median() time.Duration { return d.quantile(0.5) }

// quantile returns the nearest-rank q-quantile (0 < q <= 1); for q = 0.5
// and an even count it is the mean of the two middle values.
func (d durs) quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if q == 0.5 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// max returns the longest timing (0 for none).
func (d durs) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// cmdResult is what one external command run reports.
type cmdResult struct {
	out    []byte
	wall   time.Duration
	maxRSS int64 // KiB: ru_maxrss of the process and the children it waited for
}

// run runs argv (no shell) in dir with extra environment, bounded by
// timeout, and returns its combined output, wall time and peak RSS.
func run(timeout time.Duration, dir string, env []string, argv ...string) (cmdResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	res := cmdResult{out: out.Bytes(), wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			res.maxRSS = ru.Maxrss
		}
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tailBytes(out.Bytes(), 4000))
	}
	return res, nil
}

// mustRun is run that fails the test on error.
func mustRun(t testing.TB, timeout time.Duration, dir string, env []string, argv ...string) cmdResult {
	t.Helper()
	res, err := run(timeout, dir, env, argv...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// tailBytes returns at most the last n bytes of b as a string.
func tailBytes(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return "..." + string(b[len(b)-n:])
}

// atomicWrite replaces path with data the way sitesync does (renameio): a
// temporary file in the same directory, written, fsynced and renamed over
// path.
func atomicWrite(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// syncDir fsyncs a directory, making renames and removals in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// readDirFiles reads every regular file of dir once and returns how many
// bytes it read: the floor of observing the host.
func readDirFiles(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return 0, err
		}
		total += len(b)
	}
	return total, nil
}

// Lines of an nginx master's error log: the start of a reload (the same
// line testenv.Nginx.ReloadCount counts) and the start of a worker once a
// configuration is loaded. They are matched anywhere in the log, not per
// line: the "signal process started" notice of nginx -s reload, written
// by another process, can land in the middle of a line.
var (
	reconfiguring = regexp.MustCompile(`#\d+: reconfiguring`)
	workerStart   = regexp.MustCompile(`: start worker process \d+`)
)

// settleLimit bounds nginxSettle.
var settleLimit = 2 * time.Minute

// nginxSettle waits (up to settleLimit) until the nginx master has
// loaded the configuration of every reload sent so far: sent is how many
// reload commands were run since nginx started, or -1 for "those already
// in the log". A loaded reload logs one "start worker process" line, and
// start-up one more. Reloads run asynchronously in the master (the reload
// command only signals it); without this a large reload would still be
// eating CPU, or reading conf.d, while the next measurement runs.
func nginxSettle(t testing.TB, n *testenv.Nginx, sent int) {
	t.Helper()
	deadline := time.Now().Add(settleLimit)
	for {
		reloads, starts := nginxLogCounts(t, n)
		if reloads >= sent && starts >= reloads+1 {
			// Let the old worker drain and exit.
			time.Sleep(20 * time.Millisecond)
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(n.ErrorLog)
			t.Fatalf("nginx did not load its reloads within %v: %d sent, %d started, %d loaded\n%s", settleLimit, sent, reloads, starts-1, tailBytes(b, 3000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nginxLogCounts counts the reloads and the worker starts in the error log
// of n.
func nginxLogCounts(t testing.TB, n *testenv.Nginx) (reloads, starts int) {
	t.Helper()
	b, err := os.ReadFile(n.ErrorLog)
	if err != nil {
		t.Fatal(err)
	}
	return len(reconfiguring.FindAllIndex(b, -1)), len(workerStart.FindAllIndex(b, -1))
}

// probeClient sends probes to the private nginx: no keep-alive, so every
// request reaches a current worker, and no redirects followed.
var probeClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// probe sends GET / with the Host header host to the private nginx and
// returns the status and Location header.
func probe(n *testenv.Nginx, host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", n.HTTPPort), nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := probeClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location"), nil
}

// waitServed polls the private nginx every interval, up to limit, until
// host answers with status (and, for a redirect, a Location starting with
// location), and returns how long that took.
func waitServed(t testing.TB, n *testenv.Nginx, host string, status int, location string, interval, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(limit)
	for {
		code, loc, err := probe(n, host)
		if err == nil && code == status && strings.HasPrefix(loc, location) {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not served as %d %q within %v: last %d %q %v", host, status, location, limit, code, loc, err)
		}
		time.Sleep(interval)
	}
}
