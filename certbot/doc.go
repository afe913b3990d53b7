// Package certbot obtains certificates by running certbot's webroot
// authenticator, and reads the certificates certbot keeps in its live
// directory.
//
// Certbot is always run as an argv array built from the configuration,
// never through a shell, and never with anything taken from the site
// repository other than validated host names.
package certbot
