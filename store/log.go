package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// gormLogger routes GORM's logging to a *slog.Logger, at debug level only,
// and keeps parameter values out of the SQL it logs.
type gormLogger struct {
	log   *slog.Logger
	level logger.LogLevel
}

// newGormLogger is a GORM logger writing to log.
func newGormLogger(log *slog.Logger) *gormLogger {
	return &gormLogger{log: log.With("component", "gorm"), level: logger.Info}
}

// LogMode is a copy of l at level.
func (l *gormLogger) LogMode(level logger.LogLevel) logger.Interface {
	c := *l
	c.level = level
	return &c
}

// Info logs msg at debug level.
func (l *gormLogger) Info(ctx context.Context, msg string, args ...any) {
	l.printf(ctx, logger.Info, msg, args...)
}

// Warn logs msg at debug level.
func (l *gormLogger) Warn(ctx context.Context, msg string, args ...any) {
	l.printf(ctx, logger.Warn, msg, args...)
}

// Error logs msg at debug level: the store returns its errors, logging them
// is the caller's business.
func (l *gormLogger) Error(ctx context.Context, msg string, args ...any) {
	l.printf(ctx, logger.Error, msg, args...)
}

// printf logs a GORM message at debug level if l's level lets it through.
func (l *gormLogger) printf(ctx context.Context, level logger.LogLevel, msg string, args ...any) {
	if l.level < level || !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.log.DebugContext(ctx, fmt.Sprintf(msg, args...))
}

// Trace logs one statement at debug level: its SQL with placeholders, the
// rows it affected, how long it took and its error.
func (l *gormLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), err error) {
	if l.level <= logger.Silent || !l.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	sql, rows := fc()
	attrs := []any{"sql", tidyPlaceholders(sql), "rows", rows, "elapsed", time.Since(begin)}
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		attrs = append(attrs, "err", err)
	}
	l.log.DebugContext(ctx, "sql", attrs...)
}

// ParamsFilter drops the parameter values of a statement before GORM
// renders it for Trace, so logged SQL keeps its placeholders.
func (l *gormLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}

// tidyPlaceholders turns the "$1$" that GORM's PostgreSQL dialect leaves of
// a placeholder it has no value for back into "$1".
func tidyPlaceholders(sql string) string {
	if !strings.Contains(sql, "$") {
		return sql
	}
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); i++ {
		b.WriteByte(sql[i])
		if sql[i] != '$' {
			continue
		}
		j := i + 1
		for j < len(sql) && sql[j] >= '0' && sql[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(sql) && sql[j] == '$' {
			b.WriteString(sql[i+1 : j])
			i = j
		}
	}
	return b.String()
}
