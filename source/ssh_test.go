package source

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// sshServer is a minimal in-process SSH server on 127.0.0.1 that serves
// git-upload-pack for the bare repositories under root.
type sshServer struct {
	addr    string
	hostKey ssh.Signer
	root    string
	gitExec string

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

// newKey returns a fresh ed25519 SSH signer and its OpenSSH private-key PEM.
func newKey(t *testing.T, passphrase string) (ssh.Signer, []byte) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	return signer, pem.EncodeToMemory(block)
}

// newSSHServer serves up's repository as /site.git to clients presenting
// authorized's key.
func newSSHServer(t *testing.T, up *upstream, authorized ssh.PublicKey) *sshServer {
	t.Helper()
	root := t.TempDir()
	runGit(t, "", "clone", "-q", "--bare", up.dir, filepath.Join(root, "site.git"))
	hostKey, _ := newKey(t, "")
	s := &sshServer{hostKey: hostKey, root: root, gitExec: runGit(t, "", "--exec-path")}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(key.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("unknown public key")
		},
	}
	cfg.AddHostKey(hostKey)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serveConn(c, cfg)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// serveConn handles one SSH connection.
func (s *sshServer) serveConn(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		s.serveSession(ch, chReqs)
	}
}

// serveSession runs the "git-upload-pack '<path>'" exec request of a session.
func (s *sshServer) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" || len(req.Payload) < 4 {
			_ = req.Reply(false, nil)
			continue
		}
		line := string(req.Payload[4:])
		prog, quoted, _ := strings.Cut(line, " ")
		repoPath := strings.Trim(quoted, "'")
		if prog != "git-upload-pack" || strings.Contains(repoPath, "..") {
			_ = req.Reply(false, nil)
			continue
		}
		_ = req.Reply(true, nil)
		cmd := exec.Command(filepath.Join(s.gitExec, "git-upload-pack"), filepath.Join(s.root, repoPath))
		cmd.Env = gitEnv()
		cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
		// Copy stdin ourselves: exec.Cmd.Wait would wait for a copy from
		// the channel, which the client only ends after the exit status.
		stdin, err := cmd.StdinPipe()
		status := uint32(1)
		if err == nil && cmd.Start() == nil {
			go func() {
				_, _ = io.Copy(stdin, ch)
				stdin.Close()
			}()
			if cmd.Wait() == nil {
				status = 0
			}
		}
		var payload [4]byte
		binary.BigEndian.PutUint32(payload[:], status)
		_, _ = ch.SendRequest("exit-status", false, payload[:])
		return
	}
}

// url returns the ssh URL of the served repository.
func (s *sshServer) url() string { return fmt.Sprintf("ssh://git@%s/site.git", s.addr) }

// trustHostKey points SSH_KNOWN_HOSTS at a file trusting key for addr.
func trustHostKey(t *testing.T, addr string, key ssh.PublicKey) {
	t.Helper()
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSH_KNOWN_HOSTS", p)
}

func TestSyncSSH(t *testing.T) {
	up := newUpstream(t)
	clientKey, clientPEM := newKey(t, "")
	srv := newSSHServer(t, up, clientKey.PublicKey())
	keyFile := writeSecret(t, "id_ed25519", string(clientPEM), 0o600)

	t.Run("clone and fetch", func(t *testing.T) {
		trustHostKey(t, srv.addr, srv.hostKey.PublicKey())
		dir := filepath.Join(t.TempDir(), "c")
		r := &Repo{URL: srv.url(), Dir: dir, SSHKeyFile: keyFile}
		rev := mustSync(t, r)
		if rev.Commit != up.head() {
			t.Fatalf("commit = %s, want %s", rev.Commit, up.head())
		}
		if got := readFile(t, dir, "sites.yaml"); got != "sites: []\n" {
			t.Errorf("sites.yaml = %q", got)
		}
		if again := mustSync(t, r); again != rev {
			t.Errorf("second sync = %+v, want %+v", again, rev)
		}
	})
	t.Run("unknown host key", func(t *testing.T) {
		other, _ := newKey(t, "")
		trustHostKey(t, srv.addr, other.PublicKey())
		_, err := (&Repo{URL: srv.url(), Dir: filepath.Join(t.TempDir(), "c"), SSHKeyFile: keyFile}).Sync(testCtx(t))
		if !errors.Is(err, ErrAuth) || !IsPermanent(err) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})
	t.Run("no known_hosts file", func(t *testing.T) {
		t.Setenv("SSH_KNOWN_HOSTS", filepath.Join(t.TempDir(), "absent"))
		_, err := (&Repo{URL: srv.url(), Dir: filepath.Join(t.TempDir(), "c"), SSHKeyFile: keyFile}).Sync(testCtx(t))
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})
	t.Run("key not authorised", func(t *testing.T) {
		trustHostKey(t, srv.addr, srv.hostKey.PublicKey())
		_, otherPEM := newKey(t, "")
		otherFile := writeSecret(t, "id_other", string(otherPEM), 0o600)
		_, err := (&Repo{URL: srv.url(), Dir: filepath.Join(t.TempDir(), "c"), SSHKeyFile: otherFile}).Sync(testCtx(t))
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("err = %v, want ErrAuth", err)
		}
	})
	t.Run("repository not found", func(t *testing.T) {
		trustHostKey(t, srv.addr, srv.hostKey.PublicKey())
		u := strings.Replace(srv.url(), "site.git", "missing.git", 1)
		_, err := (&Repo{URL: u, Dir: filepath.Join(t.TempDir(), "c"), SSHKeyFile: keyFile}).Sync(testCtx(t))
		if !errors.Is(err, ErrNotRepository) {
			t.Fatalf("err = %v, want ErrNotRepository", err)
		}
	})
}

func TestSSHKeyFileChecks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "c")
	const u = "git@127.0.0.1:org/site.git"
	_, goodPEM := newKey(t, "")
	_, encryptedPEM := newKey(t, "hunter2")
	for name, tc := range map[string]struct {
		content string
		perm    os.FileMode
		want    string
	}{
		"garbage":           {"this is not a key\n", 0o600, "parse ssh key file"},
		"passphrase":        {string(encryptedPEM), 0o600, "passphrase-protected"},
		"world readable":    {string(goodPEM), 0o644, "chmod 600"},
		"group readable":    {string(goodPEM), 0o660, "chmod 600"},
		"empty":             {"", 0o600, "parse ssh key file"},
		"token not ssh key": {testToken, 0o600, "parse ssh key file"},
	} {
		t.Run(name, func(t *testing.T) {
			keyFile := writeSecret(t, "id", tc.content, tc.perm)
			_, err := (&Repo{URL: u, Dir: dir, SSHKeyFile: keyFile}).Sync(testCtx(t))
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, keyFile) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q should name %s and say %q", msg, keyFile, tc.want)
			}
			if strings.Contains(msg, "PRIVATE KEY") || strings.Contains(msg, testToken) {
				t.Errorf("error leaks key material: %v", err)
			}
		})
	}
	t.Run("no key and no agent", func(t *testing.T) {
		t.Setenv("SSH_AUTH_SOCK", "")
		_, err := (&Repo{URL: u, Dir: dir}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
	t.Run("token file with ssh url", func(t *testing.T) {
		tokenFile := writeSecret(t, "token", testToken, 0o600)
		_, err := (&Repo{URL: u, Dir: dir, TokenFile: tokenFile}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
	t.Run("ssh key with https url", func(t *testing.T) {
		keyFile := writeSecret(t, "id", string(goodPEM), 0o600)
		_, err := (&Repo{URL: "https://127.0.0.1:1/x.git", Dir: dir, SSHKeyFile: keyFile}).Sync(testCtx(t))
		if !errors.Is(err, ErrConfig) {
			t.Fatalf("err = %v, want ErrConfig", err)
		}
	})
}
