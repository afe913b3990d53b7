package certbot

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestArgs(t *testing.T) {
	c := &Certbot{Command: []string{"sudo", "certbot"}, ConfigDir: "/c", WorkDir: "/w", LogsDir: "/l", Webroot: "/acme", Server: "https://ca/dir"}
	got := strings.Join(c.Args(Request{Name: "app", Domains: []string{"a.test", "b.test"}}), " ")
	want := "sudo certbot certonly --non-interactive --agree-tos --webroot -w /acme --cert-name app -d a.test -d b.test --keep-until-expiring --server https://ca/dir --register-unsafely-without-email --config-dir /c --work-dir /w --logs-dir /l"
	if got != want {
		t.Fatalf("args:\n got %s\nwant %s", got, want)
	}
	c.Email, c.Server = "ops@example.org", ""
	args := c.Args(Request{Name: "app", Domains: []string{"a.test"}, Force: true})
	if !slices.Contains(args, "--force-renewal") || slices.Contains(args, "--keep-until-expiring") ||
		!slices.Contains(args, "ops@example.org") || slices.Contains(args, "--server") || slices.Contains(args, "--register-unsafely-without-email") {
		t.Fatalf("forced args: %v", args)
	}
}

func TestIssueRefusesNonsense(t *testing.T) {
	if err := (&Certbot{}).Issue(context.Background(), Request{Name: "a", Domains: []string{"a.test"}}); err == nil {
		t.Fatal("disabled certbot issued")
	}
	c := &Certbot{Command: []string{"true"}, Webroot: t.TempDir()}
	if err := c.Issue(context.Background(), Request{Name: "a"}); err == nil {
		t.Fatal("request without domains accepted")
	}
	c.Command = []string{"false"}
	if err := c.Issue(context.Background(), Request{Name: "a", Domains: []string{"a.test"}}); err == nil || !strings.Contains(err.Error(), "certificate a") {
		t.Fatalf("failing certbot: %v", err)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(dir, "app"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing certificate: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second).UTC()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "b.test"},
		DNSNames: []string{"b.test", "a.test", "b.test"}, NotBefore: time.Now(), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live", "app")
	os.MkdirAll(live, 0o755)
	os.WriteFile(filepath.Join(live, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	c, err := Read(dir, "app")
	if err != nil || !slices.Equal(c.Names, []string{"a.test", "b.test"}) || !c.NotAfter.Equal(notAfter) {
		t.Fatalf("Read = %+v, %v", c, err)
	}
	os.WriteFile(filepath.Join(live, "cert.pem"), []byte("garbage"), 0o644)
	if _, err := Read(dir, "app"); err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("corrupt certificate: %v", err)
	}
}
