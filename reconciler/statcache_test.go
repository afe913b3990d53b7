package reconciler

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/filestamp"
)

// TestStatCacheSeesSneakyEdits: an edit that keeps the size and puts the
// modification time back is still seen (the change time moves).
func TestStatCacheSeesSneakyEdits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.conf")
	if err := os.WriteFile(path, []byte("server { listen 80; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	var c statCache
	time.Sleep(2 * filestamp.RacyWindow) // the change time of Chtimes must not be racy
	if b, err := c.read(path, time.Now()); err != nil || string(b) != "server { listen 80; }\n" {
		t.Fatalf("first read: %q %v", b, err)
	}
	if len(c.files) != 1 {
		t.Fatal("file not cached")
	}
	if err := os.WriteFile(path, []byte("server { listen 81; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if b, _ := c.read(path, time.Now()); string(b) != "server { listen 81; }\n" {
		t.Fatalf("same-size edit with the old mtime went unseen: %q", b)
	}
	// A file replaced by rename (new inode) is seen too.
	tmp := path + ".tmp"
	os.WriteFile(tmp, []byte("server { listen 82; }\n"), 0o644)
	os.Chtimes(tmp, old, old)
	os.Rename(tmp, path)
	if b, _ := c.read(path, time.Now()); string(b) != "server { listen 82; }\n" {
		t.Fatalf("replaced file went unseen: %q", b)
	}
	// A file written just now is read but not cached: a second write in
	// the same clock tick could not be told apart.
	os.WriteFile(path, []byte("fresh"), 0o644)
	if b, _ := c.read(path, time.Now()); string(b) != "fresh" {
		t.Fatalf("fresh write: %q", b)
	}
	if e := c.files[path]; string(e.data) == "fresh" {
		t.Fatal("racily clean entry cached")
	}
}
