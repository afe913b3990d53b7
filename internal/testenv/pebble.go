package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Pebble is a private pebble ACME test server started by StartPebble. It
// validates every challenge without contacting anyone
// (PEBBLE_VA_ALWAYS_VALID=1), so no HTTP server is needed for issuance.
type Pebble struct {
	// DirectoryURL is the ACME directory, https://127.0.0.1:<port>/dir; pass
	// it to certbot as --server.
	DirectoryURL string
	// ManagementURL is the base of pebble's management interface; the root
	// of the certificates pebble issues is at ManagementURL + "/roots/0".
	ManagementURL string
	// CABundle is the PEM file of the CA that signed pebble's own HTTPS
	// certificate; give it to certbot as REQUESTS_CA_BUNDLE.
	CABundle string
	// LogFile collects pebble's stdout and stderr.
	LogFile string

	bin        string
	dir        string
	configPath string
	client     *http.Client

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// pebbleConfig is the JSON configuration file of pebble 2.x.
type pebbleConfig struct {
	Pebble struct {
		ListenAddress                  string `json:"listenAddress"`
		ManagementListenAddress        string `json:"managementListenAddress"`
		Certificate                    string `json:"certificate"`
		PrivateKey                     string `json:"privateKey"`
		HTTPPort                       int    `json:"httpPort"`
		TLSPort                        int    `json:"tlsPort"`
		OCSPResponderURL               string `json:"ocspResponderURL"`
		ExternalAccountBindingRequired bool   `json:"externalAccountBindingRequired"`
	} `json:"pebble"`
}

// StartPebble generates a throw-away CA and a localhost server certificate,
// starts pebble on free ports of 127.0.0.1, waits until its directory
// answers over HTTPS and registers a cleanup that kills it.
func StartPebble(t testing.TB) *Pebble {
	t.Helper()
	bin := RequireTool(t, "pebble")
	dir := t.TempDir()
	caPEM, certPEM, keyPEM := pebbleCertificates(t)
	p := &Pebble{
		CABundle:   filepath.Join(dir, "ca.pem"),
		LogFile:    filepath.Join(dir, "pebble.log"),
		bin:        bin,
		dir:        dir,
		configPath: filepath.Join(dir, "pebble-config.json"),
	}
	certFile := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	for path, data := range map[string][]byte{p.CABundle: caPEM, certFile: certPEM, keyFile: keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatalf("testenv: write pebble certificate: %v", err)
		}
	}

	ports := FreePorts(t, 4)
	var cfg pebbleConfig
	cfg.Pebble.ListenAddress = fmt.Sprintf("127.0.0.1:%d", ports[0])
	cfg.Pebble.ManagementListenAddress = fmt.Sprintf("127.0.0.1:%d", ports[1])
	cfg.Pebble.Certificate = certFile
	cfg.Pebble.PrivateKey = keyFile
	// Validation never contacts these ports (PEBBLE_VA_ALWAYS_VALID=1).
	cfg.Pebble.HTTPPort = ports[2]
	cfg.Pebble.TLSPort = ports[3]
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatalf("testenv: encode pebble config: %v", err)
	}
	if err := os.WriteFile(p.configPath, data, 0o644); err != nil {
		t.Fatalf("testenv: write pebble config: %v", err)
	}
	p.DirectoryURL = fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0])
	p.ManagementURL = fmt.Sprintf("https://127.0.0.1:%d", ports[1])

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("testenv: parse generated pebble CA")
	}
	p.client = &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		},
	}

	p.start(t)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Stop kills pebble and waits for it to exit, so that tests can simulate a
// CA outage. Stopping a stopped pebble does nothing.
func (p *Pebble) Stop(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Errorf("testenv: pebble (pid %d) did not exit after SIGKILL", p.cmd.Process.Pid)
	}
	p.cmd, p.done = nil, nil
}

// Restart stops pebble if it runs and starts it again on the same ports with
// the same HTTPS certificate. Pebble keeps its state in memory only, so
// accounts and certificates issued before the restart are forgotten, and the
// chain of certificates it issues gets a new root.
func (p *Pebble) Restart(t testing.TB) {
	t.Helper()
	p.Stop(t)
	p.start(t)
}

// start launches pebble and waits until its directory answers.
func (p *Pebble) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	logFile, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("testenv: open pebble log: %v", err)
	}
	cmd := exec.Command(p.bin, "-config", p.configPath)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(),
		"PEBBLE_VA_ALWAYS_VALID=1",
		"PEBBLE_VA_NOSLEEP=1",
		"PEBBLE_WFE_NONCEREJECT=0",
	)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	err = cmd.Start()
	_ = logFile.Close()
	if err != nil {
		t.Fatalf("testenv: start pebble: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done = cmd, done

	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			p.cmd, p.done = nil, nil
			t.Fatalf("testenv: pebble exited during start-up: %v\n%s", cmd.ProcessState, p.logTail())
		default:
		}
		resp, err := p.client.Get(p.DirectoryURL)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			p.cmd, p.done = nil, nil
			t.Fatalf("testenv: pebble directory %s not ready after 15s: %v\n%s", p.DirectoryURL, err, p.logTail())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// logTail returns the end of pebble's log for failure messages.
func (p *Pebble) logTail() string {
	b, err := os.ReadFile(p.LogFile)
	if err != nil {
		return "(no pebble log: " + err.Error() + ")"
	}
	return "pebble log:\n" + tail(string(b), 4000)
}

// pebbleCertificates returns a fresh self-signed CA and a server certificate
// for localhost, 127.0.0.1 and ::1 signed by it, all PEM encoded.
func pebbleCertificates(t testing.TB) (caPEM, certPEM, keyPEM []byte) {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: generate CA key: %v", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "sitesync testenv pebble CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testenv: create CA certificate: %v", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("testenv: parse CA certificate: %v", err)
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testenv: generate server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testenv: create server certificate: %v", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatalf("testenv: encode server key: %v", err)
	}
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return caPEM, certPEM, keyPEM
}

// randomSerial returns a random 128-bit certificate serial number.
func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatalf("testenv: generate serial number: %v", err)
	}
	return serial
}
