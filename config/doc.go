// Package config loads sitesync's TOML configuration.
//
// A configuration comes from one of two places: a TOML file named with
// --config, or the embedded default (default.toml in this package), which
// is the quickstart setup: the example site repository in examples/, a
// local output directory, no broker, no database, no certbot and no nginx.
// Every key can then be overridden by an environment variable named
// SITESYNC_<SECTION>_<KEY> (for example SITESYNC_NGINX_CONF_DIR); list
// values take TOML array syntax (SITESYNC_NGINX_TEST_COMMAND='["nginx","-t"]').
//
// Decoding is strict: unknown keys, unknown SITESYNC_ variables and values
// of the wrong type are errors that name the key. Relative paths in a file
// are resolved against the file's directory; in the embedded default,
// against the working directory.
package config
