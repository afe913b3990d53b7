package source

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSyncCloneFromLocalPath(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "state", "checkout")
	r := &Repo{URL: up.dir, Dir: dir}

	rev := mustSync(t, r)
	if rev.Commit != up.head() {
		t.Errorf("commit = %s, want %s", rev.Commit, up.head())
	}
	if len(rev.Commit) != 40 {
		t.Errorf("commit %q is not a full sha", rev.Commit)
	}
	if rev.Branch != "main" || rev.Message != "initial commit" ||
		rev.Author != "Test Author <author@example.com>" || rev.Time.IsZero() {
		t.Errorf("revision = %+v", rev)
	}
	if got := readFile(t, dir, "conf/a.conf"); got != "server { listen 80; }\n" {
		t.Errorf("conf/a.conf = %q", got)
	}
	want := []string{"conf/", "conf/a.conf", "sites.yaml"}
	if got := listTree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("tree = %v, want %v", got, want)
	}
	head, err := Head(dir)
	if err != nil {
		t.Fatalf("head: %v", err)
	}
	if head != rev {
		t.Errorf("Head = %+v, want %+v", head, rev)
	}
}

func TestSyncCloneFromRelativePath(t *testing.T) {
	up := newUpstream(t)
	t.Chdir(filepath.Dir(up.dir))
	r := &Repo{URL: filepath.Base(up.dir), Dir: "checkout"}
	rev := mustSync(t, r)
	if rev.Commit != up.head() {
		t.Errorf("commit = %s, want %s", rev.Commit, up.head())
	}
	if got := readFile(t, filepath.Join(filepath.Dir(up.dir), "checkout"), "sites.yaml"); got != "sites: []\n" {
		t.Errorf("sites.yaml = %q", got)
	}
}

func TestSyncCloneFromFileURL(t *testing.T) {
	up := newUpstream(t)
	u := &url.URL{Scheme: "file", Path: up.dir}
	dir := filepath.Join(t.TempDir(), "checkout")
	rev := mustSync(t, &Repo{URL: u.String(), Dir: dir, Branch: "main"})
	if rev.Commit != up.head() {
		t.Errorf("commit = %s, want %s", rev.Commit, up.head())
	}
	if got := readFile(t, dir, "sites.yaml"); got != "sites: []\n" {
		t.Errorf("sites.yaml = %q", got)
	}
}

func TestSyncCloneFromBareRepository(t *testing.T) {
	up := newUpstream(t)
	bare := filepath.Join(t.TempDir(), "site.git")
	runGit(t, "", "clone", "-q", "--bare", up.dir, bare)
	rev := mustSync(t, &Repo{URL: bare, Dir: filepath.Join(t.TempDir(), "c")})
	if rev.Commit != up.head() {
		t.Errorf("commit = %s, want %s", rev.Commit, up.head())
	}
}

func TestSyncFollowsNewCommits(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	first := mustSync(t, r)

	up.write("sites.yaml", "sites:\n  - name: example\n")
	up.write("conf/b.conf", "server { listen 81; }\n")
	second := up.commit("add example")

	rev := mustSync(t, r)
	if rev.Commit != second || rev.Commit == first.Commit {
		t.Fatalf("commit = %s, want %s (first %s)", rev.Commit, second, first.Commit)
	}
	if rev.Message != "add example" {
		t.Errorf("message = %q", rev.Message)
	}
	if got := readFile(t, dir, "sites.yaml"); got != "sites:\n  - name: example\n" {
		t.Errorf("sites.yaml = %q", got)
	}
	if got := readFile(t, dir, "conf/b.conf"); got != "server { listen 81; }\n" {
		t.Errorf("conf/b.conf = %q", got)
	}
}

func TestSyncRemovesDeletedFiles(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)

	up.remove("conf/a.conf")
	want := up.commit("drop a")
	rev := mustSync(t, r)
	if rev.Commit != want {
		t.Fatalf("commit = %s, want %s", rev.Commit, want)
	}
	if got := listTree(t, dir); !reflect.DeepEqual(got, []string{"sites.yaml"}) {
		t.Errorf("tree = %v, want only sites.yaml", got)
	}
}

func TestSyncFollowsForcePush(t *testing.T) {
	up := newUpstream(t)
	up.write("history.txt", "old\n")
	old := up.commit("old history")
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	if rev := mustSync(t, r); rev.Commit != old {
		t.Fatalf("commit = %s, want %s", rev.Commit, old)
	}

	// Rewrite main to an unrelated root commit, as a force push would.
	runGit(t, up.dir, "checkout", "-q", "--orphan", "rewrite")
	runGit(t, up.dir, "rm", "-rqf", ".")
	up.write("sites.yaml", "sites: [rewritten]\n")
	up.write("new/only.conf", "rewritten\n")
	rewritten := up.commit("rewritten history")
	runGit(t, up.dir, "branch", "-M", "rewrite", "main")

	rev := mustSync(t, r)
	if rev.Commit != rewritten {
		t.Fatalf("commit = %s, want rewritten %s", rev.Commit, rewritten)
	}
	want := []string{"new/", "new/only.conf", "sites.yaml"}
	if got := listTree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("tree = %v, want %v", got, want)
	}
	if got := readFile(t, dir, "sites.yaml"); got != "sites: [rewritten]\n" {
		t.Errorf("sites.yaml = %q", got)
	}
	// And back again (the old commit is still in the checkout's object store).
	runGit(t, up.dir, "reset", "-q", "--hard", old)
	if rev := mustSync(t, r); rev.Commit != old {
		t.Fatalf("commit = %s, want %s after rewinding", rev.Commit, old)
	}
	if got := readFile(t, dir, "history.txt"); got != "old\n" {
		t.Errorf("history.txt = %q", got)
	}
}

func TestSyncRevertsLocalChanges(t *testing.T) {
	up := newUpstream(t)
	up.write(".gitignore", "*.log\n")
	want := up.commit("ignore logs")
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)

	// Tamper with the checkout in every way.
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte("tampered: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "conf", "a.conf")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"untracked.conf", "debug.log", "extra/deep/file"} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "emptydir"), 0o755); err != nil {
		t.Fatal(err)
	}

	rev := mustSync(t, r)
	if rev.Commit != want {
		t.Fatalf("commit = %s, want %s", rev.Commit, want)
	}
	wantTree := []string{".gitignore", "conf/", "conf/a.conf", "sites.yaml"}
	if got := listTree(t, dir); !reflect.DeepEqual(got, wantTree) {
		t.Errorf("tree = %v, want %v", got, wantTree)
	}
	if got := readFile(t, dir, "sites.yaml"); got != "sites: []\n" {
		t.Errorf("sites.yaml = %q, want restored", got)
	}
}

func TestSyncDetectsSameSizeEdit(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)
	// Same size, different content: the mtime gives it away.
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte("sitez: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	if got := readFile(t, dir, "sites.yaml"); got != "sites: []\n" {
		t.Errorf("sites.yaml = %q, want restored", got)
	}
}

func TestSyncNoopDoesNotTouchCheckout(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	first := mustSync(t, r)

	_, idx := openCheckoutIndex(t, dir)
	clean, err := worktreeClean(dir, idx)
	if err != nil || !clean {
		t.Fatalf("worktreeClean after sync = %v, %v; want true", clean, err)
	}

	before, err := os.Stat(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if rev := mustSync(t, r); rev != first {
			t.Fatalf("no-op sync %d = %+v, want %+v", i, rev, first)
		}
	}
	after, err := os.Stat(filepath.Join(dir, ".git", "index"))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || !before.ModTime().Equal(after.ModTime()) {
		t.Errorf("no-op sync rewrote the index (worktree was reset)")
	}
}

func TestSyncUntrackedDirectoryInTheWay(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)
	// A local directory where the next commit puts a file.
	if err := os.MkdirAll(filepath.Join(dir, "conf", "b.conf", "junk"), 0o755); err != nil {
		t.Fatal(err)
	}
	up.write("conf/b.conf", "b\n")
	want := up.commit("add b")
	if rev := mustSync(t, r); rev.Commit != want {
		t.Fatalf("commit = %s, want %s", rev.Commit, want)
	}
	if got := readFile(t, dir, "conf/b.conf"); got != "b\n" {
		t.Errorf("conf/b.conf = %q", got)
	}
}

func TestSyncSwitchesBranch(t *testing.T) {
	up := newUpstream(t)
	runGit(t, up.dir, "checkout", "-q", "-b", "prod")
	up.write("prod.txt", "prod\n")
	prod := up.commit("prod only")
	runGit(t, up.dir, "checkout", "-q", "main")
	dir := filepath.Join(t.TempDir(), "checkout")

	mustSync(t, &Repo{URL: up.dir, Dir: dir})
	if got := readFile(t, dir, "prod.txt"); got != "<missing>" {
		t.Fatalf("prod.txt on main = %q", got)
	}
	rev := mustSync(t, &Repo{URL: up.dir, Dir: dir, Branch: "refs/heads/prod"})
	if rev.Commit != prod || rev.Branch != "prod" {
		t.Fatalf("revision = %+v, want prod commit %s", rev, prod)
	}
	if got := readFile(t, dir, "prod.txt"); got != "prod\n" {
		t.Errorf("prod.txt = %q", got)
	}
	if head, err := Head(dir); err != nil || head.Branch != "prod" || head.Commit != prod {
		t.Errorf("Head = %+v, %v", head, err)
	}
}

func TestSyncBranchNotFound(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	_, err := (&Repo{URL: up.dir, Dir: dir, Branch: "does-not-exist"}).Sync(testCtx(t))
	if !errors.Is(err, ErrBranchNotFound) {
		t.Fatalf("err = %v, want ErrBranchNotFound", err)
	}
	if !IsPermanent(err) {
		t.Errorf("IsPermanent(%v) = false", err)
	}
	if !strings.Contains(err.Error(), "does-not-exist") {
		t.Errorf("error %q does not name the branch", err)
	}
	// The failed first sync leaves a usable checkout for the next one.
	if _, err := Head(dir); !errors.Is(err, ErrNoRevision) {
		t.Errorf("Head after failed sync: %v, want ErrNoRevision", err)
	}
	if rev := mustSync(t, &Repo{URL: up.dir, Dir: dir}); rev.Commit != up.head() {
		t.Errorf("commit = %s, want %s", rev.Commit, up.head())
	}
}

func TestSyncBranchDeletedUpstream(t *testing.T) {
	up := newUpstream(t)
	runGit(t, up.dir, "branch", "gone")
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir, Branch: "gone"}
	mustSync(t, r)
	runGit(t, up.dir, "branch", "-D", "gone")
	if _, err := r.Sync(testCtx(t)); !errors.Is(err, ErrBranchNotFound) {
		t.Fatalf("err = %v, want ErrBranchNotFound", err)
	}
}

func TestSyncEmptyRepository(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	runGit(t, "", "init", "-q", "-b", "main", empty)
	_, err := (&Repo{URL: empty, Dir: filepath.Join(t.TempDir(), "c")}).Sync(testCtx(t))
	if !errors.Is(err, ErrBranchNotFound) {
		t.Fatalf("err = %v, want ErrBranchNotFound", err)
	}
}

func TestSyncLocalPathNotARepository(t *testing.T) {
	plain := filepath.Join(t.TempDir(), "site-repo")
	if err := os.MkdirAll(plain, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plain, "sites.yaml"), []byte("sites: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "checkout")
	_, err := (&Repo{URL: plain, Dir: dir}).Sync(testCtx(t))
	if !errors.Is(err, ErrNotRepository) || !IsPermanent(err) {
		t.Fatalf("err = %v, want permanent ErrNotRepository", err)
	}
	for _, want := range []string{plain, "plain directory", "git init"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if _, statErr := os.Stat(dir); !os.IsNotExist(statErr) {
		t.Errorf("checkout directory created despite the error")
	}

	_, err = (&Repo{URL: filepath.Join(plain, "missing"), Dir: dir}).Sync(testCtx(t))
	if !errors.Is(err, ErrNotRepository) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing path: err = %v, want ErrNotRepository", err)
	}
}

func TestSyncRefusesForeignDirectories(t *testing.T) {
	up := newUpstream(t)

	t.Run("non-empty plain directory", func(t *testing.T) {
		dir := t.TempDir()
		keep := filepath.Join(dir, "precious.txt")
		if err := os.WriteFile(keep, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := (&Repo{URL: up.dir, Dir: dir}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "refusing") {
			t.Fatalf("err = %v, want ErrConfig refusal", err)
		}
		if got := readFile(t, dir, "precious.txt"); got != "keep" {
			t.Errorf("precious.txt = %q", got)
		}
	})
	t.Run("someone else's git repository", func(t *testing.T) {
		other := newUpstream(t)
		if err := os.WriteFile(filepath.Join(other.dir, "wip.txt"), []byte("wip"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := (&Repo{URL: up.dir, Dir: other.dir}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "not created by sitesync") {
			t.Fatalf("err = %v, want ErrConfig refusal", err)
		}
		if got := readFile(t, other.dir, "wip.txt"); got != "wip" {
			t.Errorf("wip.txt = %q", got)
		}
	})
	t.Run("checkout would contain the source", func(t *testing.T) {
		_, err := (&Repo{URL: up.dir, Dir: filepath.Dir(up.dir)}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
		_, err = (&Repo{URL: up.dir, Dir: up.dir}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
	t.Run("empty directory is fine", func(t *testing.T) {
		dir := t.TempDir()
		if rev := mustSync(t, &Repo{URL: up.dir, Dir: dir}); rev.Commit != up.head() {
			t.Errorf("commit = %s", rev.Commit)
		}
	})
}

func TestSyncInvalidConfig(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "c")
	for name, r := range map[string]*Repo{
		"no url":             {Dir: dir},
		"no dir":             {URL: up.dir},
		"bad branch":         {URL: up.dir, Dir: dir, Branch: "a..b"},
		"bad scheme":         {URL: "ftp://127.0.0.1/x", Dir: dir},
		"token with local":   {URL: up.dir, Dir: dir, TokenFile: "/nonexistent"},
		"password in ssh":    {URL: "ssh://git:pw@127.0.0.1/x", Dir: dir},
		"file url with host": {URL: "file://otherhost/x", Dir: dir},
		"malformed url":      {URL: "https://user:p%zz@127.0.0.1/x", Dir: dir},
		"scp with password":  {URL: "user:pw@127.0.0.1:org/x.git", Dir: dir},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.Sync(testCtx(t))
			if !errors.Is(err, ErrConfig) || !IsPermanent(err) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			if strings.Contains(err.Error(), "pw") || strings.Contains(err.Error(), "p%zz") {
				t.Errorf("error leaks a password: %v", err)
			}
		})
	}
}

func TestSyncCancelledContext(t *testing.T) {
	up := newUpstream(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := (&Repo{URL: up.dir, Dir: filepath.Join(t.TempDir(), "c")}).Sync(ctx)
	if !errors.Is(err, context.Canceled) || IsPermanent(err) {
		t.Fatalf("err = %v, want transient context.Canceled", err)
	}
}

func TestHead(t *testing.T) {
	if _, err := Head(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrNoRevision) {
		t.Errorf("missing dir: %v, want ErrNoRevision", err)
	}
	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Head(plain); !errors.Is(err, ErrNotRepository) {
		t.Errorf("plain dir: %v, want ErrNotRepository", err)
	}
}

func TestIsPermanent(t *testing.T) {
	if IsPermanent(nil) || IsPermanent(errors.New("connection refused")) || IsPermanent(context.DeadlineExceeded) {
		t.Error("transient errors classified permanent")
	}
	for _, err := range []error{ErrBranchNotFound, ErrAuth, ErrNotRepository, ErrConfig} {
		if !IsPermanent(err) {
			t.Errorf("IsPermanent(%v) = false", err)
		}
	}
}

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		raw        string
		kind       endpointKind
		url, user  string
		wantSecret string
	}{
		{raw: "https://host/org/repo.git", kind: kindHTTP, url: "https://host/org/repo.git"},
		{raw: "https://u:tok@host/r.git", kind: kindHTTP, url: "https://host/r.git", user: "u", wantSecret: "tok"},
		{raw: "https://tok@host/r.git", kind: kindHTTP, url: "https://host/r.git", user: "tok", wantSecret: "tok"},
		{raw: "git@github.com:org/repo.git", kind: kindSSH, url: "git@github.com:org/repo.git", user: "git"},
		{raw: "deploy@host:repo", kind: kindSSH, url: "deploy@host:repo", user: "deploy"},
		{raw: "ssh://git@host:2222/org/repo.git", kind: kindSSH, url: "ssh://git@host:2222/org/repo.git", user: "git"},
		{raw: "ssh://host/repo.git", kind: kindSSH, url: "ssh://host/repo.git", user: "git"},
		{raw: "git://host/repo.git", kind: kindGit, url: "git://host/repo.git"},
		{raw: "/srv/site.git", kind: kindLocal, url: "file:///srv/site.git"},
		{raw: "file:///srv/site.git", kind: kindLocal, url: "file:///srv/site.git"},
		{raw: "./a:b", kind: kindLocal},
	} {
		ep, err := parseEndpoint(tc.raw)
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		if ep.kind != tc.kind || tc.url != "" && ep.url != tc.url || ep.user != tc.user {
			t.Errorf("%s: got kind %d url %q user %q", tc.raw, ep.kind, ep.url, ep.user)
		}
		secrets := ep.secrets()
		if tc.wantSecret != "" && (len(secrets) != 1 || secrets[0] != tc.wantSecret) {
			t.Errorf("%s: secrets = %v", tc.raw, secrets)
		}
	}
}

func TestSyncTypeChanges(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)

	// Upstream: the file sites.yaml becomes a directory, the directory conf
	// becomes a file, and a symlink appears.
	up.remove("sites.yaml")
	up.remove("conf/a.conf")
	up.write("sites.yaml/main.yaml", "sites: []\n")
	up.write("conf", "now a file\n")
	if err := os.Symlink("conf", filepath.Join(up.dir, "link")); err != nil {
		t.Fatal(err)
	}
	want := up.commit("type changes")
	if rev := mustSync(t, r); rev.Commit != want {
		t.Fatalf("commit = %s, want %s", rev.Commit, want)
	}
	wantTree := []string{"conf", "link", "sites.yaml/", "sites.yaml/main.yaml"}
	if got := listTree(t, dir); !reflect.DeepEqual(got, wantTree) {
		t.Fatalf("tree = %v, want %v", got, wantTree)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "conf" {
		t.Errorf("link -> %q, %v", target, err)
	}

	// Locally: the same kind of change, reverted by the next sync.
	if err := os.RemoveAll(filepath.Join(dir, "sites.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "conf", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	if got := listTree(t, dir); !reflect.DeepEqual(got, wantTree) {
		t.Fatalf("tree after local tampering = %v, want %v", got, wantTree)
	}
	if got := readFile(t, dir, "conf"); got != "now a file\n" {
		t.Errorf("conf = %q", got)
	}
}

func TestSyncExecutableBit(t *testing.T) {
	up := newUpstream(t)
	up.write("hook.sh", "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(up.dir, "hook.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	up.commit("add hook")
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)
	p := filepath.Join(dir, "hook.sh")
	fi, err := os.Stat(p)
	if err != nil || fi.Mode()&0o100 == 0 {
		t.Fatalf("hook.sh mode = %v, %v; want executable", fi.Mode(), err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	mustSync(t, r)
	if fi, err := os.Stat(p); err != nil || fi.Mode()&0o100 == 0 {
		t.Errorf("executable bit not restored: %v, %v", fi.Mode(), err)
	}
}
