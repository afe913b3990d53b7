// Package webhook receives GitHub webhook deliveries and marks the site
// repository dirty.
//
// The handler does no reconciling. A push to the watched repository and
// branch is handed to a Recorder, which durably notes the delivery and
// returns; the reconcile loop does the work later. The handler therefore
// answers in milliseconds, well within the 10 s GitHub waits, however
// long a pass takes.
//
//	h, err := webhook.NewHandler(webhook.Config{
//		Secret:     secret, // webhook.ReadSecret("/etc/sitesync/webhook-secret")
//		Repository: "example/sites",
//		Branch:     "main",
//	}, recorder, observer, logger)
//	mux := http.NewServeMux()
//	mux.Handle("/github-webhook", h)
//	srv := webhook.NewServer("127.0.0.1:3400", mux)
//
// # What a request goes through
//
// In this order, the cheap checks first and nothing read from the body
// before the headers have passed:
//
//  1. Source: with Config.AllowedCIDRs, a client outside them gets 403
//     (Result "forbidden").
//  2. Method: anything but POST gets 405 with "Allow: POST".
//  3. Signature header: no X-Hub-Signature-256 gets 401
//     "missing_signature", also when the SHA-1 X-Hub-Signature is present
//     (SHA-1 signatures are not accepted); a malformed or repeated one gets
//     401 "bad_signature".
//  4. X-GitHub-Event (1 to 64 characters of [A-Za-z0-9_.-]) and
//     X-GitHub-Delivery (1 to 100 characters of [A-Za-z0-9-]) must each
//     appear once, else 400.
//  5. Content type: application/json (the body is the payload) or
//     application/x-www-form-urlencoded (the payload is the "payload" form
//     field); anything else gets 415, counted as "bad_request".
//  6. Size: a body larger than Config.MaxBody (25 MiB by default, GitHub's
//     cap) gets 413 "too_large", from its Content-Length before reading, or
//     as soon as the limit is crossed while reading.
//  7. Signature: HMAC-SHA256 of the raw body bytes (for the form encoding,
//     the encoded body, as GitHub signs it), compared in constant time; a
//     mismatch gets 401 "bad_signature".
//  8. Event: "ping" gets 200 "pong"; events other than "push" get 200
//     "ignored".
//  9. Push: only ref, after, deleted, repository.full_name and
//     head_commit.id are decoded; a payload that is not a JSON object, or
//     a malformed form body, gets 400. A push to another repository
//     (compared case-insensitively), another branch or a tag gets 200
//     "ignored". A push to the watched branch is given to Recorder.Accept:
//     202 "accepted", 200 "duplicate" for a delivery ID it has seen, or
//     503 "unavailable" when it fails, so that GitHub shows a failed
//     delivery that can be redelivered.
//
// Nothing is recorded in any case but the last. Every answer is a small
// JSON object, {"status": "...", "error": "..."}, with "delivery" for an
// accepted one; error texts are fixed strings and never echo the request.
//
// A push that deletes the watched branch ("deleted": true, "after" all
// zeros) is accepted like any other: the repository changed, so the next
// pass runs, fails to fetch the branch and reports it, and the sites stay
// as they were.
//
// # Signatures
//
// The X-Hub-Signature-256 value must be exactly "sha256=" followed by 64
// lowercase hex digits, which is what GitHub sends. Uppercase hex is
// rejected as "bad_signature": accepting it would not weaken the check,
// but nothing legitimate sends it, and one canonical form is simpler to
// reason about. With Config.Insecure (development only) unsigned requests
// are accepted; a signed request is still verified when a secret is set.
// Neither the secret nor the signature header is ever logged.
//
// # Client address and proxies
//
// Config.AllowedCIDRs is checked against the client address. With
// Config.TrustedProxyHops = 0 that is the connection's peer address and
// X-Forwarded-For is ignored entirely, so a client cannot spoof it. With
// TrustedProxyHops = N, the handler sits behind a chain of N reverse
// proxies, the last of which connects to it, and each proxy appends the
// address of its own peer to X-Forwarded-For (nginx's
// $proxy_add_x_forwarded_for). The list then ends with
// "client, proxy1, ..., proxyN-1", and the client is the N-th entry from
// the right; everything further left was written by the client and is
// never read. A request whose list has fewer than N entries is refused.
// Only set N when the listener cannot be reached except through those
// proxies: a client connecting directly could write the whole list.
//
// # Timeouts
//
// NewServer's read timeout cuts off a client that trickles its body
// (Result "timeout"), and Recorder.Accept is given a context with a
// deadline of a few seconds.
//
// # Observability
//
// The Observer is told the event and Result of every request, for
// metrics; see Observer for what the event is before authentication.
// Accepted and duplicate deliveries are logged at info level, Recorder
// failures at warn, and everything else at debug, so that unauthenticated
// traffic cannot flood the log.
package webhook
