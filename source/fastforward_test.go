package source

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/format/index"
	"github.com/go-git/go-git/v5/plumbing/object"
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

func TestSafeTreePath(t *testing.T) {
	for name, want := range map[string]bool{
		"sites.yaml":     true,
		"raw/a.conf":     true,
		"a/.gitkeep":     true,
		"a/.github/x":    true,
		"..":             false,
		"../etc/passwd":  false,
		"raw/../../x":    false,
		"./x":            false,
		"a//b":           false,
		"/abs":           false,
		"a/":             false,
		".git/config":    false,
		"a/.GIT/hooks/x": false,
		"a/.Git":         false,
		"a\\..\\b":       false,
		"line\nbreak":    false,
		"del\x7f":        false,
		"":               false,
	} {
		if got := safeTreePath(name); got != want {
			t.Errorf("safeTreePath(%q) = %t, want %t", name, got, want)
		}
	}
}

// TestSyncRefusesTraversalCommit: commits crafted with a tree entry named
// ".." or ".git" (git refuses to create them, but a hostile remote can send
// them) never write outside the worktree, by the fast path or the reset.
// go-git's tree walk (v5.19) already refuses such entries, so this guards
// the property against a regression there; safeTreePath, checked by
// TestSafeTreePath, is the fast path's own second line.
func TestSyncRefusesTraversalCommit(t *testing.T) {
	for _, entry := range []string{"..", ".git", ".GIT"} {
		t.Run(entry, func(t *testing.T) {
			up := newUpstream(t)
			base := t.TempDir()
			dir := filepath.Join(base, "state", "checkout")
			r := &Repo{URL: up.dir, Dir: dir}
			mustSync(t, r)
			from := up.head()
			to := craftCommit(t, up, entry, "escaped.txt")
			escaped := filepath.Join(dir, entry, "escaped.txt")
			fetchOnly(t, dir)
			if err := fastForwardCheckout(t, dir, from, to); err == nil {
				t.Errorf("fastForward accepted a tree entry %q", entry)
			}
			_, err := r.Sync(testCtx(t))
			t.Logf("Sync of the crafted commit: %v", err)
			if _, statErr := os.Stat(escaped); !errors.Is(statErr, os.ErrNotExist) {
				t.Fatalf("the crafted commit wrote %s (Sync: %v)", escaped, err)
			}
		})
	}
}

// craftCommit commits, on top of up's head, a tree that adds the entry
// dirName holding the file fileName, written with go-git's object API
// since git itself refuses such names, and returns the commit's SHA.
func craftCommit(t *testing.T, up *upstream, dirName, fileName string) string {
	t.Helper()
	repo, err := git.PlainOpen(up.dir)
	if err != nil {
		t.Fatal(err)
	}
	store := func(o interface {
		Encode(plumbing.EncodedObject) error
	}) plumbing.Hash {
		obj := repo.Storer.NewEncodedObject()
		if err := o.Encode(obj); err != nil {
			t.Fatal(err)
		}
		h, err := repo.Storer.SetEncodedObject(obj)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	blob := repo.Storer.NewEncodedObject()
	blob.SetType(plumbing.BlobObject)
	w, err := blob.Writer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("escaped\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	blobHash, err := repo.Storer.SetEncodedObject(blob)
	if err != nil {
		t.Fatal(err)
	}
	inner := store(&object.Tree{Entries: []object.TreeEntry{{Name: fileName, Mode: filemode.Regular, Hash: blobHash}}})
	head, err := repo.CommitObject(plumbing.NewHash(up.head()))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := head.Tree()
	if err != nil {
		t.Fatal(err)
	}
	entries := append([]object.TreeEntry{{Name: dirName, Mode: filemode.Dir, Hash: inner}}, tree.Entries...)
	slices.SortFunc(entries, func(a, b object.TreeEntry) int { return strings.Compare(a.Name, b.Name) })
	root := store(&object.Tree{Entries: entries})
	sig := object.Signature{Name: "Mallory", Email: "m@example.com", When: time.Now()}
	commit := store(&object.Commit{Author: sig, Committer: sig, Message: "escape", TreeHash: root, ParentHashes: []plumbing.Hash{head.Hash}})
	if err := repo.Storer.SetReference(plumbing.NewHashReference("refs/heads/main", commit)); err != nil {
		t.Fatal(err)
	}
	return commit.String()
}
