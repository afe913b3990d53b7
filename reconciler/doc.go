// Package reconciler converges one host toward the desired state declared
// in the site repository.
//
// The contract is level-based, like controller-runtime's: a pass is never
// told what changed. Every pass recomputes everything from scratch,
// running an ordered list of steps that stops at the first error:
//
//	pull → parse → render → observe → plan → issue → write → test → reload
//
// pull syncs the repository; parse loads and validates the desired state;
// render produces the bytes of every managed file; observe reads what is
// really on the host (managed and unmanaged files in conf.d and the
// snippets directory, certbot's live certificates); plan diffs the two into
// a typed list of actions; issue runs certbot for the certificates that are
// missing, name the wrong hosts or expire within the renew window; write
// replaces files atomically (temporary file in the same directory, fsync,
// rename); test runs the configured test command (nginx -t) and, when it
// fails, puts every touched file back exactly as it was; reload runs the
// reload command once, only when something changed.
//
// Errors are classified. A TerminalError (invalid desired state, broken
// templates, a managed file name taken by an unmanaged file, a
// configuration nginx rejects) will not go away by retrying the same
// inputs: wait for the next commit. Any other error is transient: back off
// and retry. Test with IsTerminal.
//
// sitesync never touches a file it did not create: only files whose first
// line is sitesync's marker (see package render) are rewritten or deleted.
package reconciler
