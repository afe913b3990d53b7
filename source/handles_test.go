package source

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// A Repo keeps its opened repositories between Syncs; these tests replace
// what they were opened from and check that the next Sync notices.

func TestSyncAfterCheckoutDeleted(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	first := mustSync(t, r)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	rev := mustSync(t, r)
	if rev != first {
		t.Errorf("revision after the checkout was deleted = %+v, want %+v", rev, first)
	}
	if got := readFile(t, dir, "conf/a.conf"); got != "server { listen 80; }\n" {
		t.Errorf("conf/a.conf = %q", got)
	}
}

func TestSyncRefusesForeignRepositorySwappedIn(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	mustSync(t, r)
	// Someone replaces the checkout with their own working copy: the kept
	// repository must not be used to reset it.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	runGit(t, "", "init", "-q", "-b", "main", dir)
	mine := filepath.Join(dir, "mine.txt")
	if err := os.WriteFile(mine, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.Sync(testCtx(t))
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("Sync over a foreign repository = %v, want ErrConfig", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the foreign repository's file is gone: %v", err)
	}
}

func TestSyncAfterSourceReplaced(t *testing.T) {
	up := newUpstream(t)
	dir := filepath.Join(t.TempDir(), "checkout")
	r := &Repo{URL: up.dir, Dir: dir}
	first := mustSync(t, r)
	// The source repository is recreated at the same path with a different
	// history; the checkout follows it (a forced update).
	if err := os.RemoveAll(up.dir); err != nil {
		t.Fatal(err)
	}
	runGit(t, "", "init", "-q", "-b", "main", up.dir)
	up.write("sites.yaml", "version: 1\n")
	second := up.commit("new history")
	rev := mustSync(t, r)
	if rev.Commit != second || rev.Commit == first.Commit || rev.Message != "new history" {
		t.Fatalf("revision = %+v, want commit %s", rev, second)
	}
	if got := listTree(t, dir); len(got) != 1 || got[0] != "sites.yaml" {
		t.Errorf("tree = %v, want only sites.yaml", got)
	}
}

func TestSyncKeepsDescriptionOfUnchangedCommit(t *testing.T) {
	up := newUpstream(t)
	r := &Repo{URL: up.dir, Dir: filepath.Join(t.TempDir(), "checkout")}
	first := mustSync(t, r)
	if again := mustSync(t, r); again != first {
		t.Errorf("second Sync = %+v, want %+v", again, first)
	}
	up.write("sites.yaml", "version: 1\n")
	next := up.commit("second")
	if rev := mustSync(t, r); rev.Commit != next || rev.Message != "second" {
		t.Errorf("after a commit: %+v, want %s \"second\"", rev, next)
	}
}
