package certbot

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sitesync/sitesync/command"
)

// RateLimitFallback is how long RetryAfter asks to wait after a rate-limit
// error that names no time. An hour is the window of Let's Encrypt's
// failed-validation limit, the one a misconfigured site hits; the longer
// limits (certificates per exact set of names: a week) are covered by the
// Backoff, which keeps doubling the wait on every further failure up to its
// maximum.
const RateLimitFallback = time.Hour

// maxRetryAfterSeconds bounds a Retry-After given in seconds, so that a
// garbage value cannot overflow a time.Duration.
const maxRetryAfterSeconds = 366 * 24 * 60 * 60

var (
	// rateLimitRE recognises an ACME rate-limit error: the problem type
	// (case-sensitive, so that a host named "ratelimited.example" in
	// certbot's "Requesting a certificate for ..." does not match) or one of
	// Boulder's messages.
	rateLimitRE = regexp.MustCompile(`\brateLimited\b|(?i:too many (?:certificates|failed authorizations|new orders|new registrations|registrations|(?:currently )?pending authorizations|requests of a given type))`)
	// retryAtRE matches Boulder's "retry after 2025-01-02 15:04:05 UTC" and
	// the RFC 3339 form "retry after 2025-01-02T15:04:05Z".
	retryAtRE = regexp.MustCompile(`(?i)\bretry after (\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?(?:\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2}))?`)
	// retryAfterHeaderRE matches a Retry-After header as certbot logs it
	// ("Retry-After: 3600"), also in Python's dict notation
	// ("'Retry-After': '3600'"), in seconds or as an HTTP date.
	retryAfterHeaderRE = regexp.MustCompile(`(?i)['"]?\bretry-after['"]?[ \t]*:[ \t]*['"]?(\d+|[a-z]{3}, \d{2} [a-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT)`)
)

// RetryAfter reports whether output (certbot's output, or an error text
// holding it) shows that the ACME server refused a request because of a
// rate limit, and from when on it asks to be contacted again.
//
// It recognises the problem type urn:ietf:params:acme:error:rateLimited,
// Boulder's "too many certificates", "too many failed authorizations",
// "too many new orders", "too many (new) registrations" and "too many
// pending authorizations" messages, a "retry after <time>" in Let's
// Encrypt's formats ("2025-01-02 15:04:05 UTC", "2025-01-02T15:04:05Z",
// with an optional fraction and offset; no zone means UTC) and a logged
// Retry-After header (seconds after now, or an HTTP date). Any of these
// means rate limited. The time returned is the latest one found; when the
// output names none it is now + RateLimitFallback. The time may lie in the
// past (the CA's clock or a stale message); callers take the later of it
// and their own backoff.
//
// Certbot 2.1 on Python 3.11 (Debian 12) prints only "AttributeError: can't
// set attribute" when the server refuses a new order (certbot issue 9539,
// fixed in 2.2); (*Certbot).Issue therefore appends the ACME problem from
// certbot's log to its error when it can read the log. That bare
// AttributeError line alone is not taken for a rate limit.
func RetryAfter(output string, now time.Time) (time.Time, bool) {
	var at time.Time
	found := false
	later := func(t time.Time) {
		if !found || t.After(at) {
			at = t
		}
		found = true
	}
	for _, m := range retryAtRE.FindAllStringSubmatch(output, -1) {
		if t, ok := parseRetryAt(m[1], m[2], m[3], m[4]); ok {
			later(t)
		}
	}
	for _, m := range retryAfterHeaderRE.FindAllStringSubmatch(output, -1) {
		if n, err := strconv.ParseInt(m[1], 10, 64); err == nil {
			later(now.Add(time.Duration(min(n, maxRetryAfterSeconds)) * time.Second))
		} else if t, err := http.ParseTime(m[1]); err == nil {
			later(t)
		}
	}
	if found {
		return at, true
	}
	if rateLimitRE.MatchString(output) {
		return now.Add(RateLimitFallback), true
	}
	return time.Time{}, false
}

// parseRetryAt parses the parts of a "retry after" timestamp.
func parseRetryAt(date, clock, frac, zone string) (time.Time, bool) {
	s := date + "T" + clock + frac
	switch {
	case zone == "" || strings.EqualFold(zone, "Z") || strings.EqualFold(zone, "UTC") || strings.EqualFold(zone, "GMT"):
		s += "Z"
	case len(zone) == 5: // +0100
		s += zone[:3] + ":" + zone[3:]
	default: // +01:00
		s += zone
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	return t, err == nil
}

// failureText is the text of err that rate-limit hints are searched in:
// the whole error message, but without the command line of a
// *command.Error, whose host names must not be mistaken for certbot's
// words.
func failureText(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	var ce *command.Error
	if errors.As(err, &ce) && len(ce.Argv) > 0 {
		s = strings.Replace(s, strings.Join(ce.Argv, " "), "", 1)
	}
	return s
}
