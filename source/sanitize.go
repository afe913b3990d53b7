package source

import (
	"net/url"
	"sort"
	"strings"
)

// mask replaces redacted credentials.
const mask = "***"

// Sanitize returns the URL u with its credentials removed, safe to log or
// put in an error: a password in the userinfo becomes "***"
// ("https://user:secret@host/x" gives "https://user:***@host/x"), and for
// http and https URLs a username without a password is replaced by "***"
// too, because hosts such as GitHub accept a bare token in that position
// ("https://ghp_abc@host/x" gives "https://***@host/x"). SSH user names
// (git@host:org/repo.git, ssh://git@host/x) are not secrets and are kept.
// A string that does not parse as a URL is passed through Redact, so
// Sanitize never returns the credential of a URL embedded in it.
func Sanitize(u string) string {
	parsed, err := url.Parse(u)
	if err != nil || parsed.Scheme == "" || parsed.Opaque != "" {
		return Redact(u)
	}
	if parsed.User == nil {
		return u
	}
	var userinfo string
	if _, has := parsed.User.Password(); has {
		userinfo = url.User(parsed.User.Username()).String() + ":" + mask
	} else if isHTTPScheme(parsed.Scheme) {
		userinfo = mask
	} else {
		return u
	}
	// url.URL.String would percent-encode the mask; splice it in instead.
	parsed.User = nil
	s := parsed.String()
	prefix := parsed.Scheme + "://"
	if !strings.HasPrefix(s, prefix) {
		return Redact(u)
	}
	return prefix + userinfo + "@" + s[len(prefix):]
}

// Redact returns s with the credentials of every URL in it masked as
// Sanitize does, and with every occurrence of each non-empty secret (raw
// and in its URL-escaped forms) replaced by "***". It works on arbitrary
// text such as error messages and command output.
func Redact(s string, secrets ...string) string {
	s = redactURLs(s)
	var forms []string
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		forms = append(forms, secret, url.QueryEscape(secret), url.PathEscape(secret),
			strings.TrimPrefix(url.UserPassword("", secret).String(), ":"))
	}
	// Longest first, so that a secret containing another is masked whole.
	sort.Slice(forms, func(i, j int) bool { return len(forms[i]) > len(forms[j]) })
	for _, f := range forms {
		if f != "" {
			s = strings.ReplaceAll(s, f, mask)
		}
	}
	return s
}

// SanitizeError returns err's message passed through Redact with the given
// secrets, or "" for a nil error. It is meant for logging errors that did
// not come from this package (this package's own errors are already
// redacted).
func SanitizeError(err error, secrets ...string) string {
	if err == nil {
		return ""
	}
	return Redact(err.Error(), secrets...)
}

// redactURLs masks the userinfo credentials of every "scheme://" URL in s.
func redactURLs(s string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, "://")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		scheme := schemeBefore(s[:i])
		start := i + len("://")
		b.WriteString(s[:start])
		rest := s[start:]
		end := strings.IndexFunc(rest, isAuthorityEnd)
		if end < 0 {
			end = len(rest)
		}
		authority := rest[:end]
		at := strings.LastIndexByte(authority, '@')
		if at < 0 {
			s = rest
			continue
		}
		userinfo := authority[:at]
		switch {
		case strings.Contains(userinfo, ":"):
			user, _, _ := strings.Cut(userinfo, ":")
			b.WriteString(user + ":" + mask)
		case isHTTPScheme(scheme):
			b.WriteString(mask)
		default:
			b.WriteString(userinfo)
		}
		s = rest[at:]
	}
}

// schemeBefore returns the URL scheme that ends at the end of s, lowercased,
// or "" if s does not end in scheme characters.
func schemeBefore(s string) string {
	i := len(s)
	for i > 0 {
		c := s[i-1]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.' {
			i--
			continue
		}
		break
	}
	return strings.ToLower(s[i:])
}

// isAuthorityEnd reports whether r ends the authority part of a URL found in
// free text.
func isAuthorityEnd(r rune) bool {
	switch r {
	case '/', '?', '#', '"', '\'', '`', '<', '>', '\\', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// isHTTPScheme reports whether scheme is http or https (case-insensitive).
func isHTTPScheme(scheme string) bool {
	return strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")
}
