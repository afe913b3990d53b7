package broker

import (
	"net/url"
	"strings"
)

// RedactURL returns rawURL with the password of its user information
// replaced by "***", e.g. amqp://user:pass@host/vhost becomes
// amqp://user:***@host/vhost. A URL without a password is returned
// unchanged. It works on malformed URLs too (a password with an unescaped
// '/', '?', '#' or '@'), erring on the side of hiding too much.
func RedactURL(rawURL string) string {
	prefix, userinfo, suffix, ok := splitUserinfo(rawURL)
	if !ok {
		return rawURL
	}
	user, _, hasPassword := strings.Cut(userinfo, ":")
	if !hasPassword {
		return rawURL
	}
	return prefix + user + ":***" + suffix
}

// splitUserinfo splits rawURL into everything up to and including "://",
// the user information, and the rest starting at the '@' that ends the user
// information. ok is false when there is no user information.
func splitUserinfo(rawURL string) (prefix, userinfo, suffix string, ok bool) {
	i := strings.Index(rawURL, "://")
	if i < 0 {
		return "", "", "", false
	}
	prefix, rest := rawURL[:i+3], rawURL[i+3:]
	// A well-formed authority ends at the first '/', '?' or '#', and its
	// user information at the last '@' before that, as in net/url.
	authority := rest
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		authority = rest[:j]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		// Malformed: the password may hold an unescaped '/', '?' or '#'.
		at = strings.LastIndex(rest, "@")
	}
	if at < 0 {
		return "", "", "", false
	}
	return prefix, rest[:at], rest[at:], true
}

// redactor removes one URL's password from arbitrary text, such as the
// message of an error that quotes the URL (net/url parse errors do).
type redactor struct {
	// pairs holds old, new replacement pairs, the longest first.
	pairs []string
}

// newRedactor returns a redactor for the password in rawURL, if any.
func newRedactor(rawURL string) redactor {
	_, userinfo, _, ok := splitUserinfo(rawURL)
	if !ok {
		return redactor{}
	}
	user, pass, hasPassword := strings.Cut(userinfo, ":")
	if !hasPassword || pass == "" {
		return redactor{}
	}
	pairs := []string{rawURL, RedactURL(rawURL), userinfo + "@", user + ":***@"}
	secrets := []string{pass}
	if dec, err := url.PathUnescape(pass); err == nil && dec != pass {
		secrets = append(secrets, dec)
		if udec, err := url.PathUnescape(user); err == nil {
			pairs = append(pairs, udec+":"+dec+"@", udec+":***@")
		}
	}
	// A bare password is only replaced when it is long enough not to
	// mangle ordinary words of the message; the forms above always are.
	for _, s := range secrets {
		if len(s) >= 4 {
			pairs = append(pairs, s, "***")
		}
	}
	return redactor{pairs: pairs}
}

// string returns s without the password.
func (r redactor) string(s string) string {
	if len(r.pairs) == 0 {
		return s
	}
	return strings.NewReplacer(r.pairs...).Replace(s)
}

// error returns err unchanged when its message does not contain the
// password, and otherwise an error with the same message minus the
// password. Such an error does not unwrap: the wrapped error would reveal
// the password again.
func (r redactor) error(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := r.string(msg); clean != msg {
		return redactedError(clean)
	}
	return err
}

// redactedError is an error message from which a password was removed.
type redactedError string

// Error implements error.
func (e redactedError) Error() string { return string(e) }
