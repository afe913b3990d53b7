package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Delivery is one accepted GitHub delivery that concerns the watched
// repository and branch.
type Delivery struct {
	// ID is the X-GitHub-Delivery header: 1 to 100 characters of
	// [A-Za-z0-9-] (GitHub sends a UUID). Redeliveries keep the ID.
	ID string
	// Event is the X-GitHub-Event header; always "push" today.
	Event string
	// Repository is the payload's repository.full_name ("owner/name"),
	// spelled as GitHub sent it.
	Repository string
	// Ref is the pushed ref, always "refs/heads/" + Config.Branch.
	Ref string
	// HeadCommit is the payload's "after" (or head_commit.id when "after"
	// is absent): 40 or 64 lowercase hex digits, or "" when the payload
	// has neither. For a deletion of the branch it is all zeros.
	HeadCommit string
	// ReceivedAt is when the handler started serving the request.
	ReceivedAt time.Time
}

// Recorder durably accepts a delivery.
//
// Accept must be safe for concurrent use and return quickly: it records
// that the repository is dirty, it does not reconcile. It must honour ctx,
// which is the request's context with a deadline of a few seconds.
// duplicate == true means the ID was seen before (a redelivery): the
// handler answers 200 "duplicate" and nothing else happens. An error means
// the delivery was NOT accepted: the handler answers 503 so that GitHub
// shows a failed delivery, which can be redelivered.
type Recorder interface {
	// Accept records d; see Recorder for the meaning of its results.
	Accept(ctx context.Context, d Delivery) (duplicate bool, err error)
}

// Observer is told the outcome of every request the handler serves,
// exactly once, for metrics and logs. It may be nil.
//
// result is one of the Result constants. event is the X-GitHub-Event
// value once the request is authenticated (its signature verified, or
// Config.Insecure), and "" for a request rejected before that, so an
// unauthenticated client cannot invent label values.
type Observer func(event string, result Result)

// Result is the outcome of one request, as told to the Observer and
// written in the "status" field of the response (except ResultPing, whose
// status is "pong").
type Result string

// The results of a request and the HTTP status each answers with.
const (
	// ResultAccepted: a push to the watched branch was recorded (202).
	ResultAccepted Result = "accepted"
	// ResultDuplicate: the Recorder had seen the delivery ID (200).
	ResultDuplicate Result = "duplicate"
	// ResultIgnored: an authenticated delivery that does not concern the
	// watched repository and branch, or an event other than push and
	// ping (200). Nothing is recorded.
	ResultIgnored Result = "ignored"
	// ResultPing: GitHub's ping event, sent when the hook is created (200).
	ResultPing Result = "ping"
	// ResultBadSignature: X-Hub-Signature-256 is malformed, repeated or
	// does not match the body (401).
	ResultBadSignature Result = "bad_signature"
	// ResultMissingSignature: no X-Hub-Signature-256 header (401). A
	// request with only the SHA-1 X-Hub-Signature header counts here.
	ResultMissingSignature Result = "missing_signature"
	// ResultTooLarge: the body is larger than Config.MaxBody (413).
	ResultTooLarge Result = "too_large"
	// ResultBadRequest: missing or invalid GitHub headers, an unsupported
	// content type (415), an unreadable body or a malformed payload (400).
	ResultBadRequest Result = "bad_request"
	// ResultForbidden: the client address is not in Config.AllowedCIDRs (403).
	ResultForbidden Result = "forbidden"
	// ResultMethodNotAllowed: a method other than POST (405).
	ResultMethodNotAllowed Result = "method_not_allowed"
	// ResultUnavailable: the Recorder returned an error (503).
	ResultUnavailable Result = "unavailable"
	// ResultTimeout: the body did not arrive within the server's read
	// timeout (408, usually never seen by the client).
	ResultTimeout Result = "timeout"
)

// Results yields every Result, in the order they are declared above, for
// pre-registering metric label values:
//
//	for _, r := range webhook.Results { ... }
//
// It is an iterator (iter.Seq2[int, Result]) rather than a slice variable
// so that no caller can change the list.
func Results(yield func(int, Result) bool) {
	all := [...]Result{
		ResultAccepted, ResultDuplicate, ResultIgnored, ResultPing,
		ResultBadSignature, ResultMissingSignature, ResultTooLarge, ResultBadRequest,
		ResultForbidden, ResultMethodNotAllowed, ResultUnavailable, ResultTimeout,
	}
	for i, r := range all {
		if !yield(i, r) {
			return
		}
	}
}

// DefaultMaxBody is the body limit when Config.MaxBody is 0: 25 MiB,
// GitHub's cap on webhook payloads.
const DefaultMaxBody int64 = 25 << 20

// defaultAcceptTimeout bounds Recorder.Accept, so that the handler
// answers well within GitHub's 10 s even when the Recorder is stuck.
const defaultAcceptTimeout = 5 * time.Second

// Config configures the handler.
type Config struct {
	// Secret is the webhook secret. It may be empty only with Insecure.
	Secret []byte
	// Insecure accepts unsigned deliveries (development only). With a
	// Secret, a delivery that is signed is still verified; without one,
	// signatures are not looked at.
	Insecure bool
	// Repository is the GitHub "owner/name" whose pushes count, compared
	// case-insensitively. Empty accepts pushes from any repository whose
	// hook is signed with Secret: only leave it empty when the secret is
	// used by a single repository.
	Repository string
	// Branch is the watched branch name, e.g. "main" (not "refs/heads/main").
	// Required.
	Branch string
	// MaxBody is the largest body accepted, in bytes; 0 means
	// DefaultMaxBody. A larger body is answered 413 without being read
	// further.
	MaxBody int64
	// AllowedCIDRs, when not empty, restricts the client address (see
	// TrustedProxyHops); other clients get 403 before the body is read.
	// Empty allows any source.
	AllowedCIDRs []netip.Prefix
	// TrustedProxyHops is the number of reverse proxies in front of the
	// handler. 0 takes the client address from the connection and ignores
	// X-Forwarded-For. N > 0 takes the N-th X-Forwarded-For entry from the
	// right, the one the first proxy appended (see the package
	// documentation).
	TrustedProxyHops int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// handler is the http.Handler NewHandler returns.
type handler struct {
	secret        []byte
	insecure      bool
	repository    string
	ref           string
	maxBody       int64
	source        sourceFilter
	now           func() time.Time
	rec           Recorder
	obs           Observer
	log           *slog.Logger
	acceptTimeout time.Duration
}

// NewHandler returns the webhook handler for cfg. Mount it at the webhook
// path (http.ServeMux.Handle(path, h)); it serves every request it is
// given as a delivery and does no routing of its own. obs may be nil; log
// may be nil to discard logs.
//
// It returns an error when cfg has no secret and is not Insecure, when rec
// is nil, or when a field is invalid.
func NewHandler(cfg Config, rec Recorder, obs Observer, log *slog.Logger) (http.Handler, error) {
	if len(cfg.Secret) == 0 && !cfg.Insecure {
		return nil, errors.New("refusing to start without a webhook secret; set [webhook] secret_file or, for development only, insecure_no_secret = true")
	}
	if rec == nil {
		return nil, errors.New("webhook recorder is nil")
	}
	var errs []error
	if cfg.Repository != "" && !validRepository(cfg.Repository) {
		errs = append(errs, fmt.Errorf("webhook repository %q is not of the form owner/name", cfg.Repository))
	}
	switch {
	case cfg.Branch == "":
		errs = append(errs, errors.New("webhook branch is required"))
	case strings.HasPrefix(cfg.Branch, "refs/"):
		errs = append(errs, fmt.Errorf("webhook branch %q must be a branch name such as main, not a ref", cfg.Branch))
	case !validBranch(cfg.Branch):
		errs = append(errs, fmt.Errorf("webhook branch %q is not a valid branch name", cfg.Branch))
	}
	if cfg.MaxBody < 0 {
		errs = append(errs, fmt.Errorf("webhook max body %d is negative", cfg.MaxBody))
	}
	if cfg.TrustedProxyHops < 0 {
		errs = append(errs, fmt.Errorf("webhook trusted proxy hops %d is negative", cfg.TrustedProxyHops))
	}
	for i, p := range cfg.AllowedCIDRs {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("webhook allowed CIDR #%d is not a valid prefix", i+1))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("invalid webhook configuration: %w", err)
	}
	h := &handler{
		secret:        append([]byte(nil), cfg.Secret...),
		insecure:      cfg.Insecure,
		repository:    cfg.Repository,
		ref:           "refs/heads/" + cfg.Branch,
		maxBody:       cfg.MaxBody,
		source:        sourceFilter{allowed: append([]netip.Prefix(nil), cfg.AllowedCIDRs...), hops: cfg.TrustedProxyHops},
		now:           cfg.Now,
		rec:           rec,
		obs:           obs,
		log:           log,
		acceptTimeout: defaultAcceptTimeout,
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBody
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h, nil
}

// outcome is what serving one request came to.
type outcome struct {
	status   int
	result   Result
	event    string // authenticated event, or ""
	delivery string // validated delivery ID, or ""
	reason   string // constant text for the response and the log
	err      error  // the Recorder's error, for ResultUnavailable
	d        *Delivery
}

// ServeHTTP serves one delivery.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o := h.serve(w, r, h.now())
	h.respond(w, o)
	h.report(r, o)
	if h.obs != nil {
		h.obs(o.event, o.result)
	}
}

// serve checks and handles the request, cheapest checks first: nothing
// is read from the body before the source, the method and the headers
// have passed.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, now time.Time) outcome {
	if !h.source.allows(r) {
		return reject(http.StatusForbidden, ResultForbidden, "source address not allowed")
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return reject(http.StatusMethodNotAllowed, ResultMethodNotAllowed, "only POST is allowed")
	}

	// The signature header is checked for shape now, against the body later.
	var digest []byte
	switch sigs := r.Header.Values("X-Hub-Signature-256"); {
	case len(sigs) > 1:
		return reject(http.StatusUnauthorized, ResultBadSignature, "more than one X-Hub-Signature-256 header")
	case len(sigs) == 0 && !h.insecure:
		if r.Header.Get("X-Hub-Signature") != "" {
			return reject(http.StatusUnauthorized, ResultMissingSignature, "X-Hub-Signature-256 header required; SHA-1 signatures are not accepted")
		}
		return reject(http.StatusUnauthorized, ResultMissingSignature, "missing X-Hub-Signature-256 header")
	case len(sigs) == 1 && len(h.secret) > 0:
		d, ok := parseSignature(sigs[0])
		if !ok {
			return reject(http.StatusUnauthorized, ResultBadSignature, "malformed X-Hub-Signature-256 header; want sha256= and 64 lowercase hex digits")
		}
		digest = d[:]
	}

	event, msg := singleHeader(r, "X-GitHub-Event", validEvent)
	if msg != "" {
		return reject(http.StatusBadRequest, ResultBadRequest, msg)
	}
	id, msg := singleHeader(r, "X-GitHub-Delivery", validDeliveryID)
	if msg != "" {
		return reject(http.StatusBadRequest, ResultBadRequest, msg+"; want 1 to 100 characters of A-Z, a-z, 0-9 and -")
	}
	form, ok := contentType(r)
	if !ok {
		return reject(http.StatusUnsupportedMediaType, ResultBadRequest, "unsupported content type; use application/json or application/x-www-form-urlencoded")
	}
	if r.ContentLength > h.maxBody {
		return reject(http.StatusRequestEntityTooLarge, ResultTooLarge, "body too large")
	}

	body, o, ok := h.readBody(w, r)
	if !ok {
		return o
	}
	if digest != nil && !hmacEqual(h.secret, body, digest) {
		return reject(http.StatusUnauthorized, ResultBadSignature, "signature does not match the body")
	}

	// Authenticated from here on.
	o = outcome{event: event, delivery: id}
	switch event {
	case "ping":
		o.status, o.result, o.reason = http.StatusOK, ResultPing, "pong"
		return o
	case "push":
		return h.push(r.Context(), o, body, form, now)
	default:
		o.status, o.result, o.reason = http.StatusOK, ResultIgnored, "event not handled"
		return o
	}
}

// maxPrealloc bounds the buffer allocated from Content-Length before
// any of the body has arrived, so that a client announcing a large body
// and sending nothing does not make the handler reserve it.
const maxPrealloc = 1 << 20

// readBody reads the whole body, at most h.maxBody bytes.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, outcome, bool) {
	size := int64(0)
	if r.ContentLength > 0 {
		size = min(r.ContentLength, maxPrealloc)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+bytes.MinRead))
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err == nil {
		return buf.Bytes(), outcome{}, true
	}
	var tooLarge *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &tooLarge):
		return nil, reject(http.StatusRequestEntityTooLarge, ResultTooLarge, "body too large"), false
	case errors.As(err, &netErr) && netErr.Timeout():
		return nil, reject(http.StatusRequestTimeout, ResultTimeout, "timed out reading the body"), false
	default:
		return nil, reject(http.StatusBadRequest, ResultBadRequest, "could not read the body"), false
	}
}

// pushPayload holds the only fields of a push payload the handler uses.
type pushPayload struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	HeadCommit *struct {
		ID string `json:"id"`
	} `json:"head_commit"`
}

// push handles an authenticated push event.
func (h *handler) push(ctx context.Context, o outcome, body []byte, form bool, now time.Time) outcome {
	payload := body
	if form {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			o.status, o.result, o.reason = http.StatusBadRequest, ResultBadRequest, "malformed form body"
			return o
		}
		p := vals["payload"]
		if len(p) != 1 {
			o.status, o.result, o.reason = http.StatusBadRequest, ResultBadRequest, "form body needs exactly one payload field"
			return o
		}
		payload = []byte(p[0])
	}
	var p pushPayload
	if !isJSONObject(payload) || json.Unmarshal(payload, &p) != nil {
		o.status, o.result, o.reason = http.StatusBadRequest, ResultBadRequest, "malformed push payload"
		return o
	}
	if !h.watches(p.Repository.FullName) || p.Ref != h.ref {
		o.status, o.result, o.reason = http.StatusOK, ResultIgnored, "not the watched repository and branch"
		return o
	}
	commit := p.After
	if commit == "" && p.HeadCommit != nil {
		commit = p.HeadCommit.ID
	}
	if commit != "" && !validCommit(commit) {
		o.status, o.result, o.reason = http.StatusBadRequest, ResultBadRequest, "malformed commit id in push payload"
		return o
	}
	d := Delivery{
		ID:         o.delivery,
		Event:      "push",
		Repository: p.Repository.FullName,
		Ref:        p.Ref,
		HeadCommit: commit,
		ReceivedAt: now,
	}
	o.d = &d
	if p.Deleted {
		// Accepted like any push: the repository changed, and the next
		// pass fails to fetch the branch and reports it.
		o.reason = "branch deleted"
	}
	ctx, cancel := context.WithTimeout(ctx, h.acceptTimeout)
	defer cancel()
	dup, err := h.rec.Accept(ctx, d)
	switch {
	case err != nil:
		o.status, o.result, o.reason, o.err = http.StatusServiceUnavailable, ResultUnavailable, "could not record the delivery; redeliver it later", err
	case dup:
		o.status, o.result = http.StatusOK, ResultDuplicate
	default:
		o.status, o.result = http.StatusAccepted, ResultAccepted
	}
	return o
}

// watches reports whether name is the watched repository.
func (h *handler) watches(name string) bool {
	if h.repository == "" {
		return validRepository(name)
	}
	return strings.EqualFold(name, h.repository)
}

// response is the JSON body of every answer.
type response struct {
	Status   string `json:"status"`
	Delivery string `json:"delivery,omitempty"`
	Error    string `json:"error,omitempty"`
}

// respond writes the answer for o.
func (h *handler) respond(w http.ResponseWriter, o outcome) {
	resp := response{Status: string(o.result)}
	switch {
	case o.result == ResultPing:
		resp.Status = "pong"
	case o.result == ResultAccepted:
		resp.Delivery = o.delivery
	case o.status >= 400:
		resp.Error = o.reason
	}
	b, err := json.Marshal(resp)
	if err != nil { // cannot happen: only strings
		b = []byte(`{"status":"internal_error"}`)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(o.status)
	w.Write(append(b, '\n'))
}

// report logs the outcome. Rejections are logged at debug level only, so
// that unauthenticated clients cannot flood the log; the Observer counts
// them. The signature header and the body are never logged.
func (h *handler) report(r *http.Request, o outcome) {
	attrs := []any{"result", string(o.result), "remote", r.RemoteAddr}
	if o.event != "" {
		attrs = append(attrs, "event", o.event)
	}
	if o.delivery != "" {
		attrs = append(attrs, "delivery", o.delivery)
	}
	if o.d != nil {
		attrs = append(attrs, "repository", o.d.Repository, "ref", o.d.Ref, "commit", o.d.HeadCommit)
	}
	switch o.result {
	case ResultAccepted, ResultDuplicate:
		if o.reason != "" {
			attrs = append(attrs, "note", o.reason)
		}
		h.log.Info("webhook delivery "+string(o.result), attrs...)
	case ResultUnavailable:
		h.log.Warn("webhook delivery not recorded; GitHub will show it as failed", append(attrs, "err", o.err)...)
	default:
		h.log.Debug("webhook delivery "+string(o.result), append(attrs, "reason", o.reason)...)
	}
}

// reject returns the outcome of a request rejected before it was
// authenticated.
func reject(status int, result Result, reason string) outcome {
	return outcome{status: status, result: result, reason: reason}
}

// hmacEqual reports whether digest is the HMAC-SHA256 of body under
// secret, in constant time.
func hmacEqual(secret, body, digest []byte) bool {
	return hmac.Equal(mac(secret, body), digest)
}

// singleHeader returns the value of a header that must appear exactly
// once with a value valid reports as valid, or a message saying what is
// wrong with it. The message never includes the value.
func singleHeader(r *http.Request, name string, valid func(string) bool) (value, msg string) {
	switch v := r.Header.Values(name); {
	case len(v) == 0 || len(v) == 1 && v[0] == "":
		return "", "missing " + name + " header"
	case len(v) > 1:
		return "", "more than one " + name + " header"
	case !valid(v[0]):
		return "", "invalid " + name + " header"
	default:
		return v[0], ""
	}
}

// contentType reports whether the request has a supported content type,
// and whether it is the form encoding.
func contentType(r *http.Request) (form, ok bool) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return false, false
	}
	switch mt {
	case "application/json":
		return false, true
	case "application/x-www-form-urlencoded":
		return true, true
	}
	return false, false
}

// isJSONObject reports whether b, after leading white space, starts an
// object (so that "null" is not read as an empty payload).
func isJSONObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// validDeliveryID reports whether s is 1 to 100 characters of [A-Za-z0-9-].
func validDeliveryID(s string) bool {
	if len(s) == 0 || len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// validEvent reports whether s is 1 to 64 characters of [A-Za-z0-9_.-]
// (GitHub event names are lowercase words joined by underscores).
func validEvent(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// validRepository reports whether s looks like a GitHub "owner/name".
func validRepository(s string) bool {
	owner, name, ok := strings.Cut(s, "/")
	if !ok || owner == "" || name == "" || len(s) > 200 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' && c != '/' {
			return false
		}
	}
	return !strings.Contains(name, "/")
}

// validBranch reports whether s can be a git branch name: printable ASCII
// without spaces or the characters git forbids in refs.
func validBranch(s string) bool {
	if len(s) > 255 || strings.HasPrefix(s, "-") || strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".lock") ||
		strings.Contains(s, "..") || strings.Contains(s, "//") || strings.Contains(s, "@{") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("~^:?*[\\", c) >= 0 {
			return false
		}
	}
	return true
}

// validCommit reports whether s is a SHA-1 or SHA-256 object name in
// lowercase hex.
func validCommit(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isAlnum reports whether c is an ASCII letter or digit.
func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
