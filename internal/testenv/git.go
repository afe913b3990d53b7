package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// NewGitRepo creates a git repository in t.TempDir() on branch main, writes
// files (slash-separated paths relative to the repository mapped to their
// contents) and commits them. It returns the repository directory.
func NewGitRepo(t testing.TB, files map[string]string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	runGit(t, dir, "init", "-q", "-b", "main")
	writeRepoFiles(t, dir, files)
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "--allow-empty", "-m", "initial commit")
	return dir
}

// CommitFiles writes files into the repository at dir, deleting those whose
// value is "", commits everything with message msg and returns the commit
// SHA. A commit is made even when nothing changed.
func CommitFiles(t testing.TB, dir string, files map[string]string, msg string) (sha string) {
	t.Helper()
	writeRepoFiles(t, dir, files)
	runGit(t, dir, "add", "-A")
	runGit(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return strings.TrimSpace(runGit(t, dir, "rev-parse", "HEAD"))
}

// writeRepoFiles writes or deletes files below dir in a stable order.
func writeRepoFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !filepath.IsLocal(filepath.FromSlash(name)) {
			t.Fatalf("testenv: git file path %q is not a relative path inside the repository", name)
		}
		path := filepath.Join(dir, filepath.FromSlash(name))
		content := files[name]
		if content == "" {
			if err := os.Remove(path); err != nil {
				t.Fatalf("testenv: delete %s: %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatalf("testenv: create directory for %s: %v", name, err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatalf("testenv: write %s: %v", name, err)
		}
	}
}

// runGit runs git with a fixed identity, isolated from the user's and the
// system's git configuration, and returns its output.
func runGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	argv := []string{
		RequireTool(t, "git"),
		"-c", "user.name=sitesync test",
		"-c", "user.email=test@sitesync.invalid",
		"-c", "commit.gpgsign=false",
		"-c", "core.autocrlf=false",
	}
	argv = append(argv, args...)
	env := []string{
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=" + os.DevNull,
		"GIT_TERMINAL_PROMPT=0",
	}
	return mustRun(t, dir, env, argv...)
}
