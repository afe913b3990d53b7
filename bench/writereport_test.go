package bench

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWriteReport checks that only the generated section of a report file
// is replaced, and that a file without one gets it appended.
func TestWriteReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if err := writeReport(path, "one\n"); err != nil {
		t.Fatal(err)
	}
	if got, want := read(), beginMarker+"\none\n"+endMarker+"\n"; got != want {
		t.Fatalf("new file:\n%s\nwant:\n%s", got, want)
	}

	writeFile(t, path, "# Benchmarks\n\nkept above\n", 0o644)
	if err := writeReport(path, "two\n"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(read()+"\nkept below\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(path, "three\n"); err != nil {
		t.Fatal(err)
	}
	want := "# Benchmarks\n\nkept above\n\n" + beginMarker + "\nthree\n" + endMarker + "\n\nkept below\n"
	if got := read(); got != want {
		t.Fatalf("replaced section:\n%q\nwant:\n%q", got, want)
	}

	writeFile(t, path, "x\n"+beginMarker+"\n", 0o644)
	if err := writeReport(path, "four\n"); err == nil {
		t.Fatal("unbalanced markers: no error")
	}
}
