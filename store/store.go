package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"

	"github.com/sitesync/sitesync/lock"
)

// SQLiteFile is the name of the SQLite database file that Open uses inside
// Options.StateDir when Options.URL is empty.
const SQLiteFile = "sitesync.db"

const (
	dialectSQLite   = "sqlite"
	dialectPostgres = "postgres"

	// sqliteBusyTimeout is how long a SQLite writer waits for another
	// process's write transaction before it fails with SQLITE_BUSY.
	sqliteBusyTimeout = 10 * time.Second
	// pgConnectTimeout bounds one connection attempt when the URL sets no
	// connect_timeout; a context deadline shortens it further.
	pgConnectTimeout = 10 * time.Second
	// pgMaxConns is the size of the PostgreSQL connection pool.
	pgMaxConns = 10
	// sqliteMaxConns is the size of the SQLite connection pool: writers
	// take turns anyway, a few connections let readers run beside them.
	sqliteMaxConns = 4
)

// Options says which database Open connects to.
type Options struct {
	// URL is "" for the SQLite file StateDir/sitesync.db, or a
	// "postgres://" or "postgresql://" URL for PostgreSQL.
	URL string
	// StateDir is the directory of the SQLite file; it is created if
	// missing. Required when URL is "".
	StateDir string
	// Schema is the PostgreSQL schema that holds sitesync's tables,
	// created if missing and used as the connections' search_path. Empty
	// means the server's default search_path. PostgreSQL only.
	Schema string
	// Log receives GORM's messages at debug level. Nil discards them.
	Log *slog.Logger
}

// Store is sitesync's database. It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	dialect string
	// writeTurn serialises this process's SQLite write transactions so that
	// they queue in Go, where a context can cancel the wait, rather than in
	// SQLite's busy handler. Nil on PostgreSQL.
	writeTurn chan struct{}
}

// Open connects to the database that o names and applies the migrations it
// lacks. Cancelling ctx, or its deadline, aborts connecting and migrating.
// The error never contains the password of o.URL.
func Open(ctx context.Context, o Options) (*Store, error) {
	return openWith(ctx, o, migrations())
}

// openWith is Open with the list of migrations to apply, so that tests can
// stop a database at an older version.
func openWith(ctx context.Context, o Options, migs []migration) (*Store, error) {
	if err := checkMigrations(migs); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		s       *Store
		secrets []string
		err     error
	)
	switch {
	case o.URL == "" && o.StateDir == "":
		return nil, errors.New("store: open: sqlite needs a state directory")
	case o.URL == "":
		// Opening a new SQLite file switches it to WAL mode, which
		// SQLite refuses with SQLITE_BUSY, without waiting, while
		// another connection is doing the same; migrations would race
		// too. Processes (and goroutines) opening the file take turns.
		release, lerr := lock.Wait(ctx, filepath.Join(o.StateDir, SQLiteFile+".open-lock"))
		if lerr != nil {
			return nil, fmt.Errorf("store: open: %w", lerr)
		}
		defer release()
		s, err = openSQLite(o)
	case hasPostgresScheme(o.URL):
		s, secrets, err = openPostgres(o)
	default:
		return nil, fmt.Errorf("store: unsupported database url scheme %q (want postgres:// or postgresql://, or no url for sqlite)", scheme(o.URL))
	}
	if err != nil {
		return nil, redact(fmt.Errorf("store: open: %w", err), secrets...)
	}
	gdb, err := gorm.Open(s.dialector(), &gorm.Config{
		Logger:                 newGormLogger(log),
		SkipDefaultTransaction: true,
		// Name the columns in SELECTs rather than "*", so that a column a
		// newer sitesync adds changes nothing for this one.
		QueryFields:          true,
		DisableAutomaticPing: true,
		NowFunc:              now,
	})
	if err != nil {
		s.sqlDB.Close()
		return nil, redact(fmt.Errorf("store: open: %w", err), secrets...)
	}
	s.db = gdb
	if err := s.sqlDB.PingContext(ctx); err != nil {
		s.sqlDB.Close()
		return nil, redact(fmt.Errorf("store: connect: %w", err), secrets...)
	}
	if err := s.migrate(ctx, o.Schema, migs); err != nil {
		s.sqlDB.Close()
		return nil, redact(fmt.Errorf("store: migrate: %w", err), secrets...)
	}
	return s, nil
}

// openSQLite prepares the connection pool of the SQLite file in o.StateDir.
func openSQLite(o Options) (*Store, error) {
	if o.StateDir == "" {
		return nil, errors.New("sqlite needs a state directory")
	}
	if o.Schema != "" {
		return nil, errors.New("a schema is only supported on postgresql")
	}
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return nil, err
	}
	path := filepath.Join(o.StateDir, SQLiteFile)
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite path %q must not contain '?'", path)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", sqliteBusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// Every write transaction takes the write lock when it begins, so two
	// processes never deadlock upgrading read locks, and a migration's
	// check-then-apply is atomic.
	q.Set("_txlock", "immediate")
	db, err := sql.Open(sqlite.DriverName, path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(sqliteMaxConns)
	db.SetMaxIdleConns(sqliteMaxConns)
	return &Store{sqlDB: db, dialect: dialectSQLite, writeTurn: make(chan struct{}, 1)}, nil
}

// openPostgres prepares the PostgreSQL connection pool of o.URL. It returns
// the URL's password too, in the forms it may take, so that the caller can
// keep it out of errors.
func openPostgres(o Options) (*Store, []string, error) {
	secrets := urlPasswords(o.URL)
	cfg, err := pgx.ParseConfig(o.URL)
	if err != nil {
		return nil, secrets, err
	}
	if cfg.Password != "" {
		secrets = append(secrets, cfg.Password)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "sitesync"
	}
	if o.Schema != "" {
		cfg.RuntimeParams["search_path"] = pgx.Identifier{o.Schema}.Sanitize()
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	db.SetConnMaxLifetime(time.Hour)
	return &Store{sqlDB: db, dialect: dialectPostgres}, secrets, nil
}

// dialector is the GORM dialector over s.sqlDB.
func (s *Store) dialector() gorm.Dialector {
	if s.dialect == dialectPostgres {
		return postgres.New(postgres.Config{Conn: s.sqlDB})
	}
	return sqlite.Dialector{Conn: s.sqlDB}
}

// Close waits for the calls in flight and closes the database connections.
// Calls after Close fail.
func (s *Store) Close() error {
	if err := s.sqlDB.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}

// Dialect is "sqlite" or "postgres", the kind of database s uses.
func (s *Store) Dialect() string { return s.dialect }

// takeWriteTurn waits, as long as ctx allows, for this process's turn to
// write to SQLite, and returns the function that ends the turn. On
// PostgreSQL it returns at once.
func (s *Store) takeWriteTurn(ctx context.Context) (func(), error) {
	if s.writeTurn == nil {
		return func() {}, nil
	}
	select {
	case s.writeTurn <- struct{}{}:
		return func() { <-s.writeTurn }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// write runs fn in a write transaction, on SQLite in this process's write
// turn.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	done, err := s.takeWriteTurn(ctx)
	if err != nil {
		return err
	}
	defer done()
	return s.db.WithContext(ctx).Transaction(fn)
}

// exec runs one statement that writes, outside a transaction (a single
// statement is atomic on its own) but on SQLite in this process's write
// turn, and returns the number of rows it affected.
func (s *Store) exec(ctx context.Context, fn func(db *gorm.DB) *gorm.DB) (int64, error) {
	done, err := s.takeWriteTurn(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	res := fn(s.db.WithContext(ctx))
	return res.RowsAffected, res.Error
}

// now is the current time as the database stores it: UTC, to the
// microsecond (PostgreSQL's precision), so that values read back compare
// equal to the ones written and SQLite's text timestamps sort in time
// order.
func now() time.Time { return dbTime(time.Now()) }

// dbTime converts t to the form the database stores.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// hasPostgresScheme tells whether u is a PostgreSQL URL.
func hasPostgresScheme(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// scheme is the scheme of u, for an error message that must not repeat
// the rest of u.
func scheme(u string) string {
	if i := strings.Index(u, "://"); i >= 0 && i < 32 {
		return u[:i]
	}
	return "unknown"
}

// urlPasswords is the password in u, decoded and as written, or nothing if
// u has none or does not parse.
func urlPasswords(u string) []string {
	pu, err := url.Parse(u)
	if err != nil || pu.User == nil {
		return nil
	}
	pw, ok := pu.User.Password()
	if !ok || pw == "" {
		return nil
	}
	_, raw, _ := strings.Cut(pu.User.String(), ":")
	return []string{pw, raw}
}

// redactedError is an error whose text had a secret removed. It answers
// errors.Is like the original error but does not unwrap to it, so the
// original text cannot be reached.
type redactedError struct {
	msg string
	err error
}

// Error is the redacted text.
func (e *redactedError) Error() string { return e.msg }

// Is reports whether the original error matches target.
func (e *redactedError) Is(target error) bool { return errors.Is(e.err, target) }

// redact removes the secrets from the text of err.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}
