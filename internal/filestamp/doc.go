// Package filestamp identifies one version of a file by the metadata that
// every write to it moves: device, inode, size, modification time and
// change time. The change time is set by the kernel on any write, rename
// or attribute change and cannot be set back by a user, so two equal
// stamps taken at different times mean the file was not modified in
// between, except by a write in the same tick of the kernel's coarse
// file clock as the first stamp. Like git's racily clean index entries,
// a stamp is trusted only when the file's last change is older than
// RacyWindow at the time its content was read (see Stamp.Trusted).
//
// sitesync uses stamps to skip re-reading files whose content it already
// holds: managed files in conf.d, raw site files in the checkout, and the
// checkout's own configuration. Observation stays complete: every file is
// still stat'ed on every pass.
package filestamp
