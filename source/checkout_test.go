package source

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDirectoryCheckout(t *testing.T) {
	dir := t.TempDir()
	if !IsPlainDirectory(dir) {
		t.Fatal("empty temp dir not a plain directory")
	}
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte("version: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := Directory{Path: dir}
	a, err := d.Checkout(context.Background())
	if err != nil || a.Dir != dir || !strings.HasPrefix(a.Revision, "dir-") || a.Commit != nil {
		t.Fatalf("checkout = %+v, %v", a, err)
	}
	b, _ := d.Checkout(context.Background())
	if a.Revision != b.Revision {
		t.Fatal("same content, different revision")
	}
	if err := os.WriteFile(filepath.Join(dir, "sites.yaml"), []byte("version: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, _ := d.Checkout(context.Background()); c.Revision == a.Revision {
		t.Fatal("changed content, same revision")
	}
	if err := os.Mkdir(filepath.Join(dir, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if IsPlainDirectory(dir) || IsPlainDirectory("relative/path") || IsPlainDirectory(filepath.Join(dir, "sites.yaml")) {
		t.Fatal("IsPlainDirectory accepted a repository, a relative path or a file")
	}
}
