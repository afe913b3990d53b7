// Package templates holds the nginx configuration templates sitesync
// renders sites with, embedded into the binary, and loads a site
// repository's overrides on top of them.
//
// The templates are Go text/template files:
//
//   - site.conf.tmpl renders one site (data: render.SiteData);
//   - shared.conf.tmpl renders the managed shared file with the default
//     ACME server (data: render.SharedData);
//   - partials.tmpl defines the named templates both use ("acme",
//     "locations", "body", ...).
//
// A site repository may override any of them by putting a file with the
// same name in its own templates/ directory; a template defined there
// replaces the embedded one of the same name. Values reach the templates
// already validated by package state, which guarantees they carry no
// nginx syntax, so the templates do not quote.
package templates
