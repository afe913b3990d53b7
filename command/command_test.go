package command

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	out, err := Run(context.Background(), []string{"echo", "a; b"}, nil, 0)
	if err != nil || string(out) != "a; b\n" {
		t.Fatalf("echo: %q, %v (argument must not be shell-interpreted)", out, err)
	}
	out, err = Run(context.Background(), []string{"sh", "-c", "echo \"$X\"; echo oops >&2; exit 3", "sh"}, []string{"X=from-env"}, 0)
	var e *Error
	if !errors.As(err, &e) || e.ExitCode != 3 || !strings.Contains(e.Output, "oops") || !strings.Contains(string(out), "from-env") {
		t.Fatalf("failing command: out=%q err=%v", out, err)
	}
	if _, err := Run(context.Background(), nil, nil, 0); err == nil {
		t.Fatal("empty argv accepted")
	}
	if _, err := Run(context.Background(), []string{"/nonexistent/prog"}, nil, 0); err == nil {
		t.Fatal("missing program accepted")
	}
	_, err = Run(context.Background(), []string{"sleep", "10"}, nil, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
}

func TestTail(t *testing.T) {
	long := strings.Repeat("line\n", 3000) + "last\n"
	if got := tail([]byte(long)); len(got) > maxOutput || !strings.HasSuffix(got, "last\n") || !strings.HasPrefix(got, "line") {
		t.Fatalf("tail kept %d bytes: %q...", len(got), got[:20])
	}
}
