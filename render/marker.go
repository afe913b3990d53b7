package render

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Kind says what a managed file belongs to.
type Kind string

const (
	// KindSite is a site's conf.d file.
	KindSite Kind = "site"
	// KindShared is the shared conf.d file (map definitions, default server).
	KindShared Kind = "shared"
	// KindSnippet is a file in the snippets directory.
	KindSnippet Kind = "snippet"
)

const (
	markerPrefix = "# sitesync:managed "
	markerSuffix = " (do not edit: changes are reverted)"
)

// Header is what a managed file's marker line says.
type Header struct {
	Kind Kind
	Name string
	// Sum is the hex SHA-256 the marker records for the file's body.
	Sum string
}

// WithMarker returns body preceded by the marker line for (kind, name).
func WithMarker(kind Kind, name string, body []byte) []byte {
	sum := sha256.Sum256(body)
	var b bytes.Buffer
	b.Grow(len(markerPrefix) + len(markerSuffix) + len(name) + 90 + len(body))
	b.WriteString(markerPrefix)
	b.WriteString(string(kind))
	b.WriteByte('=')
	b.WriteString(name)
	b.WriteString(" sha256=")
	b.WriteString(hex.EncodeToString(sum[:]))
	b.WriteString(markerSuffix)
	b.WriteByte('\n')
	b.Write(body)
	return b.Bytes()
}

// ParseHeader reads the marker line at the start of data. ok is false when
// data does not start with a well-formed marker, meaning the file is not
// sitesync's.
func ParseHeader(data []byte) (h Header, ok bool) {
	line, _, found := bytes.Cut(data, []byte{'\n'})
	if !found || !bytes.HasPrefix(line, []byte(markerPrefix)) {
		return Header{}, false
	}
	rest, ok := strings.CutSuffix(string(line[len(markerPrefix):]), markerSuffix)
	if !ok {
		return Header{}, false
	}
	fields := strings.Fields(rest)
	if len(fields) != 2 {
		return Header{}, false
	}
	kind, name, ok1 := strings.Cut(fields[0], "=")
	sum, ok2 := strings.CutPrefix(fields[1], "sha256=")
	if !ok1 || !ok2 || name == "" || len(sum) != 64 {
		return Header{}, false
	}
	switch Kind(kind) {
	case KindSite, KindShared, KindSnippet:
	default:
		return Header{}, false
	}
	return Header{Kind: Kind(kind), Name: name, Sum: sum}, true
}

// Intact reports whether data's body still matches the checksum in its
// marker, i.e. nobody edited the file by hand since sitesync wrote it.
func Intact(data []byte) bool {
	h, ok := ParseHeader(data)
	if !ok {
		return false
	}
	_, body, _ := bytes.Cut(data, []byte{'\n'})
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:]) == h.Sum
}
