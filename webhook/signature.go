package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// signaturePrefix starts every X-Hub-Signature-256 header value.
const signaturePrefix = "sha256="

// Sign returns the X-Hub-Signature-256 value GitHub would send for body:
// "sha256=" followed by the lowercase hex HMAC-SHA256 of body keyed with
// secret. It is meant for tests and benchmark clients.
func Sign(secret, body []byte) string {
	return signaturePrefix + hex.EncodeToString(mac(secret, body))
}

// Verify reports whether header is a valid X-Hub-Signature-256 value for
// body under secret. The header must be exactly "sha256=" followed by 64
// lowercase hex digits, the form GitHub sends; uppercase hex, other
// prefixes and surrounding text are rejected. The digests are compared
// with hmac.Equal, in constant time.
func Verify(secret, body []byte, header string) bool {
	want, ok := parseSignature(header)
	if !ok {
		return false
	}
	return hmac.Equal(mac(secret, body), want[:])
}

// mac returns the HMAC-SHA256 of body keyed with secret.
func mac(secret, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(body)
	return h.Sum(nil)
}

// parseSignature decodes a canonical X-Hub-Signature-256 value. It only
// looks at the shape of the header, never at the secret, so rejecting a
// malformed value early reveals nothing about the expected digest.
func parseSignature(header string) (digest [sha256.Size]byte, ok bool) {
	if len(header) != len(signaturePrefix)+2*sha256.Size || header[:len(signaturePrefix)] != signaturePrefix {
		return digest, false
	}
	h := header[len(signaturePrefix):]
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return digest, false
		}
	}
	if _, err := hex.Decode(digest[:], []byte(h)); err != nil {
		return digest, false
	}
	return digest, true
}
