package certbot

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/command"
)

// Outputs of certbot 2.x. The first three were printed by certbot 2.1
// (Debian 12) talking to a local fake ACME server that answered as Let's
// Encrypt does; the others follow certbot 2.2+'s format, which prints the
// ACME problem itself.
const (
	// certbot 2.1 on Python 3.11, newOrder refused (certbot issue 9539),
	// with the detail Issue appends from certbot's log.
	outAttributeErrorWithLog = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Account registered.
Requesting a certificate for app.example.org
An unexpected error occurred:
AttributeError: can't set attribute
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.
; certbot's log says: urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type :: too many failed authorizations (5) for "app.example.org" in the last 1h0m0s, retry after 2026-11-25T14:00:00Z: see https://letsencrypt.org/docs/rate-limits/#authorization-failures-per-hostname-per-account (Retry-After: 3600)`

	// The same without the log (it belongs to root under sudo).
	outAttributeErrorAlone = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Requesting a certificate for app.example.org
An unexpected error occurred:
AttributeError: can't set attribute
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.`

	// newAccount refused: certbot prints the detail.
	outRegistration = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Unable to register an account with ACME server. Error returned by the ACME server: too many new registrations (10) from this IP address in the last 3h0m0s, retry after 2026-11-25 14:00:00 UTC: see https://letsencrypt.org/docs/rate-limits/#new-registrations-per-ip-address
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.`

	outCertsPerSet = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Requesting a certificate for app.example.org and www.app.example.org
An unexpected error occurred:
urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type :: too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2026-11-27 09:12:44 UTC: see https://letsencrypt.org/docs/rate-limits/#new-certificates-per-exact-set-of-hostnames
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.`

	// Boulder before 2024 gave no time.
	outOldFailedAuthz = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Requesting a certificate for app.example.org
An unexpected error occurred:
Error creating new order :: too many failed authorizations recently: see https://letsencrypt.org/docs/failed-validation-limit/
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.`

	outOldCertsPerSet = `An unexpected error occurred:
There were too many requests of a given type :: Error creating new order :: too many certificates already issued for exact set of domains: app.example.org,www.app.example.org: see https://letsencrypt.org/docs/rate-limits/`

	// certbot -v echoes the response.
	outVerboseHeader = `2026-11-25 11:57:04,581:DEBUG:acme.client:Received response:
HTTP 429
Content-Type: application/problem+json
Retry-After: 86400
Date: Wed, 25 Nov 2026 12:00:00 GMT

{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many new orders (300) from this account in the last 3h0m0s","status":429}`

	outPythonDictHeader = `DEBUG:acme.client:Received response: <Response [429]> {'Server': 'nginx', 'Retry-After': '120', 'Content-Type': 'application/problem+json'}
urn:ietf:params:acme:error:rateLimited`

	outHTTPDateHeader = "HTTP 503\nRetry-After: Wed, 25 Nov 2026 13:30:00 GMT\n\nservice unavailable"

	outConnectionRefused = `Saving debug log to /tmp/logs/letsencrypt.log
An unexpected error occurred:
ValueError: Requesting 127.0.0.1/dir: Connection refused
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /tmp/logs/letsencrypt.log or re-run Certbot with -v for more details.`

	outUnauthorized = `Saving debug log to /var/log/letsencrypt/letsencrypt.log
Requesting a certificate for ratelimited.example.org

Certbot failed to authenticate some domains (authenticator: webroot). The Certificate Authority reported these problems:
  Domain: ratelimited.example.org
  Type:   unauthorized
  Detail: 203.0.113.7: Invalid response from http://ratelimited.example.org/.well-known/acme-challenge/Qz3l0nGx: 404

Hint: The Certificate Authority failed to download the temporary challenge files created by Certbot. Ensure that the listed domains serve their content from the provided --webroot-path/-w and that files created there can be downloaded from the internet.

Some challenges have failed.
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.`

	outAnotherInstance = `Another instance of Certbot is already running.
Ask for help or search for solutions at https://community.letsencrypt.org. See the logfile /var/log/letsencrypt/letsencrypt.log or re-run Certbot with -v for more details.`
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	at := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name    string
		output  string
		want    time.Time
		limited bool
	}{
		{"certbot 2.1 AttributeError with log detail", outAttributeErrorWithLog, at("2026-11-25T14:00:00Z"), true},
		{"certbot 2.1 AttributeError alone", outAttributeErrorAlone, time.Time{}, false},
		{"registrations, UTC form", outRegistration, at("2026-11-25T14:00:00Z"), true},
		{"certificates per exact set", outCertsPerSet, at("2026-11-27T09:12:44Z"), true},
		{"old failed authorizations, no time", outOldFailedAuthz, now.Add(RateLimitFallback), true},
		{"old certificates per set, no time", outOldCertsPerSet, now.Add(RateLimitFallback), true},
		{"Retry-After seconds", outVerboseHeader, now.Add(24 * time.Hour), true},
		{"Retry-After in a Python dict", outPythonDictHeader, now.Add(2 * time.Minute), true},
		{"Retry-After HTTP date", outHTTPDateHeader, at("2026-11-25T13:30:00Z"), true},
		{"bare rateLimited type", "urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type", now.Add(RateLimitFallback), true},
		{"fraction and offset", "too many new orders (300), retry after 2026-11-25T15:00:00.5+01:00: see", at("2026-11-25T14:00:00.5Z"), true},
		{"offset without colon", "retry after 2026-11-25 15:00:00 +0100", at("2026-11-25T14:00:00Z"), true},
		{"Go time format", "retry after 2026-11-25 14:00:00 +0000 UTC", at("2026-11-25T14:00:00Z"), true},
		{"no zone is UTC", "rateLimited: retry after 2026-11-25 14:00:00.", at("2026-11-25T14:00:00Z"), true},
		{"latest of several hints", outAttributeErrorWithLog + "\nRetry-After: 99999", now.Add(99999 * time.Second), true},
		{"retry after in the past is still a hint", "too many certificates (5), retry after 2026-11-24 10:00:00 UTC", at("2026-11-24T10:00:00Z"), true},
		{"huge Retry-After is clamped", "Retry-After: 99999999999999999", now.Add(maxRetryAfterSeconds * time.Second), true},
		{"connection refused", outConnectionRefused, time.Time{}, false},
		{"unauthorized, host named ratelimited", outUnauthorized, time.Time{}, false},
		{"another instance", outAnotherInstance, time.Time{}, false},
		{"empty", "", time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, limited := RetryAfter(tt.output, now)
			if limited != tt.limited || !got.Equal(tt.want) {
				t.Errorf("RetryAfter = %v, %v; want %v, %v", got, limited, tt.want, tt.limited)
			}
		})
	}
}

func TestFailureTextIgnoresArgv(t *testing.T) {
	ce := &command.Error{
		Argv:   []string{"certbot", "certonly", "-d", "rateLimited.example.org", "-d", "too many certificates.example"},
		Output: outConnectionRefused,
		Err:    errors.New("exit status 1"),
	}
	err := errors.Join(errors.New("certificate app"), ce)
	if _, limited := RetryAfter(err.Error(), time.Now()); !limited {
		t.Fatal("test is broken: the argv should look rate limited")
	}
	if text := failureText(err); strings.Contains(text, "example.org") || !strings.Contains(text, "Connection refused") {
		t.Errorf("failureText = %q", text)
	}
	if _, limited := RetryAfter(failureText(err), time.Now()); limited {
		t.Error("host names in certbot's command line were taken for a rate limit")
	}
	if failureText(nil) != "" {
		t.Error("failureText(nil) is not empty")
	}
}

// certbotLog is the end of the letsencrypt.log certbot 2.1 wrote when the
// fake ACME server refused the order (shortened traceback).
const certbotLog = `2026-11-25 11:57:04,556:DEBUG:acme.client:Received response:
HTTP 200
Content-Type: application/json
Retry-After: 3

{"status":"pending"}
2026-11-25 11:57:04,581:DEBUG:urllib3.connectionpool:https://127.0.0.1:43905 "POST /order HTTP/1.1" 429 271
2026-11-25 11:57:04,581:DEBUG:acme.client:Received response:
HTTP 429
Cache-Control: no-store
Content-Type: application/problem+json
Replay-Nonce: bm9uY2U
Retry-After: 3600
Date: Wed, 25 Nov 2026 11:57:04 GMT
Content-Length: 271

{"type":"urn:ietf:params:acme:error:rateLimited","detail":"too many failed authorizations (5) for \"x.test\" in the last 1h0m0s, retry after 2026-11-25T14:00:00Z: see https://letsencrypt.org/docs/rate-limits/#authorization-failures-per-hostname-per-account","status":429}
2026-11-25 11:57:04,582:DEBUG:certbot._internal.log:Exiting abnormally:
Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/acme/client.py", line 575, in _check_response
    raise messages.Error.from_json(jobj)
acme.messages.Error: urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type :: too many failed authorizations (5) for "x.test" in the last 1h0m0s, retry after 2026-11-25T14:00:00Z: see https://letsencrypt.org/docs/rate-limits/#authorization-failures-per-hostname-per-account

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/usr/lib/python3/dist-packages/josepy/util.py", line 191, in __setattr__
    raise AttributeError("can't set attribute")
AttributeError: can't set attribute
2026-11-25 11:57:04,583:ERROR:certbot._internal.log:An unexpected error occurred:
`

func TestParseLogDetail(t *testing.T) {
	want := `urn:ietf:params:acme:error:rateLimited :: There were too many requests of a given type :: too many failed authorizations (5) for "x.test" in the last 1h0m0s, retry after 2026-11-25T14:00:00Z: see https://letsencrypt.org/docs/rate-limits/#authorization-failures-per-hostname-per-account (Retry-After: 3600)`
	if got := parseLogDetail(certbotLog); got != want {
		t.Errorf("parseLogDetail:\n got %s\nwant %s", got, want)
	}
	// A polling response's Retry-After is no error.
	polling := "2026-11-25 11:57:04,556:DEBUG:acme.client:Received response:\nHTTP 200\nRetry-After: 3\n\n{}\n"
	if got := parseLogDetail(polling); got != "" {
		t.Errorf("polling log: %q", got)
	}
	if got := parseLogDetail(""); got != "" {
		t.Errorf("empty log: %q", got)
	}
}
