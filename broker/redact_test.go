package broker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"amqp://user:pass@host/vhost", "amqp://user:***@host/vhost"},
		{"amqps://user:pass@host:5671/%2F?heartbeat=5", "amqps://user:***@host:5671/%2F?heartbeat=5"},
		{"amqp://user@host/", "amqp://user@host/"},
		{"amqp://host:5672/", "amqp://host:5672/"},
		{"amqp://user:@host/", "amqp://user:***@host/"},
		{"amqp://user:p%40ss@host/", "amqp://user:***@host/"},
		{"amqp://user:p@ss@host/", "amqp://user:***@host/"},
		{"amqp://user:pa/ss@host/v", "amqp://user:***@host/v"},
		{"amqp://user:pa#ss@host/v", "amqp://user:***@host/v"},
		{"amqp://user:pa?ss@host/v", "amqp://user:***@host/v"},
		{"", ""},
		{"not a url", "not a url"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestRedactorScrubsErrors(t *testing.T) {
	t.Parallel()
	const raw = "amqp://admin:hunter2%21@db/"
	r := newRedactor(raw)
	in := errors.New(`parse "amqp://admin:hunter2%21@db/": oops; password hunter2! and admin:hunter2!@db`)
	got := r.error(in).Error()
	for _, secret := range []string{"hunter2"} {
		if strings.Contains(got, secret) {
			t.Errorf("redacted error %q still contains %q", got, secret)
		}
	}
	if !strings.Contains(got, "amqp://admin:***@db/") {
		t.Errorf("redacted error %q lacks the redacted URL", got)
	}
	plain := errors.New("connection refused")
	if r.error(plain) != plain {
		t.Error("an error without the password was not returned as is")
	}
	if r.error(nil) != nil {
		t.Error("r.error(nil) != nil")
	}
}

func TestAMQPNeverShowsPassword(t *testing.T) {
	t.Parallel()
	const secret = "s3cr3t-Passw0rd"
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	// Port 1 refuses connections: Run logs dial errors, Publish fails.
	a, stop := startAMQPLog(t, "amqp://sitesync:"+secret+"@127.0.0.1:1/", log, false, WithPublishTimeout(500*time.Millisecond))
	_, body := testMessage(t, "secret")
	err := a.Publish(t.Context(), body)
	if err == nil {
		t.Fatal("Publish succeeded against a closed port")
	}
	stop()
	for what, text := range map[string]string{"Publish error": err.Error(), "logs": logs.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("%s contain the password:\n%s", what, text)
		}
		if !strings.Contains(text, "amqp://sitesync:***@127.0.0.1:1/") {
			t.Errorf("%s lack the redacted URL:\n%s", what, text)
		}
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Publish error %q does not say why the broker is unreachable", err)
	}

	// net/url quotes the whole URL, password included, in parse errors.
	bad := NewAMQP("amqp://sitesync:"+secret+"@127.0.0.1:bad/", "", log)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err = bad.Run(ctx)
	if err == nil {
		t.Fatal("Run accepted a URL with an invalid port")
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Run error contains the password: %v", err)
	}
	if !strings.Contains(err.Error(), "sitesync:***@") {
		t.Errorf("Run error lacks the redacted URL: %v", err)
	}
}
