// Command sitesync keeps nginx servers in line with a git repository.
//
// Usage:
//
//	sitesync validate [--config FILE | path/to/sites.yaml]
//	sitesync plan     [--config FILE] [--no-diff]
//	sitesync apply    [--config FILE]
//	sitesync version
//
// Without --config (or SITESYNC_CONFIG), sitesync uses its embedded
// quickstart configuration. Run `sitesync help` for details.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0
	exitError   = 1
	exitChanges = 2 // plan: changes pending
	exitUsage   = 64
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Environ())) }

// env is everything a command needs from the process, passed in so tests
// can run commands in-process.
type env struct {
	stdout, stderr io.Writer
	environ        []string
}

type cmd struct {
	name, summary string
	run           func(ctx context.Context, e *env, args []string) int
}

func commands() []cmd {
	return []cmd{
		{"validate", "check a desired-state file and exit 0 (valid) or 1 (invalid)", cmdValidate},
		{"plan", "show what apply would do; exit 0 in sync, 2 changes pending, 1 error", cmdPlan},
		{"apply", "converge the host once; exit 0 converged, 1 error", cmdApply},
		{"run", "run the webhook receiver, the reconcile loop and the metrics listener", cmdRun},
		{"webhook", "run only the webhook receiver (with [broker] url)", cmdWebhook},
		{"reconcile", "run only the reconcile loop (with [broker] url)", cmdReconcile},
		{"status", "print each site's state (from the running service, else a dry run); --json for scripts", cmdStatus},
		{"version", "print the version", cmdVersion},
	}
}

func run(args []string, stdout, stderr io.Writer, environ []string) int {
	e := &env{stdout: stdout, stderr: stderr, environ: environ}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, e, args[1:])
		}
	}
	fmt.Fprintf(stderr, "sitesync: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: sitesync <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nEvery command takes --config FILE (default: $SITESYNC_CONFIG, else the embedded quickstart configuration).")
}

// commonFlags are the flags every command takes.
type commonFlags struct {
	config    string
	logFormat string
	logLevel  string
}

func newFlagSet(e *env, name string, c *commonFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("sitesync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.StringVar(&c.config, "config", "", "configuration file (default $SITESYNC_CONFIG, else the embedded quickstart)")
	fs.StringVar(&c.logFormat, "log-format", "auto", "log format: text, json, or auto (json when stderr is not a terminal and JOURNAL_STREAM is set)")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return fs
}

func (c *commonFlags) logger(e *env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	format := c.logFormat
	if format == "auto" {
		format = "text"
		if lookupEnv(e.environ, "JOURNAL_STREAM") != "" {
			format = "json"
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(e.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text, json or auto", c.logFormat)
}

func lookupEnv(environ []string, key string) string {
	for i := len(environ) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(environ[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

func cmdVersion(ctx context.Context, e *env, args []string) int {
	fmt.Fprintln(e.stdout, "sitesync", version())
	return exitOK
}

func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v += " " + s.Value[:12]
		}
	}
	return v
}

// parseErr turns a flag parsing error into an exit code.
func parseErr(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}
