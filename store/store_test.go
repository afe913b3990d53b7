package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// postgresURL is the PostgreSQL the tests use: SITESYNC_TEST_POSTGRES_URL,
// or the local server's database test.
func postgresURL() string {
	if u := os.Getenv("SITESYNC_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// forEachBackend runs fn as a parallel subtest per database, each with
// fresh, empty Options.
func forEachBackend(t *testing.T, fn func(t *testing.T, o Options)) {
	t.Helper()
	for _, name := range []string{dialectSQLite, dialectPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, freshOptions(t, name))
		})
	}
}

// freshOptions is Options for an empty database of the named kind: a new
// state directory for SQLite, a new schema for PostgreSQL that is dropped
// when tb ends. PostgreSQL being unreachable fails the test, in CI and
// elsewhere: the store's tests must run against both databases.
func freshOptions(tb testing.TB, dialect string) Options {
	tb.Helper()
	if dialect == dialectSQLite {
		return Options{StateDir: tb.TempDir()}
	}
	url := postgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		tb.Fatalf("postgresql is unreachable (CI=%q), the store tests need it: %v; start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start", os.Getenv("CI"), err)
	}
	conn.Close(ctx)
	schema := "sitesync_test_" + randomHex(tb, 6)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return Options{URL: url, Schema: schema}
}

// randomHex is n random bytes in hex.
func randomHex(tb testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testCtx is a context that ends with the test, or after a minute.
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// openStore opens o and closes it when tb ends.
func openStore(tb testing.TB, o Options) *Store {
	tb.Helper()
	s, err := Open(testCtx(tb), o)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return s
}

func TestPing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		ctx := testCtx(t)
		s, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Dialect(); got != t.Name()[strings.LastIndex(t.Name(), "/")+1:] {
			t.Errorf("Dialect() = %q", got)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := s.Ping(ctx); err == nil {
			t.Fatal("ping after close succeeded")
		}
	})
}

func TestOpenUnreachablePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	s, err := Open(ctx, Options{URL: "postgres://postgres:s3cr3t-pw@127.0.0.1:1/test"})
	if err == nil {
		s.Close()
		t.Fatal("open of 127.0.0.1:1 succeeded")
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("open took %v, want it to fail fast", d)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("error leaks the password: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Errorf("error %q does not start with \"store: \"", err)
	}
	t.Logf("error: %v", err)
}

// TestOpenHonoursDeadline opens a server that accepts connections and
// never answers: the context's deadline must end Open.
func TestOpenHonoursDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := Open(ctx, Options{URL: "postgres://postgres:s3cr3t-pw@" + ln.Addr().String() + "/test?sslmode=disable"})
	if err == nil {
		s.Close()
		t.Fatal("open of a silent server succeeded")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("open took %v despite a 500ms deadline", d)
	}
	if strings.Contains(err.Error(), "s3cr3t-pw") {
		t.Errorf("error leaks the password: %v", err)
	}
	t.Logf("error: %v", err)
}

func TestOpenRejects(t *testing.T) {
	ctx := testCtx(t)
	for _, o := range []Options{
		{URL: "mysql://root:s3cr3t-pw@127.0.0.1/x"},
		{},
		{StateDir: t.TempDir(), Schema: "x"},
		{URL: "postgres://postgres:s3cr3t-pw@127.0.0.1:5432/test?sslmode=bogus"},
	} {
		s, err := Open(ctx, o)
		if err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", o)
			continue
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("error leaks the password: %v", err)
		}
		t.Logf("%v", err)
	}
}

func TestRedact(t *testing.T) {
	inner := context.DeadlineExceeded
	err := redact(errors.Join(errors.New("dial pw=hunter2"), inner), "hunter2")
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("redact kept the secret: %v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("redacted error lost errors.Is: %v", err)
	}
	if errors.Unwrap(err) != nil {
		t.Errorf("redacted error unwraps to the original")
	}
	plain := errors.New("nothing secret")
	if redact(plain, "hunter2") != plain {
		t.Errorf("redact changed an error without the secret")
	}
}

// TestLogging checks that GORM logs only at debug level and never logs
// parameter values.
func TestLogging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		var info, debug bytes.Buffer
		for _, c := range []struct {
			buf   *bytes.Buffer
			level slog.Level
		}{{&info, slog.LevelInfo}, {&debug, slog.LevelDebug}} {
			o := o
			o.Log = slog.New(slog.NewTextHandler(&syncWriter{w: c.buf}, &slog.HandlerOptions{Level: c.level}))
			s := openStore(t, o)
			ctx := testCtx(t)
			d := Delivery{ID: "log-" + c.level.String(), Event: "push", Repository: "acme/secret-repo-name"}
			if _, err := s.RecordDelivery(ctx, d, []byte("secret-body-value")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.RecordDelivery(ctx, d, []byte("secret-body-value")); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PendingOutbox(ctx, 10); err != nil {
				t.Fatal(err)
			}
		}
		if info.Len() != 0 {
			t.Errorf("logged at info level:\n%s", info.String())
		}
		out := debug.String()
		if !strings.Contains(out, "INSERT INTO") {
			t.Errorf("debug log has no SQL:\n%s", out)
		}
		for _, secret := range []string{"secret-body-value", "secret-repo-name", "log-DEBUG"} {
			if strings.Contains(out, secret) {
				t.Errorf("debug log contains parameter value %q:\n%s", secret, out)
			}
		}
	})
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

// Write writes p to w.
func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func TestCanceledContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, o Options) {
		s := openStore(t, o)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.RecordDelivery(ctx, Delivery{ID: "x"}, nil); !errors.Is(err, context.Canceled) {
			t.Errorf("RecordDelivery with a canceled context: %v", err)
		}
		if _, err := s.PendingOutbox(ctx, 1); !errors.Is(err, context.Canceled) {
			t.Errorf("PendingOutbox with a canceled context: %v", err)
		}
		if err := s.RecordPass(ctx, Pass{ID: "p"}); !errors.Is(err, context.Canceled) {
			t.Errorf("RecordPass with a canceled context: %v", err)
		}
		if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Ping with a canceled context: %v", err)
		}
		if d, err := s.LastDelivery(testCtx(t)); err != nil || d != nil {
			t.Errorf("after canceled calls: LastDelivery = %v, %v", d, err)
		}
	})
}

func TestTidyPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		"VALUES ($1$,$2$,$13$)": "VALUES ($1,$2,$13)",
		"a = ? AND b = ?":       "a = ? AND b = ?",
		"x = '$$' AND $ $1":     "x = '$$' AND $ $1",
		"$1$":                   "$1",
	} {
		if got := tidyPlaceholders(in); got != want {
			t.Errorf("tidyPlaceholders(%q) = %q, want %q", in, got, want)
		}
	}
}
