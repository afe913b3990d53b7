package state

import (
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/filestamp"
)

// openCounter is an os.Root's FS that counts the files opened.
type openCounter struct {
	fs.ReadLinkFS
	mu     sync.Mutex
	opened map[string]int
}

func (c *openCounter) Open(name string) (fs.File, error) {
	c.mu.Lock()
	c.opened[name]++
	c.mu.Unlock()
	return c.ReadLinkFS.Open(name)
}

func (c *openCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.opened
	c.opened = map[string]int{}
	return got
}

// rawRepo writes a repository with two raw sites and returns its FS.
func rawRepo(t *testing.T) (dir string, fsys *openCounter) {
	t.Helper()
	dir = t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("sites.yaml", `version: 1
sites:
  - name: a
    tls: none
    raw: raw/a.conf
  - name: b
    tls: none
    raw: raw/b.conf
`)
	write("raw/a.conf", "server { listen 80; server_name a.example.org; }\n")
	write("raw/b.conf", "server { listen 80; server_name b.example.org; }\n")
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	// Files changed within the racy window are not carried over.
	time.Sleep(2 * filestamp.RacyWindow)
	return dir, &openCounter{ReadLinkFS: root.FS().(fs.ReadLinkFS), opened: map[string]int{}}
}

func TestRawCacheSkipsUnchangedFiles(t *testing.T) {
	dir, fsys := rawRepo(t)
	var c RawCache
	first, err := c.Load(fsys, "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fsys.reset(); got["raw/a.conf"] != 1 || got["raw/b.conf"] != 1 {
		t.Fatalf("first Load opened %v", got)
	}
	second, err := c.Load(fsys, "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fsys.reset(); got["raw/a.conf"] != 0 || got["raw/b.conf"] != 0 || got["sites.yaml"] != 1 {
		t.Errorf("second Load opened %v, want only sites.yaml", got)
	}
	uncached, err := Load(fsys, "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(second, first) || !reflect.DeepEqual(uncached, first) {
		t.Errorf("cached Load differs:\nfirst  %+v\nsecond %+v\nplain  %+v", first, second, uncached)
	}

	// A same-size edit with the old modification time is seen: only that
	// file is read again.
	a := filepath.Join(dir, "raw", "a.conf")
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("server { listen 80; server_name c.example.org; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	fsys.reset()
	third, err := c.Load(fsys, "sites.yaml", Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fsys.reset(); got["raw/a.conf"] != 1 || got["raw/b.conf"] != 0 {
		t.Errorf("after editing a.conf the Load opened %v", got)
	}
	if names := third.Sites[0].ServerNames; len(names) != 1 || names[0] != "c.example.org" {
		t.Errorf("server names after the edit = %v", names)
	}
	if !strings.Contains(string(third.Sites[0].Raw), "c.example.org") {
		t.Errorf("raw content after the edit = %q", third.Sites[0].Raw)
	}

	// The cache holds only the raw files of the last Load.
	yaml := "version: 1\nsites:\n  - name: b\n    tls: none\n    raw: raw/b.conf\n"
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Load(fsys, "sites.yaml", Filter{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.files["raw/a.conf"]; ok || len(c.files) != 1 {
		t.Errorf("after a.conf left the desired state the cache holds %d files", len(c.files))
	}
}

func TestRawCacheSeesSymlinkAndRemoval(t *testing.T) {
	dir, fsys := rawRepo(t)
	var c RawCache
	if _, err := c.Load(fsys, "sites.yaml", Filter{}); err != nil {
		t.Fatal(err)
	}
	b := filepath.Join(dir, "raw", "b.conf")
	if err := os.Rename(b, b+".real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("b.conf.real", b); err != nil {
		t.Fatal(err)
	}
	_, err := c.Load(fsys, "sites.yaml", Filter{})
	if err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("Load with raw/b.conf a symbolic link = %v", err)
	}
	if err := os.Remove(b); err != nil {
		t.Fatal(err)
	}
	_, err = c.Load(fsys, "sites.yaml", Filter{})
	if err == nil || !strings.Contains(err.Error(), `raw file "raw/b.conf" does not exist`) {
		t.Fatalf("Load with raw/b.conf removed = %v", err)
	}
	// The directory itself replaced by a symbolic link is seen as well.
	if err := os.Rename(b+".real", b); err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "raw")
	if err := os.Rename(raw, raw+"2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("raw2", raw); err != nil {
		t.Fatal(err)
	}
	_, err = c.Load(fsys, "sites.yaml", Filter{})
	if err == nil || !strings.Contains(err.Error(), "which is a symbolic link") {
		t.Fatalf("Load with raw/ a symbolic link = %v", err)
	}
}

func TestRawCacheDistrustsFreshFiles(t *testing.T) {
	dir, fsys := rawRepo(t)
	// Rewritten just now: its stamp cannot vouch for its content yet.
	if err := os.WriteFile(filepath.Join(dir, "raw", "a.conf"), []byte("server { listen 80; server_name a.example.org; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var c RawCache
	for range 2 {
		if _, err := c.Load(fsys, "sites.yaml", Filter{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fsys.reset(); got["raw/a.conf"] != 2 || got["raw/b.conf"] != 1 {
		t.Errorf("two Loads opened %v, want a.conf twice (fresh) and b.conf once", got)
	}
}
