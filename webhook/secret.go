package webhook

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// maxSecretFile bounds how much of a secret file is read.
const maxSecretFile = 64 << 10

// ReadSecret reads the webhook secret from the file at path. The file must
// be a regular file that neither its group nor others can read or write
// (mode&0o077 == 0, e.g. 0600 or 0400). One trailing newline ("\n" or
// "\r\n") is removed, so a file written by echo works; anything else,
// including other whitespace, is part of the secret. An empty secret is
// refused. Errors name the file but never include its content.
func ReadSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open webhook secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat webhook secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("webhook secret file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("webhook secret file %s has mode %04o: it must not be accessible to group or others (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read webhook secret file: %w", err)
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("webhook secret file %s is larger than %d bytes", path, maxSecretFile)
	}
	if s, ok := bytes.CutSuffix(b, []byte("\n")); ok {
		b, _ = bytes.CutSuffix(s, []byte("\r"))
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("webhook secret file %s is empty", path)
	}
	return b, nil
}
