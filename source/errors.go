package source

import (
	"errors"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Sentinel errors classifying why Sync or Head failed. Test for them with
// errors.Is. All four are permanent: retrying without an operator changing
// the configuration, the credentials or the remote repository gives the same
// result, so a caller should report them and back off hard rather than retry
// quickly. Every other error (network failures, timeouts, server errors,
// context cancellation, local I/O errors) is transient and worth retrying;
// IsPermanent tells the two classes apart.
var (
	// ErrBranchNotFound means the remote repository has no branch of the
	// configured name, or the repository is empty.
	ErrBranchNotFound = errors.New("branch not found")

	// ErrAuth means the remote rejected or required credentials (HTTP 401 or
	// 403, SSH public key refused) or the SSH host key could not be verified
	// against known_hosts.
	ErrAuth = errors.New("authentication failed")

	// ErrNotRepository means the URL does not point at a git repository: a
	// local path that does not exist or is a plain directory, or a remote
	// that reports the repository does not exist.
	ErrNotRepository = errors.New("not a git repository")

	// ErrConfig means the Repo is unusable as configured: a malformed or
	// unsupported URL, a missing, unreadable or group/world-accessible
	// token or key file, an unparsable SSH key, credentials that do not fit
	// the URL's scheme, or a Dir that is not a sitesync checkout.
	ErrConfig = errors.New("invalid source configuration")

	// ErrNoRevision is returned by Head when the checkout directory does not
	// exist yet or holds no synced commit. It is not a failure of Sync and is
	// not permanent: the first successful Sync clears it.
	ErrNoRevision = errors.New("no revision checked out")
)

// IsPermanent reports whether err is classified as permanent: it wraps
// ErrBranchNotFound, ErrAuth, ErrNotRepository or ErrConfig. Any other
// non-nil error is transient. IsPermanent(nil) is false.
func IsPermanent(err error) bool {
	return errors.Is(err, ErrBranchNotFound) ||
		errors.Is(err, ErrAuth) ||
		errors.Is(err, ErrNotRepository) ||
		errors.Is(err, ErrConfig)
}

// classify maps an error from go-git's transports to one of the permanent
// sentinels, or returns nil when the error is transient.
func classify(err error) error {
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, transport.ErrAuthenticationRequired),
		errors.Is(err, transport.ErrAuthorizationFailed),
		errors.Is(err, transport.ErrInvalidAuthMethod),
		errors.As(err, &keyErr),
		errors.As(err, &revoked):
		return ErrAuth
	case errors.Is(err, transport.ErrRepositoryNotFound):
		return ErrNotRepository
	case errors.Is(err, transport.ErrEmptyRemoteRepository),
		errors.Is(err, git.NoMatchingRefSpecError{}):
		return ErrBranchNotFound
	}
	// The SSH client and go-git's known_hosts loader do not export typed
	// errors for these; match their stable messages.
	msg := err.Error()
	for _, s := range []string{
		"ssh: unable to authenticate",
		"unable to find any valid known_hosts file",
		"knownhosts: key is unknown",
		"knownhosts: key mismatch",
	} {
		if strings.Contains(msg, s) {
			return ErrAuth
		}
	}
	return nil
}

// redactedError carries an underlying error whose message has been redacted.
// It deliberately has no Unwrap method, so errors.As cannot hand a caller
// the raw error (whose message may hold a credential); errors.Is still sees
// through it via the Is method, so context.DeadlineExceeded, go-git's
// sentinels and the like remain testable.
type redactedError struct {
	msg string
	err error
}

// Error returns the redacted message.
func (e *redactedError) Error() string { return e.msg }

// Is reports whether the underlying error matches target.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// redactErr returns err with every URL credential and every secret removed
// from its message, keeping errors.Is matching of the original.
func redactErr(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: tidy(Redact(err.Error(), secrets...)), err: err}
}

// tidy puts a message from a server or library on one line and drops the
// trailing separator left by an empty server reason
// ("repository not found: ").
func tidy(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	return strings.TrimSuffix(msg, ":")
}
