// Package render turns a desired state into the bytes of every managed
// file. Rendering is a pure function: the same desired state, templates and
// options always give the same bytes, and nothing on the host is read or
// written.
//
// Every managed file starts with a marker line,
//
//	# sitesync:managed site=blog sha256=<hex> (do not edit: changes are reverted)
//
// naming sitesync, the kind and name of what the file belongs to, and the
// SHA-256 of the rest of the file. Files without it are never touched by
// sitesync.
package render
