// Package source fetches the site repository that sitesync reconciles from.
//
// A Repo names the repository (a local path, file://, http(s)://, ssh:// or
// scp-like URL), the branch to follow and the checkout directory inside
// sitesync's state directory. Repo.Sync clones or fetches with go-git in
// process (no git command is run, except that go-git's file transport runs
// git-upload-pack for local repositories) and leaves the checkout exactly at
// the remote branch head: a force-pushed branch is followed, local edits are
// reverted and untracked files, ignored ones included, are deleted. Head
// reads the checked-out commit without network access.
//
// # Credentials
//
// An HTTPS token is read from Repo.TokenFile (basic auth, user
// "x-access-token") or taken from the URL's userinfo; an SSH deploy key from
// Repo.SSHKeyFile. Token and key files must not be accessible by group or
// others (mode & 0o077 == 0). Credentials are never written to the
// checkout's .git/config (the remote URL is stored without userinfo), never
// sent over plain http except to a loopback host, and never appear in an
// error: every error from this package passes through Redact with the
// credentials in play, and URLs in messages are passed through Sanitize.
// SSH host keys are checked with go-git's default known_hosts lookup
// ($SSH_KNOWN_HOSTS, else ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts).
//
// # Errors
//
// Errors wrap one of the sentinel errors ErrBranchNotFound, ErrAuth,
// ErrNotRepository or ErrConfig when the failure is permanent (retrying
// without a change by an operator cannot help); anything else, notably
// network failures, timeouts and server errors, is transient. IsPermanent
// tells the two apart. errors.Is also sees context.Canceled and
// context.DeadlineExceeded through the returned errors.
//
// # Cost of a no-op sync
//
// When the remote head has not moved, Sync performs one ref advertisement
// round trip and then compares the worktree with the index using lstat data
// (size, mtime, type) and a directory walk for untracked entries. It does
// not use go-git's Worktree.Status, which hashes every file and is slow on
// large trees. The worktree is reset only when the commit changed or that
// comparison found a difference.
package source
