package certbot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func openTestBackoff(t *testing.T, path string, opts BackoffOptions) *Backoff {
	t.Helper()
	b, err := OpenBackoff(path, opts)
	if err != nil {
		t.Fatalf("OpenBackoff: %v", err)
	}
	return b
}

func mustFail(t *testing.T, b *Backoff, name string, domains []string, err error) {
	t.Helper()
	if err := b.Failed(name, domains, err); err != nil {
		t.Fatalf("Failed: %v", err)
	}
}

func TestBackoffSchedule(t *testing.T) {
	clk := newFakeClock()
	b := openTestBackoff(t, filepath.Join(t.TempDir(), "b.json"), BackoffOptions{Now: clk.Now})
	doms := []string{"a.test"}
	var got []time.Duration
	for range 12 {
		start := clk.Now()
		mustFail(t, b, "a", doms, errors.New("boom"))
		ok, next, lastErr := b.Allowed("a", doms)
		if ok || lastErr != "boom" {
			t.Fatalf("Allowed right after a failure = %v, %v, %q", ok, next, lastErr)
		}
		got = append(got, next.Sub(start))
		clk.t = next.Add(-time.Nanosecond)
		if ok, _, _ := b.Allowed("a", doms); ok {
			t.Fatalf("allowed before %v", next)
		}
		clk.t = next
		if ok, _, lastErr := b.Allowed("a", doms); !ok || lastErr != "boom" {
			t.Fatalf("not allowed at %v (lastErr %q)", next, lastErr)
		}
	}
	m := time.Minute
	want := []time.Duration{2 * m, 4 * m, 8 * m, 16 * m, 32 * m, 64 * m, 128 * m, 256 * m, 360 * m, 360 * m, 360 * m, 360 * m}
	if !slices.Equal(got, want) {
		t.Errorf("waits = %v, want %v", got, want)
	}
	if e := b.Entries()["a"]; e.Failures != 12 || !slices.Equal(e.Domains, doms) || e.LastError != "boom" || e.RateLimited {
		t.Errorf("entry = %+v", e)
	}
}

func TestBackoffOptions(t *testing.T) {
	dir := t.TempDir()
	for _, opts := range []BackoffOptions{
		{Min: -time.Second},
		{Max: -time.Second},
		{Min: time.Hour, Max: time.Minute},
	} {
		if _, err := OpenBackoff(filepath.Join(dir, "x.json"), opts); err == nil {
			t.Errorf("OpenBackoff(%+v) accepted", opts)
		}
	}
	if _, err := OpenBackoff("", BackoffOptions{}); err == nil {
		t.Error("empty path accepted")
	}
	b := openTestBackoff(t, filepath.Join(dir, "x.json"), BackoffOptions{Min: 10 * time.Hour})
	if b.min != 10*time.Hour || b.max != 10*time.Hour {
		t.Errorf("min %v max %v: a Min above the default Max should raise Max", b.min, b.max)
	}
	b = openTestBackoff(t, filepath.Join(dir, "x.json"), BackoffOptions{})
	if b.min != DefaultBackoffMin || b.max != DefaultBackoffMax || b.now == nil {
		t.Errorf("defaults: %+v", b)
	}
	if b.Path() != filepath.Join(dir, "x.json") {
		t.Errorf("Path = %s", b.Path())
	}
}

// TestScheduleAlone checks the arithmetic of Backoff's doc comment: the
// doubling schedule by itself, with no host-name cap, never puts six
// attempts in one hour with the default Min, and would with 1m.
func TestScheduleAlone(t *testing.T) {
	attempts := func(minWait time.Duration) []time.Duration {
		b := &Backoff{min: minWait, max: DefaultBackoffMax}
		var at []time.Duration
		var now time.Duration
		for n := 1; now <= 24*time.Hour; n++ {
			at = append(at, now)
			now += b.delay(n)
		}
		return at
	}
	maxInHour := func(at []time.Duration) int {
		most := 0
		for i := range at {
			n := 0
			for j := i; j < len(at) && at[j]-at[i] <= time.Hour; j++ {
				n++
			}
			most = max(most, n)
		}
		return most
	}
	if n := maxInHour(attempts(DefaultBackoffMin)); n > 5 {
		t.Errorf("default schedule: %d attempts within an hour", n)
	}
	if n := maxInHour(attempts(time.Minute)); n != 6 {
		t.Errorf("1m schedule: %d attempts within an hour, want 6 (the reason Min is 2m)", n)
	}
	if n := maxInHour(attempts(117 * time.Second)); n > 5 {
		t.Errorf("1m57s schedule: %d attempts within an hour", n)
	}
}

// attempt is one simulated issuance attempt.
type attempt struct {
	at      time.Time
	name    string
	domains []string
}

// simulate runs a reconciler that tries every certificate of certs as soon
// as Allowed lets it, every second for 24 hours, and fails every attempt
// with the error errFor returns. certs returns a pass's certificate names
// and domains; it may change them between passes.
func simulate(t *testing.T, opts BackoffOptions, certs func(pass int) map[string][]string, errFor func(name string) error) []attempt {
	t.Helper()
	clk := newFakeClock()
	opts.Now = clk.Now
	path := filepath.Join(t.TempDir(), "certbot-backoff.json")
	b := openTestBackoff(t, path, opts)
	end := clk.Now().Add(24 * time.Hour)
	var log []attempt
	for pass := 0; clk.Now().Before(end); pass++ {
		cs := certs(pass)
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range cs {
				if !yield(n) {
					return
				}
			}
		})
		for _, name := range names {
			if ok, _, _ := b.Allowed(name, cs[name]); !ok {
				continue
			}
			log = append(log, attempt{clk.Now(), name, cs[name]})
			mustFail(t, b, name, cs[name], errFor(name))
		}
		if pass%3600 == 0 { // now and then, a restart
			b = openTestBackoff(t, path, opts)
		}
		clk.Add(time.Second)
	}
	return log
}

// maxPerHour returns the most attempts of one host name within a closed
// 60-minute window, and that host.
func maxPerHour(log []attempt) (most int, host string) {
	perHost := map[string][]time.Time{}
	for _, a := range log {
		for _, d := range a.domains {
			perHost[d] = append(perHost[d], a.at)
		}
	}
	for h, at := range perHost {
		slices.SortFunc(at, time.Time.Compare)
		for i := range at {
			n := 0
			for j := i; j < len(at) && at[j].Sub(at[i]) <= time.Hour; j++ {
				n++
			}
			if n > most {
				most, host = n, h
			}
		}
	}
	return most, host
}

// checkHourlyLimit fails the test if any host name was tried more than
// five times in a closed 60-minute window.
func checkHourlyLimit(t *testing.T, log []attempt) {
	t.Helper()
	if len(log) == 0 {
		t.Fatal("no attempts at all")
	}
	if n, host := maxPerHour(log); n > 5 {
		t.Errorf("%s: %d attempts within an hour", host, n)
	}
}

func TestMaxPerHourCountsClosedWindows(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var log []attempt
	for _, m := range []int{0, 2, 6, 14, 30, 60} { // the 6th exactly an hour later
		log = append(log, attempt{t0.Add(time.Duration(m) * time.Minute), "a", []string{"a.test"}})
	}
	if n, host := maxPerHour(log); n != 6 || host != "a.test" {
		t.Errorf("maxPerHour = %d, %s; want 6, a.test", n, host)
	}
	log[5].at = log[5].at.Add(time.Second)
	if n, _ := maxPerHour(log); n != 5 {
		t.Errorf("maxPerHour = %d, want 5", n)
	}
}

func TestBackoffFivePerHourOver24Hours(t *testing.T) {
	failing := func(string) error { return errors.New("certbot: exit status 1: Some challenges have failed.") }
	fixed := func(int) map[string][]string {
		return map[string][]string{"app": {"app.test", "www.app.test"}}
	}
	t.Run("default schedule", func(t *testing.T) {
		t.Parallel()
		log := simulate(t, BackoffOptions{}, fixed, failing)
		checkHourlyLimit(t, log)
		var minutes []int
		for _, a := range log {
			minutes = append(minutes, int(a.at.Sub(log[0].at)/time.Minute))
		}
		want := []int{0, 2, 6, 14, 30, 62, 126, 254, 510, 870, 1230}
		if !slices.Equal(minutes, want) {
			t.Errorf("attempts at minutes %v, want %v", minutes, want)
		}
	})
	t.Run("1m schedule held by the host cap", func(t *testing.T) {
		t.Parallel()
		log := simulate(t, BackoffOptions{Min: time.Minute}, fixed, failing)
		checkHourlyLimit(t, log)
		if got := log[5].at.Sub(log[0].at); got != FailureWindow {
			t.Errorf("6th attempt %v after the 1st, want %v (held back by the cap)", got, FailureWindow)
		}
	})
	t.Run("tiny schedule held by the host cap", func(t *testing.T) {
		t.Parallel()
		checkHourlyLimit(t, simulate(t, BackoffOptions{Min: time.Second, Max: time.Second}, fixed, failing))
	})
	t.Run("domain set changes on every pass", func(t *testing.T) {
		t.Parallel()
		// Every change clears the name's backoff; only the cap holds.
		flip := func(pass int) map[string][]string {
			if pass%2 == 0 {
				return map[string][]string{"app": {"app.test"}}
			}
			return map[string][]string{"app": {"app.test", fmt.Sprintf("v%d.app.test", pass)}}
		}
		log := simulate(t, BackoffOptions{}, flip, failing)
		checkHourlyLimit(t, log)
		if len(log) < 100 {
			t.Errorf("only %d attempts: a changed domain set should be tried at once", len(log))
		}
	})
	t.Run("host shared by two certificates", func(t *testing.T) {
		t.Parallel()
		shared := func(int) map[string][]string {
			return map[string][]string{"a": {"shared.test"}, "b": {"shared.test", "b.test"}, "c": {"c.test", "shared.test"}}
		}
		checkHourlyLimit(t, simulate(t, BackoffOptions{}, shared, failing))
	})
	t.Run("rate limited", func(t *testing.T) {
		t.Parallel()
		log := simulate(t, BackoffOptions{}, fixed, func(string) error { return errors.New(outOldFailedAuthz) })
		checkHourlyLimit(t, log)
		for i := 1; i < len(log); i++ {
			if d := log[i].at.Sub(log[i-1].at); d < RateLimitFallback {
				t.Errorf("rate-limited attempts %v apart", d)
			}
		}
	})
}

func TestBackoffRateLimit(t *testing.T) {
	clk := newFakeClock()
	b := openTestBackoff(t, filepath.Join(t.TempDir(), "b.json"), BackoffOptions{Now: clk.Now})
	doms := []string{"app.example.org"}
	// The CA's time is later than the backoff: it wins.
	mustFail(t, b, "app", doms, errors.New(outCertsPerSet))
	_, next, _ := b.Allowed("app", doms)
	if want := time.Date(2026, 11, 27, 9, 12, 44, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next = %v, want the CA's %v", next, want)
	}
	if e := b.Entries()["app"]; !e.RateLimited || e.Failures != 1 {
		t.Errorf("entry = %+v", e)
	}
	// A time earlier than the backoff does not shorten it.
	clk.t = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	mustFail(t, b, "app", doms, errors.New("Retry-After: 10"))
	if _, next, _ := b.Allowed("app", doms); !next.Equal(clk.t.Add(4 * time.Minute)) {
		t.Errorf("next = %v, want the backoff's %v", next, clk.t.Add(4*time.Minute))
	}
	// Rate limited without a time: the fallback.
	mustFail(t, b, "app", doms, errors.New(outOldFailedAuthz))
	if _, next, _ := b.Allowed("app", doms); !next.Equal(clk.t.Add(RateLimitFallback)) {
		t.Errorf("next = %v, want %v", next, clk.t.Add(RateLimitFallback))
	}
	// A failure that is no rate limit clears the flag.
	mustFail(t, b, "app", doms, errors.New(outConnectionRefused))
	if e := b.Entries()["app"]; e.RateLimited || e.Failures != 4 {
		t.Errorf("entry = %+v", e)
	}
}

func TestBackoffDomainSet(t *testing.T) {
	clk := newFakeClock()
	b := openTestBackoff(t, filepath.Join(t.TempDir(), "b.json"), BackoffOptions{Now: clk.Now})
	mustFail(t, b, "app", []string{"www.app.test", "App.Test."}, errors.New("boom"))
	// Order, case and a trailing dot do not change the set.
	if ok, _, _ := b.Allowed("app", []string{"app.test", "www.app.test", "app.test"}); ok {
		t.Error("same domain set allowed during the backoff")
	}
	if e := b.Entries()["app"]; !slices.Equal(e.Domains, []string{"app.test", "www.app.test"}) {
		t.Errorf("stored domains %v", e.Domains)
	}
	// Another set is tried at once, and starts a fresh count.
	ok, next, lastErr := b.Allowed("app", []string{"app.test"})
	if !ok || !next.IsZero() || lastErr != "" {
		t.Errorf("changed domain set: Allowed = %v, %v, %q", ok, next, lastErr)
	}
	mustFail(t, b, "app", []string{"app.test"}, errors.New("again"))
	if e := b.Entries()["app"]; e.Failures != 1 || !e.Next.Equal(clk.Now().Add(DefaultBackoffMin)) || e.LastError != "again" {
		t.Errorf("entry after a change = %+v", e)
	}
	// Other names are independent.
	if ok, _, _ := b.Allowed("other", []string{"other.test"}); !ok {
		t.Error("an unrelated name is held back")
	}
}

func TestBackoffHostCapAcrossNames(t *testing.T) {
	clk := newFakeClock()
	b := openTestBackoff(t, filepath.Join(t.TempDir(), "b.json"), BackoffOptions{Now: clk.Now})
	first := clk.Now()
	for i := range FailureLimit {
		mustFail(t, b, fmt.Sprintf("n%d", i), []string{"shared.test", fmt.Sprintf("n%d.test", i)}, errors.New("boom"))
		clk.Add(time.Second)
	}
	ok, next, lastErr := b.Allowed("fresh", []string{"shared.test"})
	if ok || !next.Equal(first.Add(FailureWindow)) || !strings.Contains(lastErr, "shared.test") {
		t.Errorf("Allowed(fresh) = %v, %v, %q; want refused until %v", ok, next, lastErr, first.Add(FailureWindow))
	}
	if err := b.Check("fresh", []string{"shared.test"}); err == nil {
		t.Error("Check = nil")
	} else if we := (*WaitError)(nil); !errors.As(err, &we) || !we.Next.Equal(next) || !strings.Contains(err.Error(), "not retrying before") {
		t.Errorf("Check = %v", err)
	}
	if ok, _, _ := b.Allowed("fresh", []string{"other.test"}); !ok {
		t.Error("a host without failures is held back")
	}
	// Recording Check's error by mistake changes nothing.
	before := b.Entries()
	if err := b.Failed("fresh", []string{"shared.test"}, fmt.Errorf("pass: %w", b.Check("fresh", []string{"shared.test"}))); err != nil {
		t.Fatal(err)
	}
	if after := b.Entries(); len(after) != len(before) {
		t.Errorf("a *WaitError was recorded as a failure: %v", after)
	}
	// A success keeps the host's failures: they count at the CA.
	if err := b.Succeeded("n0"); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := b.Allowed("n0", []string{"shared.test", "n0.test"}); ok {
		t.Error("host cap forgotten after a success")
	}
	clk.t = first.Add(FailureWindow)
	if ok, _, _ := b.Allowed("fresh", []string{"shared.test"}); !ok {
		t.Error("still refused once the oldest failure left the window")
	}
	if err := b.Check("fresh", []string{"shared.test"}); err != nil {
		t.Errorf("Check = %v", err)
	}
}

func TestBackoffPersistence(t *testing.T) {
	clk := newFakeClock()
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "certbot-backoff.json")
	b := openTestBackoff(t, path, BackoffOptions{Now: clk.Now})
	if len(b.Entries()) != 0 {
		t.Fatal("missing file is not empty")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("OpenBackoff created the directory before any change")
	}
	mustFail(t, b, "app", []string{"app.test"}, errors.New(outCertsPerSet))
	mustFail(t, b, "api", []string{"api.test"}, errors.New("boom"))
	want := b.Entries()

	again := openTestBackoff(t, path, BackoffOptions{Now: clk.Now})
	got := again.Entries()
	if len(got) != len(want) {
		t.Fatalf("reopened entries %v, want %v", got, want)
	}
	for name, w := range want {
		g := got[name]
		if !slices.Equal(g.Domains, w.Domains) || g.Failures != w.Failures || !g.Next.Equal(w.Next) ||
			!g.LastFailure.Equal(w.LastFailure) || g.LastError != w.LastError || g.RateLimited != w.RateLimited {
			t.Errorf("%s reopened as %+v, want %+v", name, g, w)
		}
	}
	if ok, _, _ := again.Allowed("api", []string{"api.test"}); ok {
		t.Error("backoff lost across a reopen")
	}
	if err := again.Succeeded("api"); err != nil {
		t.Fatal(err)
	}
	if err := again.Forget("app"); err != nil {
		t.Fatal(err)
	}
	if err := again.Forget("never-seen"); err != nil {
		t.Fatal(err)
	}
	third := openTestBackoff(t, path, BackoffOptions{Now: clk.Now})
	if len(third.Entries()) != 0 {
		t.Errorf("entries after success and forget: %v", third.Entries())
	}
	// Only the state file is left: no temporary files.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "certbot-backoff.json" {
		t.Errorf("state directory holds %v", entries)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode: %v %v", fi, err)
	}
	// The host failures of the last hour are persisted too.
	var st backoffFile
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &st); err != nil || st.Version != 1 || len(st.Hosts["api.test"]) != 1 {
		t.Errorf("state file %s: %v", data, err)
	}
	// They are dropped once older than the window.
	clk.Add(FailureWindow)
	if err := third.Failed("x", []string{"x.test"}, errors.New("boom")); err != nil {
		t.Fatal(err)
	}
	data, _ = os.ReadFile(path)
	st = backoffFile{}
	if err := json.Unmarshal(data, &st); err != nil || len(st.Hosts) != 1 || len(st.Hosts["x.test"]) != 1 {
		t.Errorf("state file after the window %s: %v", data, err)
	}
}

func TestOpenBackoffCorrupt(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage.json": "{not json",
		"empty.json":   "",
		"version.json": `{"version": 7, "entries": {}}`,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenBackoff(path, BackoffOptions{})
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v, want an error naming the file", name, err)
		}
	}
	// An unreadable path (a directory) is an error too.
	if _, err := OpenBackoff(dir, BackoffOptions{}); err == nil {
		t.Error("directory accepted as state file")
	}
}

func TestBackoffWriteFailureKeepsMemoryState(t *testing.T) {
	clk := newFakeClock()
	blocker := filepath.Join(t.TempDir(), "state")
	b := openTestBackoff(t, filepath.Join(blocker, "certbot-backoff.json"), BackoffOptions{Now: clk.Now})
	// The state's directory becomes a regular file: every write fails.
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Failed("app", []string{"app.test"}, errors.New("boom")); err == nil {
		t.Fatal("write into a file's path succeeded")
	}
	if ok, _, _ := b.Allowed("app", []string{"app.test"}); ok {
		t.Error("a failure that could not be persisted was forgotten")
	}
}

func TestBackoffFailedNilErrorAndLongError(t *testing.T) {
	clk := newFakeClock()
	b := openTestBackoff(t, filepath.Join(t.TempDir(), "b.json"), BackoffOptions{Now: clk.Now})
	mustFail(t, b, "a", []string{"a.test"}, nil)
	if e := b.Entries()["a"]; e.LastError != "unknown error" || e.Failures != 1 {
		t.Errorf("nil error entry = %+v", e)
	}
	long := strings.Repeat("x", 3*maxLastError) + "the end"
	mustFail(t, b, "a", []string{"a.test"}, errors.New(long))
	if e := b.Entries()["a"]; len(e.LastError) > maxLastError || !strings.HasSuffix(e.LastError, "the end") {
		t.Errorf("long error kept as %d bytes ending %q", len(e.LastError), e.LastError[len(e.LastError)-10:])
	}
}

func TestBackoffConcurrent(t *testing.T) {
	b := openTestBackoff(t, filepath.Join(t.TempDir(), "b.json"), BackoffOptions{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			name := fmt.Sprintf("n%d", g%3)
			for i := range 20 {
				doms := []string{name + ".test"}
				b.Allowed(name, doms)
				if i%5 == 4 {
					if err := b.Succeeded(name); err != nil {
						t.Error(err)
					}
				} else if err := b.Failed(name, doms, errors.New("boom")); err != nil {
					t.Error(err)
				}
				for _, e := range b.Entries() {
					e.Domains[0] = "mutated" // a copy: must not race or leak
				}
			}
		})
	}
	wg.Wait()
	for name, e := range b.Entries() {
		if e.Domains[0] != name+".test" {
			t.Errorf("%s: domains %v", name, e.Domains)
		}
	}
	if _, err := OpenBackoff(b.Path(), BackoffOptions{}); err != nil {
		t.Errorf("state file after concurrent use: %v", err)
	}
}
