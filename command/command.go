package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// maxOutput bounds how much of a command's output an error keeps.
const maxOutput = 4 << 10

// Error is a command that ran and failed, or could not be started.
type Error struct {
	// Argv is the command line (program and arguments).
	Argv []string
	// ExitCode is the exit status (-1 when the command did not exit normally).
	ExitCode int
	// Output is the tail of what the command printed (stdout and stderr).
	Output string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	msg := fmt.Sprintf("%s: %v", strings.Join(e.Argv, " "), e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ": " + out
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Run runs argv with the process environment plus env (KEY=VALUE entries),
// bounded by timeout (0 = only ctx), and returns its combined output. An
// empty argv is an error. A failure is an *Error.
func Run(ctx context.Context, argv, env []string, timeout time.Duration) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("empty command")
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	if err == nil {
		return out.Bytes(), nil
	}
	e := &Error{Argv: argv, ExitCode: -1, Output: tail(out.Bytes()), Err: err}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		e.ExitCode = exit.ExitCode()
	}
	if ctx.Err() != nil {
		e.Err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	return out.Bytes(), e
}

func tail(b []byte) string {
	if len(b) > maxOutput {
		b = b[len(b)-maxOutput:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
