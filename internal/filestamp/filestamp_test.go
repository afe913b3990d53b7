package filestamp

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStampMovesOnEveryWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	first, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if viaInfo, ok := Of(fi); !ok || viaInfo != first {
		t.Fatalf("Of(Lstat) = %+v %v, Stat = %+v", viaInfo, ok, first)
	}
	// A same-size rewrite with the modification time set back still moves
	// the change time. Kernels before 6.13 keep coarse (jiffy) timestamps,
	// so wait as the racy-window rule assumes a reader does.
	time.Sleep(2 * RacyWindow)
	if err := os.WriteFile(path, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(0, first.Mtime)
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	second, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if second.Mtime != first.Mtime || second.Size != first.Size {
		t.Fatalf("test setup: mtime or size differ: %+v vs %+v", second, first)
	}
	if second == first {
		t.Errorf("a rewrite with the old mtime kept the stamp %+v", first)
	}
	// Replacing the file by rename gives a new inode.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	third, err := Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if third.Ino == second.Ino || third == second {
		t.Errorf("a replaced file kept its stamp: %+v", third)
	}
	if _, err := Stat(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Errorf("Stat of a missing file = %v", err)
	}
}

func TestTrusted(t *testing.T) {
	changed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := Stamp{Ino: 1, Mtime: changed.UnixNano(), Ctime: changed.UnixNano()}
	if s.Trusted(changed.Add(RacyWindow / 2)) {
		t.Error("a stamp read inside the racy window is trusted")
	}
	if !s.Trusted(changed.Add(2 * RacyWindow)) {
		t.Error("a stamp read well after the change is not trusted")
	}
	s.Ctime = changed.Add(2 * RacyWindow).UnixNano()
	if s.Trusted(changed.Add(2 * RacyWindow)) {
		t.Error("the change time is ignored")
	}
	if (Stamp{}).Trusted(changed) {
		t.Error("the zero stamp is trusted")
	}
}
