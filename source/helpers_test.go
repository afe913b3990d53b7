package source

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitEnv isolates fixture git commands from the machine's configuration.
func gitEnv() []string {
	return append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=Test Author",
		"GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Test Committer",
		"GIT_COMMITTER_EMAIL=committer@example.com",
		"GIT_TERMINAL_PROMPT=0",
	)
}

// runGit runs the git binary (argv only, no shell) in dir and returns its
// trimmed output.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = gitEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// upstream is a non-bare fixture repository acting as the remote.
type upstream struct {
	t   *testing.T
	dir string
}

// newUpstream creates a repository on branch main with one commit holding
// sites.yaml and conf/a.conf.
func newUpstream(t *testing.T) *upstream {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "upstream")
	runGit(t, "", "init", "-q", "-b", "main", dir)
	u := &upstream{t: t, dir: dir}
	u.write("sites.yaml", "sites: []\n")
	u.write("conf/a.conf", "server { listen 80; }\n")
	u.commit("initial commit")
	return u
}

// write creates or replaces a file in the upstream worktree.
func (u *upstream) write(name, content string) {
	u.t.Helper()
	p := filepath.Join(u.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// remove deletes a file from the upstream worktree.
func (u *upstream) remove(name string) {
	u.t.Helper()
	runGit(u.t, u.dir, "rm", "-q", "--", name)
}

// commit commits everything and returns the new commit's SHA.
func (u *upstream) commit(msg string) string {
	u.t.Helper()
	runGit(u.t, u.dir, "add", "-A")
	runGit(u.t, u.dir, "commit", "-q", "--allow-empty", "-m", msg)
	return runGit(u.t, u.dir, "rev-parse", "HEAD")
}

// head returns the SHA of the upstream HEAD.
func (u *upstream) head() string {
	u.t.Helper()
	return runGit(u.t, u.dir, "rev-parse", "HEAD")
}

// ctx returns a context that expires with a generous deadline.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustSync runs Sync and fails the test on error.
func mustSync(t *testing.T, r *Repo) Revision {
	t.Helper()
	rev, err := r.Sync(testCtx(t))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return rev
}

// readFile returns the content of dir/name, or "<missing>".
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if os.IsNotExist(err) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listTree returns the slash paths of all files and directories under dir,
// .git excluded, sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if rel == ".git" {
			return filepath.SkipDir
		}
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// writeSecret writes content to a new file in a temp dir with mode perm.
func writeSecret(t *testing.T, name, content string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil {
		t.Fatal(err)
	}
	return p
}
