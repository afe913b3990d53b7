// Package lock makes sure one sitesync process at a time reconciles a
// host: an exclusive flock(2) on a file in the state directory, which also
// records who holds it so a second process can say so.
//
// The kernel releases the lock when the holder exits, however it exits, so
// a crashed process never leaves a stale lock behind.
package lock
