// Package status keeps what an operator asks first — which sites are live,
// which are not and why, what drifted, when certificates expire, what the
// last passes did — and shows it three ways from one Snapshot: an HTML page
// (no external assets, works offline), JSON for scripts, and the aligned
// table `sitesync status` prints.
//
// A Tracker is updated after every pass and is safe for concurrent use.
package status
