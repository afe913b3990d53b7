package source

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/index"
)

// fileID is a file's inode and modification time.
type fileID struct {
	ino   uint64
	mtime int64
}

func idOf(t *testing.T, path string) fileID {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fileID{st.Ino, st.Mtim.Nano()}
}

// gitStatus is "git status --porcelain" of dir, without letting git
// refresh (rewrite) the index.
func gitStatus(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("git", "status", "--porcelain", "--untracked-files=all", "--ignored")
	cmd.Dir = dir
	cmd.Env = append(gitEnv(), "GIT_OPTIONAL_LOCKS=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git status: %v\n%s", err, out)
	}
	return string(out)
}

// fetchOnly fetches the upstream head into the checkout's remote-tracking
// ref without touching its worktree, and returns the fetched commit.
func fetchOnly(t *testing.T, dir string) plumbing.Hash {
	t.Helper()
	runGit(t, dir, "fetch", "-q", "origin")
	return plumbing.NewHash(runGit(t, dir, "rev-parse", "refs/remotes/origin/main"))
}

// openCheckoutIndex opens the checkout in dir and decodes its index.
func openCheckoutIndex(t *testing.T, dir string) (*git.Repository, *index.Index) {
	t.Helper()
	repo, err := git.PlainOpen(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := repo.Storer.Index()
	if err != nil {
		t.Fatal(err)
	}
	return repo, idx
}

// fastForwardCheckout runs fastForward on the checkout in dir from commit
// from to commit to (hex SHAs).
func fastForwardCheckout(t *testing.T, dir, from, to string) error {
	t.Helper()
	repo, idx := openCheckoutIndex(t, dir)
	return fastForward(repo, dir, idx, plumbing.NewHash(from), plumbing.NewHash(to))
}

func TestFastForwardAppliesOnlyTheDifference(t *testing.T) {
	up := newUpstream(t)
	up.write("keep.conf", "kept\n")
	up.write("conf/y.conf", "y\n")
	up.write("gone/only.conf", "only\n")
	up.write("run.sh", "#!/bin/sh\n")
	first := up.commit("fixture")
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)
	kept, y := idOf(t, filepath.Join(dir, "keep.conf")), idOf(t, filepath.Join(dir, "conf/y.conf"))

	up.write("conf/a.conf", "server { listen 8080; }\n")
	up.remove("gone/only.conf")
	up.write("new/deep/file.conf", "new\n")
	if err := os.Chmod(filepath.Join(up.dir, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	second := up.commit("change")
	if got := fetchOnly(t, dir); got.String() != second {
		t.Fatalf("fetched %s, want %s", got, second)
	}

	if err := fastForwardCheckout(t, dir, first, second); err != nil {
		t.Fatalf("fastForward: %v", err)
	}
	runGit(t, dir, "update-ref", "refs/heads/main", second)

	want := []string{"conf/", "conf/a.conf", "conf/y.conf", "keep.conf", "new/", "new/deep/", "new/deep/file.conf", "run.sh", "sites.yaml"}
	if got := listTree(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("tree = %v, want %v", got, want)
	}
	if got := readFile(t, dir, "conf/a.conf"); got != "server { listen 8080; }\n" {
		t.Errorf("conf/a.conf = %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "run.sh")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh mode = %v, %v; want 0755", fi.Mode(), err)
	}
	if idOf(t, filepath.Join(dir, "keep.conf")) != kept || idOf(t, filepath.Join(dir, "conf/y.conf")) != y {
		t.Error("a file the commit did not change was rewritten")
	}
	if st := gitStatus(t, dir); st != "" {
		t.Errorf("git status after fastForward:\n%s", st)
	}
	// The next Sync finds the checkout clean at the new commit and leaves
	// it alone.
	a := idOf(t, filepath.Join(dir, "conf/a.conf"))
	if rev := mustSync(t, r); rev.Commit != second {
		t.Fatalf("Sync = %s, want %s", rev.Commit, second)
	}
	if idOf(t, filepath.Join(dir, "conf/a.conf")) != a {
		t.Error("the Sync after fastForward rewrote conf/a.conf")
	}
}

func TestFastForwardLeavesOtherChangesToReset(t *testing.T) {
	for name, change := range map[string]func(u *upstream){
		"symlink": func(u *upstream) {
			if err := os.Symlink("sites.yaml", filepath.Join(u.dir, "link")); err != nil {
				u.t.Fatal(err)
			}
		},
		"file becomes directory": func(u *upstream) {
			u.remove("sites.yaml")
			u.write("sites.yaml/x", "x\n")
		},
		"directory becomes file": func(u *upstream) {
			u.remove("conf/a.conf")
			u.write("conf", "x\n")
		},
	} {
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t)
			first := up.head()
			dir := filepath.Join(t.TempDir(), "checkout")
			r := &Repo{URL: up.dir, Dir: dir}
			mustSync(t, r)
			change(up)
			second := up.commit(name)
			fetchOnly(t, dir)
			before := listTree(t, dir)
			if err := fastForwardCheckout(t, dir, first, second); !errors.Is(err, errNotFastForward) {
				t.Fatalf("fastForward = %v, want errNotFastForward", err)
			}
			if got := listTree(t, dir); !reflect.DeepEqual(got, before) {
				t.Errorf("fastForward touched the worktree before refusing: %v, was %v", got, before)
			}
			if rev := mustSync(t, r); rev.Commit != second {
				t.Fatalf("Sync = %s, want %s", rev.Commit, second)
			}
			if st := gitStatus(t, dir); st != "" {
				t.Errorf("git status after the fallback:\n%s", st)
			}
		})
	}
}
