package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// DefaultBranch is the branch synced when Repo.Branch is empty.
const DefaultBranch = "main"

// remoteName is the name of the single remote of a checkout.
const remoteName = "origin"

// Marker stored in the checkout's .git/config; Sync refuses to reset and
// clean a repository that does not carry it, so a misconfigured Dir cannot
// wipe someone's working copy.
const (
	markerSection = "sitesync"
	markerOption  = "managed"
	markerValue   = "true"
)

// Repo describes where the site repository lives and where it is checked
// out. The zero value is not usable: URL and Dir are required.
type Repo struct {
	// URL locates the repository: a local path (relative paths are made
	// absolute against the working directory), a file:// URL, an http(s)://
	// URL, an ssh:// URL or an scp-like "git@host:org/repo.git", or a git://
	// URL. Credentials embedded in an http(s) URL's userinfo are used as
	// basic auth when TokenFile is empty; they are never written to disk or
	// put in an error.
	URL string
	// Branch is the branch to follow; DefaultBranch ("main") when empty. A
	// "refs/heads/" prefix is accepted and ignored.
	Branch string
	// Dir is the checkout directory, created (with its parents) if missing;
	// a relative path is resolved against the working directory.
	// It must be empty, absent, or a checkout created by Sync: anything else
	// is refused with ErrConfig, because Sync deletes whatever in it is not
	// part of the remote head.
	Dir string
	// TokenFile optionally names a file holding an HTTPS token, sent as basic
	// auth with user "x-access-token" and the trimmed file content as the
	// password. The file must not be accessible by group or others.
	TokenFile string
	// SSHKeyFile optionally names an unencrypted private key (deploy key) for
	// ssh URLs; the user is the URL's ("git" by default). The file must not
	// be accessible by group or others. Without it, go-git uses the
	// ssh-agent at $SSH_AUTH_SOCK. Server host keys are verified by go-git's
	// default known_hosts handling: the files listed in $SSH_KNOWN_HOSTS
	// (colon-separated) or else ~/.ssh/known_hosts and
	// /etc/ssh/ssh_known_hosts; an unknown or changed host key fails with
	// ErrAuth. Add the host with ssh-keyscan before the first Sync.
	SSHKeyFile string
	// CAFile optionally names a PEM bundle of extra certificate authorities
	// trusted, on top of the system pool, for an https URL (a self-hosted
	// forge with a private CA).
	CAFile string

	// kept is what the last Sync opened and read, reused by the next.
	kept handles
}

// Revision is what a sync produced: the commit now checked out.
type Revision struct {
	// Commit is the full lowercase hex SHA-1 of the commit.
	Commit string
	// Branch is the branch the commit was taken from.
	Branch string
	// Message is the first line of the commit message.
	Message string
	// Author is the commit author as "Name <email>".
	Author string
	// Time is the committer time of the commit.
	Time time.Time
}

// settings is a validated, resolved Repo.
type settings struct {
	ep       *endpoint
	branch   string
	dir      string
	auth     transport.AuthMethod
	secrets  []string
	caBundle []byte
	// src is the opened local source repository (kindLocal only).
	src *git.Repository
}

// Sync makes Dir exactly the head of Branch in the remote repository and
// returns that commit. It initialises Dir if absent or empty, fetches
// Branch (force: a rewritten, force-pushed remote branch is simply
// followed), points the local branch and HEAD at the fetched commit,
// hard-resets the worktree to it and deletes every file and directory not
// in the commit, ignored files included.
//
// A sync with nothing to do is cheap: the fetch stops after the ref
// advertisement, and when HEAD already equals the remote head the worktree
// is compared with the index by lstat only (size, mtime and mode of every
// file, plus a walk for untracked entries), without hashing content or
// calling go-git's slow Worktree.Status. Only if that comparison finds a
// difference, or the commit changed, is the worktree reset and cleaned.
//
// Sync honours ctx during network operations; set a deadline on it, since
// a stalled server would otherwise block Sync. Errors are lowercase, never
// contain a credential, and are classified as described for the sentinel
// errors (see IsPermanent). Calls on one Repo are serialised; two Repos
// must not share a Dir. A Repo keeps the repositories it opened, and the
// description of the commit it returned, for its next Sync (see
// handles), so it must not be copied after first use.
//
// Local paths and file:// URLs are fetched through go-git's file transport,
// which runs the git-upload-pack program of the installed git.
func (r *Repo) Sync(ctx context.Context) (Revision, error) {
	h := &r.kept
	h.mu.Lock()
	defer h.mu.Unlock()
	s, err := r.resolve(h)
	if err != nil {
		h.forget()
		return Revision{}, fmt.Errorf("sync %s: %w", r.label(), err)
	}
	rev, err := s.sync(ctx, h)
	if err != nil {
		h.forget()
		return Revision{}, fmt.Errorf("sync %s (branch %s): %w", s.ep.display, s.branch, err)
	}
	h.rev = rev
	return rev, nil
}

// Head returns the commit checked out in dir, a checkout directory written
// by Sync, without any network access. It returns an error wrapping
// ErrNoRevision when dir does not exist or holds no commit yet, and
// ErrNotRepository when dir is not a git repository. After an interrupted
// Sync, Head may name the commit that Sync was checking out; the next
// successful Sync completes the worktree.
func Head(dir string) (Revision, error) {
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{})
	if err != nil {
		if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
			return Revision{}, fmt.Errorf("read head of %s: %w", dir, ErrNoRevision)
		}
		if errors.Is(err, git.ErrRepositoryNotExists) {
			return Revision{}, fmt.Errorf("read head of %s: %w", dir, ErrNotRepository)
		}
		return Revision{}, fmt.Errorf("read head of %s: open repository: %w", dir, err)
	}
	ref, err := repo.Head()
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return Revision{}, fmt.Errorf("read head of %s: %w", dir, ErrNoRevision)
	}
	if err != nil {
		return Revision{}, fmt.Errorf("read head of %s: %w", dir, err)
	}
	branch := ""
	if ref.Name().IsBranch() {
		branch = ref.Name().Short()
	}
	rev, err := revisionOf(repo, ref.Hash(), branch)
	if err != nil {
		return Revision{}, fmt.Errorf("read head of %s: %w", dir, err)
	}
	return rev, nil
}

// label names the repository in an error raised while resolving the Repo:
// the credential-free display form of its URL, or "repository" when the URL
// does not parse (the error itself then describes the URL safely).
func (r *Repo) label() string {
	if ep, err := parseEndpoint(r.URL); err == nil {
		return ep.display
	}
	return "repository"
}

// resolve validates the Repo and loads its credentials. A local source
// repository is opened through h.
func (r *Repo) resolve(h *handles) (*settings, error) {
	ep, err := parseEndpoint(r.URL)
	if err != nil {
		return nil, err
	}
	branch := strings.TrimPrefix(strings.TrimSpace(r.Branch), "refs/heads/")
	if branch == "" {
		branch = DefaultBranch
	}
	if plumbing.NewBranchReferenceName(branch).Validate() != nil {
		return nil, fmt.Errorf("invalid branch name %q: %w", branch, ErrConfig)
	}
	if r.Dir == "" {
		return nil, fmt.Errorf("checkout directory is not set: %w", ErrConfig)
	}
	dir, err := filepath.Abs(r.Dir)
	if err != nil {
		return nil, fmt.Errorf("checkout directory %s: %w: %w", r.Dir, ErrConfig, err)
	}
	var src *git.Repository
	if ep.kind == kindLocal {
		if src, err = h.openSource(ep.localPath); err != nil {
			return nil, err
		}
		if within(ep.localPath, dir) {
			return nil, fmt.Errorf("checkout directory %s would contain the source repository %s: %w",
				dir, ep.localPath, ErrConfig)
		}
	}
	auth, secrets, err := r.authFor(ep)
	if err != nil {
		return nil, err
	}
	var ca []byte
	if r.CAFile != "" {
		if ep.kind != kindHTTP {
			return nil, fmt.Errorf("ca file needs an https url, not %s: %w", ep.display, ErrConfig)
		}
		if ca, err = os.ReadFile(r.CAFile); err != nil {
			return nil, fmt.Errorf("read ca file %s: %w: %w", r.CAFile, ErrConfig, err)
		}
	}
	return &settings{ep: ep, branch: branch, dir: dir, auth: auth, secrets: secrets, caBundle: ca, src: src}, nil
}

// sync runs one synchronisation; errors are not yet prefixed with the
// repository.
func (s *settings) sync(ctx context.Context, h *handles) (Revision, error) {
	if err := ctx.Err(); err != nil {
		return Revision{}, err
	}
	repo, err := h.openCheckout(s.dir)
	if err != nil {
		return Revision{}, err
	}
	branchRef := plumbing.NewBranchReferenceName(s.branch)
	remoteRef := plumbing.NewRemoteReferenceName(remoteName, s.branch)
	spec := config.RefSpec(fmt.Sprintf("+%s:%s", branchRef, remoteRef))
	if err := h.ensureRemote(repo, s.ep.url, spec); err != nil {
		return Revision{}, err
	}

	if s.localUpToDate(repo, branchRef, remoteRef) {
		err = git.NoErrAlreadyUpToDate
	} else {
		err = s.fetch(ctx, repo, spec)
	}
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return Revision{}, s.fetchError(ctx, err)
	}

	ref, err := repo.Storer.Reference(remoteRef)
	if err != nil {
		return Revision{}, fmt.Errorf("read fetched %s: %w", remoteRef, err)
	}
	target := ref.Hash()

	if err := checkout(repo, s.dir, branchRef, target); err != nil {
		return Revision{}, err
	}
	if rev, ok := h.revision(repo, target.String(), s.branch); ok {
		return rev, nil
	}
	rev, err := revisionOf(repo, target, s.branch)
	if err != nil {
		return Revision{}, err
	}
	return rev, nil
}

// fetch fetches the branch into the remote-tracking ref.
func (s *settings) fetch(ctx context.Context, repo *git.Repository, spec config.RefSpec) error {
	return repo.FetchContext(ctx, &git.FetchOptions{
		RemoteName: remoteName,
		RemoteURL:  s.ep.url,
		RefSpecs:   []config.RefSpec{spec},
		Auth:       s.auth,
		Force:      true,
		Tags:       git.NoTags,
		CABundle:   s.caBundle,
	})
}

// localUpToDate reports whether a local source repository's branch still
// points where the checkout's remote-tracking ref does, read directly from
// the source repository: a fetch over go-git's file transport starts a
// git-upload-pack process, which is most of the cost of a pass over a
// small unchanged repository. Any doubt (a read error) means "fetch".
func (s *settings) localUpToDate(repo *git.Repository, branchRef, remoteRef plumbing.ReferenceName) bool {
	if s.src == nil {
		return false
	}
	have, err := repo.Storer.Reference(remoteRef)
	if err != nil {
		return false
	}
	want, err := s.src.Reference(branchRef, true)
	if err != nil {
		return false
	}
	return want.Hash() == have.Hash()
}

// fetchError classifies and redacts a fetch failure.
func (s *settings) fetchError(ctx context.Context, err error) error {
	red := redactErr(err, s.secrets...)
	if kind := classify(err); kind != nil {
		return fmt.Errorf("fetch: %w: %w", kind, red)
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("fetch: %w: %w", ctxErr, red)
	}
	return fmt.Errorf("fetch: %w", red)
}

// openCheckout opens the checkout in dir, initialising it when dir is absent
// or empty, and refuses anything that is not a checkout made by Sync.
func openCheckout(dir string) (*git.Repository, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create checkout directory: %w", err)
		}
		return initCheckout(dir)
	case err != nil:
		return nil, fmt.Errorf("checkout directory: %w", err)
	case !fi.IsDir():
		return nil, fmt.Errorf("checkout directory %s is not a directory: %w", dir, ErrConfig)
	}
	repo, err := git.PlainOpenWithOptions(dir, &git.PlainOpenOptions{})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		entries, readErr := os.ReadDir(dir)
		if readErr != nil {
			return nil, fmt.Errorf("checkout directory: %w", readErr)
		}
		if len(entries) > 0 {
			return nil, fmt.Errorf("checkout directory %s is not empty and not a sitesync checkout; refusing to overwrite it: %w",
				dir, ErrConfig)
		}
		return initCheckout(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("open checkout %s (delete the directory to start afresh): %w", dir, err)
	}
	cfg, err := repo.Config()
	if err != nil {
		return nil, fmt.Errorf("read checkout config: %w", err)
	}
	if cfg.Raw.Section(markerSection).Option(markerOption) != markerValue {
		return nil, fmt.Errorf("checkout directory %s is a git repository not created by sitesync; refusing to reset it: %w",
			dir, ErrConfig)
	}
	if _, err := repo.Worktree(); err != nil {
		return nil, fmt.Errorf("checkout directory %s has no worktree: %w", dir, ErrConfig)
	}
	return repo, nil
}

// initCheckout creates an empty, marked repository in dir.
func initCheckout(dir string) (*git.Repository, error) {
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return nil, fmt.Errorf("initialise checkout: %w", err)
	}
	cfg, err := repo.Config()
	if err != nil {
		return nil, fmt.Errorf("read checkout config: %w", err)
	}
	cfg.Raw.Section(markerSection).SetOption(markerOption, markerValue)
	if err := repo.SetConfig(cfg); err != nil {
		return nil, fmt.Errorf("write checkout config: %w", err)
	}
	return repo, nil
}

// ensureRemote makes the checkout's origin remote point at url (which holds
// no credentials) with the single fetch refspec spec.
func ensureRemote(repo *git.Repository, url string, spec config.RefSpec) error {
	cfg, err := repo.Config()
	if err != nil {
		return fmt.Errorf("read checkout config: %w", err)
	}
	if rc, ok := cfg.Remotes[remoteName]; ok && len(rc.URLs) == 1 && rc.URLs[0] == url &&
		len(rc.Fetch) == 1 && rc.Fetch[0] == spec {
		return nil
	}
	cfg.Remotes[remoteName] = &config.RemoteConfig{
		Name:  remoteName,
		URLs:  []string{url},
		Fetch: []config.RefSpec{spec},
	}
	if err := repo.SetConfig(cfg); err != nil {
		return fmt.Errorf("write checkout config: %w", err)
	}
	return nil
}

// revisionOf describes commit hash.
func revisionOf(repo *git.Repository, hash plumbing.Hash, branch string) (Revision, error) {
	c, err := repo.CommitObject(hash)
	if err != nil {
		return Revision{}, fmt.Errorf("read commit %s: %w", hash, err)
	}
	return revisionFromCommit(c, branch), nil
}

// revisionFromCommit builds the Revision of c.
func revisionFromCommit(c *object.Commit, branch string) Revision {
	msg, _, _ := strings.Cut(strings.TrimSpace(c.Message), "\n")
	return Revision{
		Commit:  c.Hash.String(),
		Branch:  branch,
		Message: strings.TrimSpace(msg),
		Author:  fmt.Sprintf("%s <%s>", c.Author.Name, c.Author.Email),
		Time:    c.Committer.When,
	}
}

// endpointKind is the transport an endpoint uses.
type endpointKind int

const (
	kindLocal endpointKind = iota
	kindHTTP
	kindSSH
	kindGit
)

// endpoint is a parsed repository URL.
type endpoint struct {
	kind endpointKind
	// scheme is the lowercase URL scheme ("" for scp-like and local).
	scheme string
	// url is handed to go-git; it never holds a password or token.
	url string
	// display names the repository in errors.
	display string
	// localPath is the absolute path of a local repository.
	localPath string
	// host is the host name without port.
	host string
	// user and password come from the URL's userinfo (password: http only).
	user, password string
}

// secrets returns the credentials embedded in the URL.
func (e *endpoint) secrets() []string {
	var out []string
	if e.kind != kindHTTP {
		return out
	}
	if e.password != "" {
		out = append(out, e.password)
	} else if e.user != "" {
		// A bare user name in an http URL is usually a token.
		out = append(out, e.user)
	}
	return out
}

// parseEndpoint parses and validates a Repo URL.
func parseEndpoint(raw string) (*endpoint, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, fmt.Errorf("repository url is not set: %w", ErrConfig)
	}
	if !strings.Contains(raw, "://") {
		if isSCPLike(raw) {
			user, hostPath, found := strings.Cut(raw, "@")
			if !found {
				user, hostPath = "git", raw
			}
			if strings.Contains(user, ":") {
				// Not echoed: the part before "@" may be "user:password".
				return nil, fmt.Errorf("malformed ssh address (a password before \"@\"?); "+
					"use ssh://user@host/path with an ssh key file: %w", ErrConfig)
			}
			host, _, _ := strings.Cut(hostPath, ":")
			return &endpoint{kind: kindSSH, url: raw, display: raw, host: host, user: user}, nil
		}
		abs, err := filepath.Abs(raw)
		if err != nil {
			return nil, fmt.Errorf("local repository path %s: %w: %w", raw, ErrConfig, err)
		}
		u := &url.URL{Scheme: "file", Path: abs}
		return &endpoint{kind: kindLocal, url: u.String(), display: abs, localPath: abs}, nil
	}

	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's message quotes the URL and, for escape errors, part
		// of it: never include it.
		return nil, fmt.Errorf("malformed repository url %s: %w", Redact(raw), ErrConfig)
	}
	ep := &endpoint{scheme: strings.ToLower(u.Scheme), host: u.Hostname()}
	switch ep.scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("file url %s must not name a host: %w", Sanitize(raw), ErrConfig)
		}
		if u.User != nil {
			return nil, fmt.Errorf("file url %s must not hold credentials: %w", Sanitize(raw), ErrConfig)
		}
		p := filepath.Clean(filepath.FromSlash(u.Path))
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("file url %s needs an absolute path: %w", Sanitize(raw), ErrConfig)
		}
		clean := &url.URL{Scheme: "file", Path: p}
		ep.kind, ep.url, ep.display, ep.localPath = kindLocal, clean.String(), p, p
		return ep, nil
	case "http", "https":
		ep.kind = kindHTTP
		if u.User != nil {
			ep.user = u.User.Username()
			ep.password, _ = u.User.Password()
		}
		clean := *u
		clean.User = nil
		ep.url = clean.String()
		ep.display = ep.url
	case "ssh":
		ep.kind = kindSSH
		if u.User != nil {
			if _, has := u.User.Password(); has {
				return nil, fmt.Errorf("ssh url %s holds a password; use an ssh key file instead: %w",
					Sanitize(raw), ErrConfig)
			}
			ep.user = u.User.Username()
		}
		if ep.user == "" {
			ep.user = "git"
		}
		ep.url, ep.display = u.String(), u.String()
	case "git":
		if u.User != nil {
			return nil, fmt.Errorf("git url %s must not hold credentials: %w", Sanitize(raw), ErrConfig)
		}
		ep.kind, ep.url, ep.display = kindGit, u.String(), u.String()
	default:
		return nil, fmt.Errorf("unsupported url scheme %q in %s (want a local path, file, http, https, ssh or git): %w",
			ep.scheme, Sanitize(raw), ErrConfig)
	}
	if ep.host == "" {
		return nil, fmt.Errorf("url %s has no host: %w", ep.display, ErrConfig)
	}
	return ep, nil
}

// isSCPLike reports whether s is an scp-like ssh address ("[user@]host:path"):
// as for git, a colon before any slash.
func isSCPLike(s string) bool {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 {
		return false
	}
	return !strings.Contains(s[:colon], "/") && colon < len(s)-1
}

// checkLocalRepo opens the git repository at path, giving a clear error
// for the common mistake of pointing at a plain directory of files.
func checkLocalRepo(path string) (*git.Repository, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local repository %s does not exist: %w", path, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("local repository %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("local repository %s is not a directory: %w", path, ErrNotRepository)
	}
	repo, err := git.PlainOpenWithOptions(path, &git.PlainOpenOptions{})
	if errors.Is(err, git.ErrRepositoryNotExists) {
		return nil, fmt.Errorf("local path %s is a plain directory, not a git repository; "+
			"run \"git init\" and commit the files there, or point the url at a git repository: %w",
			path, ErrNotRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("open local repository %s: %w", path, err)
	}
	return repo, nil
}

// within reports whether path is dir or lies inside it (both absolute and
// clean).
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel == "." || rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
