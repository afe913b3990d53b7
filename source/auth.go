package source

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"golang.org/x/crypto/ssh"
)

// tokenUser is the basic-auth user name sent with a token from TokenFile.
// GitHub requires exactly this for installation tokens and accepts it for
// personal access tokens; GitLab and Gitea accept any non-empty user name.
const tokenUser = "x-access-token"

// maxSecretFileSize bounds how much of a token or key file is read.
const maxSecretFileSize = 64 << 10

// readSecretFile reads a token or key file after checking that it is a
// regular file not accessible by group or others. kind names the file in
// errors ("token file", "ssh key file"); errors name the path, never the
// content, and wrap ErrConfig.
func readSecretFile(kind, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s %s: %w: %w", kind, path, ErrConfig, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s %s: %w: %w", kind, path, ErrConfig, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s %s is not a regular file: %w", kind, path, ErrConfig)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %04o, which lets group or others read it; run chmod 600 on it: %w",
			kind, path, perm, ErrConfig)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w: %w", kind, path, ErrConfig, err)
	}
	if len(data) > maxSecretFileSize {
		return nil, fmt.Errorf("%s %s is larger than %d bytes: %w", kind, path, maxSecretFileSize, ErrConfig)
	}
	return data, nil
}

// readToken returns the trimmed token held in path.
func readToken(path string) (string, error) {
	data, err := readSecretFile("token file", path)
	if err != nil {
		return "", err
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty: %w", path, ErrConfig)
	}
	if strings.ContainsAny(token, "\r\n") {
		return "", fmt.Errorf("token file %s holds more than one line: %w", path, ErrConfig)
	}
	return token, nil
}

// sshKeyAuth loads an unencrypted private key for user from path.
func sshKeyAuth(user, path string) (transport.AuthMethod, error) {
	pem, err := readSecretFile("ssh key file", path)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, fmt.Errorf("ssh key file %s is passphrase-protected; use a key without a passphrase: %w",
				path, ErrConfig)
		}
		// ssh.ParsePrivateKey's messages describe the format problem, never
		// the key material.
		return nil, fmt.Errorf("parse ssh key file %s: %w: %w", path, ErrConfig, err)
	}
	// HostKeyCallback is left nil on purpose: go-git then verifies the
	// server against the known_hosts files named by $SSH_KNOWN_HOSTS, or
	// ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts.
	return &gitssh.PublicKeys{User: user, Signer: signer}, nil
}

// authFor builds the go-git auth method for ep from the Repo's credential
// settings, and returns the secrets that must never appear in an error.
func (r *Repo) authFor(ep *endpoint) (transport.AuthMethod, []string, error) {
	secrets := ep.secrets()
	switch ep.kind {
	case kindLocal:
		if r.TokenFile != "" || r.SSHKeyFile != "" {
			return nil, secrets, fmt.Errorf("a token file or ssh key file cannot be used with local repository %s: %w",
				ep.display, ErrConfig)
		}
		return nil, secrets, nil
	case kindSSH:
		if r.TokenFile != "" {
			return nil, secrets, fmt.Errorf("token file needs an https url, not ssh url %s: %w", ep.display, ErrConfig)
		}
		if r.SSHKeyFile == "" {
			// go-git falls back to the ssh-agent at $SSH_AUTH_SOCK.
			if os.Getenv("SSH_AUTH_SOCK") == "" {
				return nil, secrets, fmt.Errorf("ssh url %s needs an ssh key file (or a running ssh-agent): %w",
					ep.display, ErrConfig)
			}
			return nil, secrets, nil
		}
		auth, err := sshKeyAuth(ep.user, r.SSHKeyFile)
		return auth, secrets, err
	case kindGit:
		if r.TokenFile != "" || r.SSHKeyFile != "" {
			return nil, secrets, fmt.Errorf("git:// url %s takes no credentials: %w", ep.display, ErrConfig)
		}
		return nil, secrets, nil
	}

	// HTTP(S).
	if r.SSHKeyFile != "" {
		return nil, secrets, fmt.Errorf("ssh key file needs an ssh url, not %s: %w", ep.display, ErrConfig)
	}
	var auth *githttp.BasicAuth
	switch {
	case r.TokenFile != "":
		token, err := readToken(r.TokenFile)
		if err != nil {
			return nil, secrets, err
		}
		secrets = append(secrets, token)
		auth = &githttp.BasicAuth{Username: tokenUser, Password: token}
	case ep.user != "" || ep.password != "":
		auth = &githttp.BasicAuth{Username: ep.user, Password: ep.password}
	default:
		return nil, secrets, nil
	}
	if ep.scheme == "http" && !isLoopback(ep.host) {
		return nil, secrets, fmt.Errorf("refusing to send credentials over plain http to %s; use https: %w",
			ep.display, ErrConfig)
	}
	return auth, secrets, nil
}

// isLoopback reports whether host (without port) is localhost or a loopback
// IP address.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
