package state

// TLSMode says how a site gets its certificate.
type TLSMode string

const (
	// TLSNone serves the site over plain HTTP only.
	TLSNone TLSMode = "none"
	// TLSLetsEncrypt obtains a certificate with certbot's webroot
	// authenticator and serves the site over HTTPS.
	TLSLetsEncrypt TLSMode = "letsencrypt"
)

// Desired is the whole desired state of one host, as declared by the site
// repository: every site after defaults are applied and the host's
// include/exclude filter ran, plus the snippets to sync. It is immutable
// once returned by Load.
type Desired struct {
	// File is the desired-state file's path relative to the repository
	// root, as used in error messages.
	File string
	// Sites holds the sites in file order. Disabled and filtered-out sites
	// are not in it; see Skipped.
	Sites []Site
	// Skipped names the sites declared in the file that this host does not
	// deploy (disabled or filtered out), with the reason.
	Skipped []SkippedSite
	// Snippets maps a file name in the repository's snippets/ directory to
	// its content. Names never contain a path separator.
	Snippets map[string][]byte
}

// SkippedSite is a declared site that is not deployed on this host.
type SkippedSite struct {
	Name   string
	Reason string // "disabled" or "filtered"
}

// Site is one resolved virtual host: defaults applied, values validated.
// Exactly one of Locations, Redirect and Raw is set.
type Site struct {
	// Name is unique, matches [a-z0-9][a-z0-9.-]*, names the conf.d file
	// (<name>.conf) and the certbot --cert-name.
	Name string
	// ServerNames are the host names nginx answers for, validated host
	// names. For raw sites they are read from the raw file's server_name
	// directives (wildcards, regexes and "_" are dropped).
	ServerNames []string
	// TLS is the certificate mode.
	TLS TLSMode
	// HTTPSRedirect makes the port-80 server redirect to HTTPS (TLS sites only).
	HTTPSRedirect bool
	// HTTP2 enables HTTP/2 on the TLS listener.
	HTTP2 bool
	// ClientMaxBodySize is nginx's client_max_body_size value ("" = nginx default).
	ClientMaxBodySize string
	// Includes names snippet files included in each server block.
	Includes []string
	// Locations are the site's location blocks.
	Locations []Location
	// Redirect is a whole-site redirect target (absolute http(s) URL); the
	// request URI is appended.
	Redirect string
	// RawPath is the raw file's path in the repository; Raw its content,
	// passed through verbatim.
	RawPath string
	Raw     []byte
	// Line is the line in the desired-state file where the site starts.
	Line int
}

// Location is one nginx location block. Exactly one of ProxyPass, Root and
// Return is set.
type Location struct {
	// Path is a URI prefix beginning with "/".
	Path string
	// ProxyPass is an http or https URL.
	ProxyPass string
	// Root is an absolute directory path.
	Root string
	// Return is "<code>" or "<code> <url-or-text>".
	Return string
	// WebSocket adds the Upgrade/Connection headers (proxyPass only).
	WebSocket bool
}
