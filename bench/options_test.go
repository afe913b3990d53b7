package bench

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The flags of TestReport, given after -args. When none of them is set the
// test runs its quick configuration (see quickOptions).
var (
	flagSizes    = flag.String("sizes", "", "comma-separated fleet sizes, each at least 10 (full run default 100,1000,10000; quick run 100)")
	flagReps     = flag.Int("reps", 0, "repetitions of every timed measurement (full run default 5; quick run 2)")
	flagOut      = flag.String("out", "", "report file, relative to the module root; only its generated section is replaced (default: a temporary directory)")
	flagWebhookN = flag.Int("webhook-n", 0, "signed deliveries per webhook concurrency level (full run default 2000; quick run 200)")
	flagCerts    = flag.Int("certs", 0, "certificates the certificate pass issues (full run default 10; quick run 2)")
	flagBurst    = flag.Int("burst", 0, "deliveries in the burst whose passes are counted (full run default 1000; quick run 100)")
	flagPushes   = flag.Int("pushes", 0, "pushes timed from delivery to reload, per fleet size (full run default 10; quick run 3)")
)

// benchFlags names the flags above, to tell a plain run from a report run
// and to print the command that produced a report.
var benchFlags = []string{"sizes", "reps", "out", "webhook-n", "certs", "burst", "pushes"}

// options is the resolved configuration of one TestReport run.
type options struct {
	// quick is true when no bench flag was given: the run is part of
	// go test ./... and must be short.
	quick bool
	// sizes are the fleet sizes, ascending.
	sizes []int
	// reps is how many times every timed measurement is repeated.
	reps int
	// webhookN is the number of deliveries per concurrency level.
	webhookN int
	// concurrency are the webhook concurrency levels.
	concurrency []int
	// certs is the number of certificates the certificate pass issues.
	certs int
	// burst is the size of the delivery burst.
	burst int
	// pushes is the number of timed pushes per size.
	pushes int
	// out is the absolute path of the report file; "" means a temporary
	// directory.
	out string
	// root is the module root (the directory holding go.mod).
	root string
	// command is the command line that reproduces the run.
	command string
}

// quickOptions is the configuration of a plain go test run.
func quickOptions() options {
	return options{quick: true, sizes: []int{100}, reps: 2, webhookN: 200, concurrency: []int{1, 4, 16, 64}, certs: 2, burst: 100, pushes: 3}
}

// fullOptions is the configuration of a report run before its flags apply.
func fullOptions() options {
	return options{sizes: []int{100, 1000, 10000}, reps: 5, webhookN: 2000, concurrency: []int{1, 4, 16, 64}, certs: 10, burst: 1000, pushes: 10}
}

// parseOptions resolves the flags.
func parseOptions(t *testing.T) options {
	t.Helper()
	set := map[string]string{}
	flag.Visit(func(f *flag.Flag) {
		if slices.Contains(benchFlags, f.Name) {
			set[f.Name] = f.Value.String()
		}
	})
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	o := quickOptions()
	if len(set) > 0 {
		o = fullOptions()
	}
	o.root = root
	if *flagSizes != "" {
		o.sizes = nil
		for _, s := range strings.Split(*flagSizes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 10 || n > 100000 {
				t.Fatalf("-sizes: %q is not a fleet size between 10 and 100000", s)
			}
			o.sizes = append(o.sizes, n)
		}
		slices.Sort(o.sizes)
		o.sizes = slices.Compact(o.sizes)
	}
	for _, p := range []struct {
		name string
		v    int
		dst  *int
		max  int
	}{
		{"reps", *flagReps, &o.reps, 100},
		{"webhook-n", *flagWebhookN, &o.webhookN, 100000},
		{"certs", *flagCerts, &o.certs, 50},
		{"burst", *flagBurst, &o.burst, 100000},
		{"pushes", *flagPushes, &o.pushes, 100},
	} {
		if _, ok := set[p.name]; !ok {
			continue
		}
		if p.v < 1 || p.v > p.max {
			t.Fatalf("-%s: %d is not between 1 and %d", p.name, p.v, p.max)
		}
		*p.dst = p.v
	}
	if *flagOut != "" {
		o.out = *flagOut
		if !filepath.IsAbs(o.out) {
			o.out = filepath.Join(root, o.out)
		}
	}
	o.command = commandLine(set)
	return o
}

// commandLine returns the go test command that reproduces a run with the
// given bench flags.
func commandLine(set map[string]string) string {
	cmd := "go test ./bench -run TestReport -count 1 -timeout 0"
	if len(set) == 0 {
		return cmd
	}
	cmd += " -args"
	for _, name := range benchFlags {
		if v, ok := set[name]; ok {
			cmd += fmt.Sprintf(" -%s %s", name, v)
		}
	}
	return cmd
}

// moduleRoot returns the directory holding go.mod, searched upwards from
// the working directory (the package directory under go test).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 64 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("bench: no go.mod above the working directory")
}
