// Package command runs the external programs sitesync is configured with
// (the nginx test and reload commands, certbot) as argv arrays, never
// through a shell, and turns their failures into errors that carry the
// tail of what they printed.
package command
