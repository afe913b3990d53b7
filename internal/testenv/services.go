package testenv

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver for schema setup
)

// PostgresAddr and RabbitMQAddr are where the machine's services listen.
const (
	PostgresAddr = "127.0.0.1:5432"
	RabbitMQAddr = "127.0.0.1:5672"
)

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PostgresURL creates a fresh schema in the machine's PostgreSQL (database
// test), drops it on cleanup, and returns a URL whose connections use it
// (search_path). addr overrides the server address ("" = PostgresAddr),
// e.g. a Proxy in front of it.
func PostgresURL(t testing.TB, addr string) string {
	t.Helper()
	schema := randomName("sitesync_test_")
	admin := "postgres://postgres@" + PostgresAddr + "/test?sslmode=disable"
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatalf("testenv: postgres: %v", err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("testenv: postgres at %s is not usable (scripts/test.sh starts it): %v", PostgresAddr, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		_, _ = db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	if addr == "" {
		addr = PostgresAddr
	}
	return "postgres://postgres@" + addr + "/test?sslmode=disable&search_path=" + schema
}

// RabbitMQURL creates a fresh vhost in the machine's RabbitMQ, deletes it
// on cleanup, and returns an amqp URL for it. addr overrides the server
// address ("" = RabbitMQAddr). The test holds a shared lock on the broker
// until cleanup, so a test that restarts the broker (see RabbitMQURLExclusive)
// never runs at the same time.
func RabbitMQURL(t testing.TB, addr string) string {
	t.Helper()
	lockBroker(t, syscall.LOCK_SH)
	return newVhost(t, addr)
}

// RabbitMQURLExclusive is RabbitMQURL for a test that stops and starts the
// broker: it waits until no other test (in any package) uses the machine's
// RabbitMQ through RabbitMQURL and keeps it to itself until cleanup.
func RabbitMQURLExclusive(t testing.TB) string {
	t.Helper()
	lockBroker(t, syscall.LOCK_EX)
	return newVhost(t, "")
}

func newVhost(t testing.TB, addr string) string {
	t.Helper()
	ctl := RequireTool(t, "rabbitmqctl")
	vhost := randomName("sitesync-test-")
	for _, args := range [][]string{
		{"add_vhost", vhost},
		{"set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"},
	} {
		if out, err := exec.Command(ctl, args...).CombinedOutput(); err != nil {
			t.Fatalf("testenv: rabbitmqctl %v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() { _ = exec.Command(ctl, "delete_vhost", vhost).Run() })
	if addr == "" {
		addr = RabbitMQAddr
	}
	return "amqp://guest:guest@" + addr + "/" + url.PathEscape(vhost)
}

func lockBroker(t testing.TB, how int) {
	t.Helper()
	f, err := os.OpenFile(os.TempDir()+"/sitesync-test-rabbitmq.lock", os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatalf("testenv: broker lock: %v", err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			t.Fatal("testenv: waited 5 minutes for the broker lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { f.Close() })
}
