// Package store is sitesync's persistence: the GitHub webhook deliveries it
// received, the outbox that relays them to the message broker, and the
// reconcile passes it ran. It uses GORM on either SQLite (a file in the
// state directory, the default) or PostgreSQL.
//
// # Databases
//
// Open with an empty URL uses the SQLite file <StateDir>/sitesync.db in WAL
// mode with a busy timeout, so a webhook process and a reconcile process on
// the same host can share it: readers never block, and writers from
// different processes wait for each other (up to the busy timeout) instead
// of failing. Opening a SQLite database (switching a new file to WAL mode,
// then migrating) is serialised by an flock on <StateDir>/sitesync.db.open-lock,
// since SQLite refuses a concurrent switch to WAL mode at once instead of
// waiting. A postgres:// or postgresql:// URL uses PostgreSQL; Options.
// Schema puts every table into that schema (created if missing) through the
// connection's search_path.
//
// # Migrations
//
// Open brings the schema up to date before it returns. Migrations are
// numbered, only ever added, never drop data, and are recorded in the
// schema_migrations table; each one runs in its own transaction. Processes
// that Open the same database at the same time do not apply a migration
// twice: on PostgreSQL each migration transaction first takes a
// transaction-scoped advisory lock, on SQLite it begins with BEGIN
// IMMEDIATE and so holds the database's write lock. A database that a newer
// sitesync has migrated further than this binary knows is refused with an
// error wrapping ErrSchemaTooNew, and left untouched.
//
// # Concurrency and errors
//
// A *Store is safe for concurrent use by any number of goroutines, and any
// number of processes may use the same database. Every method takes a
// context first and honours its cancellation and deadline, including while
// it waits for a connection or, on SQLite, for its turn among this
// process's writers (they queue in Go, one at a time). The one wait a
// context cannot cut short is SQLite's for another process's write lock,
// which the busy timeout bounds (10s). No method keeps the context after
// it returns.
//
// Errors are wrapped with %w, so errors.Is sees context.Canceled,
// context.DeadlineExceeded and the drivers' errors through them, and their
// text starts with "store: " in lower case. Errors from Open never contain
// the password of the database URL.
//
// Unique violations are part of the contract, not errors: RecordDelivery of
// a delivery id that is already stored writes nothing and reports
// duplicate=true with a nil error, also when two requests with the same id
// race each other (an INSERT ... ON CONFLICT DO NOTHING decides, not a
// prior SELECT); RecordPass of a pass id that exists updates that pass. Any
// other constraint violation is returned as a wrapped error.
//
// # Logging
//
// GORM's own logging goes to the *slog.Logger of Options at debug level
// only, and SQL is logged with its placeholders, never with the parameter
// values (webhook bodies, for instance, never reach a log).
package store
