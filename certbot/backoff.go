package certbot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"
)

// Defaults and limits of a Backoff.
const (
	// DefaultBackoffMin is the wait after a certificate's first failure.
	// It is 2 minutes, not 1: with waits of 1m, 2m, 4m, 8m, 16m the first
	// six attempts fall at 0, 1, 3, 7, 15 and 31 minutes, six in half an
	// hour, one more than Let's Encrypt allows. With 2m they fall at 0, 2,
	// 6, 14, 30 and 62 minutes (see Backoff).
	DefaultBackoffMin = 2 * time.Minute
	// DefaultBackoffMax is the longest wait between two attempts.
	DefaultBackoffMax = 6 * time.Hour
	// FailureLimit is how many failures a host name may have within
	// FailureWindow before Allowed refuses every certificate that names it:
	// Let's Encrypt's limit of 5 failed validations per account, host name
	// and hour.
	FailureLimit = 5
	// FailureWindow is the hour of Let's Encrypt's failed-validation limit
	// plus a minute of margin for the difference between the CA's clock and
	// ours.
	FailureWindow = time.Hour + time.Minute
)

// maxLastError bounds the error text kept per certificate.
const maxLastError = 4 << 10

// backoffVersion is the version of the state file's format.
const backoffVersion = 1

// Backoff remembers failed issuances per certificate name and says when the
// next attempt is allowed, so that a certificate that cannot be obtained
// does not make sitesync hammer the CA on every pass.
//
// # Schedule
//
// After the n-th consecutive failure of a name the next attempt waits
// Min·2^(n-1), at most Max: with the defaults 2m, 4m, 8m, 16m, 32m, 64m,
// 2h8m, 4h16m, then 6h. A rate-limit error (see RetryAfter) makes the
// wait end no sooner than the time the CA asked for. A success (Succeeded)
// forgets the name. A change of the name's domain set forgets its failures
// too: the entry belongs to the domains it failed for, so a fix pushed to
// git is tried at once.
//
// # Let's Encrypt's failed-validation limit
//
// Let's Encrypt refuses an account a 6th failed validation of a host name
// within an hour. Two mechanisms keep sitesync under it:
//
//   - The schedule alone: each wait is measured from the end of a failed
//     attempt to the start of the next, so six consecutive attempts of one
//     name, the k-th to the (k+5)-th, span at least the five waits between
//     them; the waits never shrink, so that is at least the sum of the
//     first five, Min+2Min+4Min+8Min+16Min = 31·Min (when Max ≥ 16·Min).
//     With Min = 2m that is 62 minutes: never six attempts within an hour.
//     With Min = 1m it is 31 minutes, which is why the default is 2m; the
//     schedule alone holds for any Min of at least 1m57s (31·Min > 60m)
//     and Max of at least 16·Min.
//   - A hard cap that holds whatever the options and whatever resets the
//     schedule (a domain set that changes on every push, a host name shared
//     by two certificates): Backoff records the time of every failure per
//     host name, and Allowed refuses a certificate while any of its host
//     names has FailureLimit failures within the last FailureWindow. A
//     failure is recorded after the CA validated, so the CA's failures of
//     a host are more than an hour apart whenever ours are FailureWindow
//     apart.
//
// Every failure counts, including those that never reached the CA (a
// closed port, a refused connection): Backoff cannot tell them apart, and
// counting too many only errs on the side of waiting.
//
// # Persistence
//
// The state is a JSON file, loaded by OpenBackoff and rewritten atomically
// (a temporary file in the same directory, fsync, rename, fsync of the
// directory) by every method that changes it, so backoff survives restarts
// and a crash leaves either the old or the new state. One process must own
// the file: two Backoffs on one path overwrite each other's changes (last
// writer wins). In sitesync the owner is the process holding the host lock.
//
// # Concurrency, errors and contexts
//
// A Backoff is safe for concurrent use; every method holds one mutex, and
// the file is written while holding it, so writes happen in the order of
// the changes. Allowed is a question, not a reservation: a caller that
// issues one certificate from several goroutines must serialise
// Allowed, the issuance and Failed or Succeeded itself (the reconciler
// runs one pass at a time).
//
// Methods take no context: they only write a small local file, and a
// write that has begun is finished so that the file is never half
// replaced. The in-memory state is always updated, even when writing the
// file fails; the error then only says that the change may not survive a
// restart, so a caller should report it and carry on: the backoff still
// holds in this process.
type Backoff struct {
	path     string
	min, max time.Duration
	now      func() time.Time

	mu sync.Mutex
	st backoffFile
}

// BackoffOptions configures a Backoff. Zero values mean the defaults.
type BackoffOptions struct {
	// Min is the wait after a first failure (0 = DefaultBackoffMin).
	Min time.Duration
	// Max is the longest wait (0 = DefaultBackoffMax); it must not be
	// shorter than Min.
	Max time.Duration
	// Now is the clock (nil = time.Now); tests inject their own.
	Now func() time.Time
}

// Entry is what a Backoff knows of one certificate name, for status pages
// and metrics.
type Entry struct {
	// Domains are the certificate's domains the failures were for,
	// lower-cased and sorted.
	Domains []string `json:"domains"`
	// Failures counts the consecutive failures for Domains.
	Failures int `json:"failures"`
	// LastFailure is when the last failure was recorded.
	LastFailure time.Time `json:"last_failure"`
	// Next is the earliest time of the next attempt.
	Next time.Time `json:"next"`
	// LastError is the text of the last failure (shortened when long).
	LastError string `json:"last_error"`
	// RateLimited is set when the last failure was a rate-limit error.
	RateLimited bool `json:"rate_limited,omitempty"`
}

// backoffFile is the JSON state file.
type backoffFile struct {
	Version int              `json:"version"`
	Entries map[string]Entry `json:"entries"`
	// Hosts maps a host name to the times of its latest failures (at most
	// FailureLimit, none older than FailureWindow when written).
	Hosts map[string][]time.Time `json:"host_failures,omitempty"`
}

// OpenBackoff returns a Backoff whose state lives in the file at path,
// e.g. <state_dir>/certbot-backoff.json. A missing file is an empty state;
// the file and its directory are created by the first change. A file that
// cannot be read or parsed is an error naming it, not a silent fresh
// start: forgetting the failures could hammer the CA, and the file is only
// ever replaced atomically, so a corrupt one was damaged from outside.
// Delete it to start afresh.
func OpenBackoff(path string, opts BackoffOptions) (*Backoff, error) {
	if path == "" {
		return nil, errors.New("certbot backoff: no state file")
	}
	if opts.Min < 0 || opts.Max < 0 {
		return nil, fmt.Errorf("certbot backoff: negative duration (min %v, max %v)", opts.Min, opts.Max)
	}
	b := &Backoff{path: path, min: opts.Min, max: opts.Max, now: opts.Now}
	if b.min == 0 {
		b.min = DefaultBackoffMin
	}
	if b.max == 0 {
		b.max = max(DefaultBackoffMax, b.min)
	}
	if b.max < b.min {
		return nil, fmt.Errorf("certbot backoff: max %v is shorter than min %v", b.max, b.min)
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.st = backoffFile{Version: backoffVersion, Entries: map[string]Entry{}, Hosts: map[string][]time.Time{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("certbot backoff: %w", err)
	}
	var st backoffFile
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("certbot backoff: %s is corrupt (delete it to start afresh): %w", path, err)
	}
	if st.Version != backoffVersion {
		return nil, fmt.Errorf("certbot backoff: %s has format version %d, want %d", path, st.Version, backoffVersion)
	}
	for name, e := range st.Entries {
		e.Domains = normalizeDomains(e.Domains)
		b.st.Entries[name] = e
	}
	now := b.now()
	for host, ts := range st.Hosts {
		if ts = recentFailures(ts, now); len(ts) > 0 {
			b.st.Hosts[host] = ts
		}
	}
	return b, nil
}

// Path returns the state file's path.
func (b *Backoff) Path() string { return b.path }

// Allowed reports whether the certificate name may be issued for domains
// now. When it may not, next is the earliest time it may. lastErr is the
// error of the name's last failure for the same domain set (also when the
// attempt is allowed: it is a retry), or a description of the host-name
// limit that blocks it; "" when there is neither.
//
// Failures recorded for another domain set of the name do not count, but
// the host-name limit (FailureLimit per FailureWindow) applies to every
// name in domains whatever certificate the failures were for.
func (b *Backoff) Allowed(name string, domains []string) (ok bool, next time.Time, lastErr string) {
	now := b.now()
	doms := normalizeDomains(domains)
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, found := b.st.Entries[name]; found && slices.Equal(e.Domains, doms) {
		lastErr = e.LastError
		if now.Before(e.Next) {
			next = e.Next
		}
	}
	for _, host := range doms {
		ts := recentFailures(b.st.Hosts[host], now)
		if len(ts) < FailureLimit {
			continue
		}
		until := ts[len(ts)-FailureLimit].Add(FailureWindow)
		if until.After(next) {
			next = until
		}
		if lastErr == "" {
			lastErr = fmt.Sprintf("%d failed issuances for %s within %v", len(ts), host, FailureWindow)
		}
	}
	return next.IsZero(), next, lastErr
}

// WaitError is the error of Check: a certificate whose next attempt is not
// due yet.
type WaitError struct {
	// Name is the certificate name.
	Name string
	// Next is the earliest time of the next attempt.
	Next time.Time
	// LastError is the failure the wait follows.
	LastError string
}

// Error implements error.
func (e *WaitError) Error() string {
	msg := fmt.Sprintf("certificate %s: not retrying before %s", e.Name, e.Next.UTC().Format(time.RFC3339))
	if e.LastError != "" {
		msg += " after failure: " + e.LastError
	}
	return msg
}

// Check is Allowed as an error: nil when the attempt is allowed, else a
// *WaitError.
func (b *Backoff) Check(name string, domains []string) error {
	ok, next, lastErr := b.Allowed(name, domains)
	if ok {
		return nil
	}
	return &WaitError{Name: name, Next: next, LastError: lastErr}
}

// Failed records that issuing name for domains failed with err, and
// schedules the next attempt. A rate-limit error (RetryAfter on err's text,
// which for a *command.Error includes certbot's output) postpones it to
// the time the CA asked for if that is later. The caller should not record
// a failure caused by the cancellation of its own context (a shutdown):
// the attempt was cut short, not refused. An err that is a *WaitError
// (Check's) is no attempt and is ignored. The error is about writing the
// state file only; see Backoff.
func (b *Backoff) Failed(name string, domains []string, err error) error {
	if we := (*WaitError)(nil); errors.As(err, &we) {
		return nil
	}
	now := b.now()
	doms := normalizeDomains(domains)
	msg := "unknown error"
	if err != nil {
		msg = shorten(err.Error(), maxLastError)
	}
	hint, limited := RetryAfter(failureText(err), now)

	b.mu.Lock()
	defer b.mu.Unlock()
	e, found := b.st.Entries[name]
	if !found || !slices.Equal(e.Domains, doms) {
		e = Entry{Domains: doms}
	}
	e.Failures++
	e.LastFailure = now
	e.Next = now.Add(b.delay(e.Failures))
	e.LastError = msg
	e.RateLimited = limited
	if limited && hint.After(e.Next) {
		e.Next = hint
	}
	b.st.Entries[name] = e
	for _, host := range doms {
		ts := append(recentFailures(b.st.Hosts[host], now), now)
		if len(ts) > FailureLimit {
			ts = ts[len(ts)-FailureLimit:]
		}
		b.st.Hosts[host] = ts
	}
	return b.saveLocked(now)
}

// Succeeded records that name was issued: its failures are forgotten and
// the next attempt is allowed at once. The host names' failure times are
// kept (they still count at the CA). The error is about writing the state
// file only; see Backoff.
func (b *Backoff) Succeeded(name string) error {
	return b.Forget(name)
}

// Forget drops what is known of name, e.g. for a site removed from git, so
// that it no longer shows in Entries. The error is about writing the state
// file only; see Backoff.
func (b *Backoff) Forget(name string) error {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, found := b.st.Entries[name]; !found {
		return nil
	}
	delete(b.st.Entries, name)
	return b.saveLocked(now)
}

// Entries returns a copy of what is known of every certificate name that
// failed since its last success, including entries whose wait is over and
// entries for a domain set the name no longer asks for (until its next
// attempt replaces them, or Forget).
func (b *Backoff) Entries() map[string]Entry {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]Entry, len(b.st.Entries))
	for name, e := range b.st.Entries {
		e.Domains = slices.Clone(e.Domains)
		out[name] = e
	}
	return out
}

// delay is the wait after the n-th consecutive failure (n ≥ 1):
// min·2^(n-1), at most max.
func (b *Backoff) delay(n int) time.Duration {
	d := b.min
	for i := 1; i < n && d < b.max; i++ {
		d *= 2
	}
	return min(d, b.max)
}

// saveLocked writes the state file atomically; b.mu must be held.
func (b *Backoff) saveLocked(now time.Time) error {
	for host, ts := range b.st.Hosts {
		if ts = recentFailures(ts, now); len(ts) > 0 {
			b.st.Hosts[host] = ts
		} else {
			delete(b.st.Hosts, host)
		}
	}
	st := b.st
	st.Hosts = maps.Clone(b.st.Hosts)
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("certbot backoff: encode state: %w", err)
	}
	data = append(data, '\n')
	dir := filepath.Dir(b.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("certbot backoff: %w", err)
	}
	if err := renameio.WriteFile(b.path, data, 0o600, renameio.WithTempDir(dir)); err != nil {
		return fmt.Errorf("certbot backoff: write %s: %w", b.path, err)
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("certbot backoff: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("certbot backoff: sync %s: %w", dir, err)
	}
	return nil
}

// recentFailures returns the failure times of ts within FailureWindow
// before now, oldest first.
func recentFailures(ts []time.Time, now time.Time) []time.Time {
	out := make([]time.Time, 0, len(ts)+1)
	for _, t := range ts {
		if now.Before(t.Add(FailureWindow)) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// normalizeDomains returns domains lower-cased, without a trailing dot,
// sorted and without duplicates: the domain set a certificate covers.
func normalizeDomains(domains []string) []string {
	out := make([]string, 0, len(domains))
	for _, d := range domains {
		out = append(out, strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), "."))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// shorten cuts s to at most n bytes by dropping its middle.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const cut = " [...] "
	head := (n - len(cut)) / 2
	tail := n - len(cut) - head
	return strings.ToValidUTF8(s[:head]+cut+s[len(s)-tail:], "")
}
