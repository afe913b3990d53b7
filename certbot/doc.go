// Package certbot obtains certificates by running certbot's webroot
// authenticator, and reads the certificates certbot keeps in its live
// directory.
//
// Certbot is always run as an argv array built from the configuration,
// never through a shell, and never with anything taken from the site
// repository other than validated host names.
//
// Issuance discipline, so that sitesync never hammers a CA: Issue holds a
// file lock while certbot runs, so two certbots never run at once; Backoff
// remembers failures per certificate, persisted across restarts, and says
// when the next attempt is allowed (doubling waits, the CA's own
// Retry-After, and a hard cap of Let's Encrypt's five failures per host
// name and hour); RetryAfter recognises rate-limit errors in certbot's
// output.
package certbot
