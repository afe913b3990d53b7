// Package state turns a site repository into the resolved desired state of
// one host: it reads the desired-state file (sites.yaml), the raw nginx
// files it references and the snippets/ directory, validates everything,
// applies defaults and the host's include/exclude filter, and returns a
// *Desired (see Load and LoadFile).
//
// # File format
//
// The desired-state file is YAML with camelCase keys:
//
//	version: 1                  # required, must be 1
//	defaults:                   # optional; fills keys a site leaves unset
//	  tls: letsencrypt          # letsencrypt | none (built-in: none)
//	  httpsRedirect: true       # built-in: true; TLS sites only
//	  http2: true               # built-in: false
//	  clientMaxBodySize: 10m    # built-in: "" (nginx default)
//	  includes: [headers.conf]  # prepended to every site's includes
//	  enabled: true             # built-in: true
//	sites:
//	  - name: blog
//	    serverNames: [blog.example.org]
//	    locations:              # exactly one of locations, redirect, raw
//	      - path: /
//	        proxyPass: http://127.0.0.1:8080
//	        websocket: true
//	      - path: /static/
//	        root: /srv/blog/static
//	      - path: /old
//	        return: 301 https://blog.example.org/new
//	  - name: old
//	    serverNames: [old.example.org]
//	    redirect: https://new.example.org
//	  - name: legacy
//	    raw: sites/legacy.conf  # names come from its server_name directives
//
// Decoding is strict: unknown and duplicate keys, values of the wrong type,
// YAML aliases, custom tags and multiple documents are errors. A null value
// (a key with nothing after the colon) leaves an optional key unset.
//
// # Errors
//
// Load reports every problem at once as an Errors value, sorted by file and
// line; each *Error prints as "file:line: message", pointing at the line of
// the offending value. Problems in a raw file's syntax are reported at the
// raw file's own line, problems with snippets at "snippets/<name>", and
// invalid filter patterns without a position. Validation covers every
// declared site, including disabled and filtered-out ones, so bad input
// never hides behind a filter.
//
// # Safety invariant
//
// The templates that render nginx configuration do not quote or escape
// values, so this package is the safety boundary: every string in a
// *Desired returned without error that can reach a rendered file (site
// names, server names, includes, client_max_body_size, location paths,
// proxyPass, root, return, redirect, raw paths and snippet names) consists
// only of printable ASCII characters and contains none of
//
//	whitespace (space, tab, newline, ...), control characters, NUL,
//	; { } " ' \ $ #
//
// with one exception: Location.Return may contain a single space separating
// the status code from its target. Each field is further restricted to a
// narrower pattern (host names follow RFC 1123, paths and URLs a small safe
// alphabet), which is documented on the validating functions. Raw files and
// snippet contents are passed through verbatim by design and are not
// covered; only their names are. Anyone adding a field to the model must
// validate it to the same standard before it reaches a template.
//
// # Filesystem safety
//
// Load reads through an fs.FS that should come from an *os.Root (LoadFile
// does this), so no path can leave the repository even through symbolic
// links. On top of that, paths are checked with fs.ValidPath and may not
// contain "..", every file must be a regular file of at most 4 MiB, and
// symbolic links are refused for the desired-state file, raw files (and
// the directories leading to them) and the snippets/ directory and its
// entries.
package state
