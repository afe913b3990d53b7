package bench

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sitesync/sitesync/internal/testenv"
)

// machine describes where a report was measured.
type machine struct {
	CPUs     int
	CPUModel string
	MemTotal string
	OS       string
	Kernel   string
	Go       string
	Race     bool
	Nginx    string
	Certbot  string
	Postgres string
	RabbitMQ string
	// LoadStart and LoadEnd are /proc/loadavg's 1-minute load average when
	// the run started and ended: other work on the machine skews timings.
	LoadStart, LoadEnd string
	// Revision is the sitesync commit measured, followed by the tracked
	// files with uncommitted changes.
	Revision string
}

// describeMachine collects the machine and tool versions. Anything it
// cannot find is reported as "unknown"; it never fails the test.
func describeMachine(t *testing.T, root string) machine {
	t.Helper()
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Race: raceEnabled, CPUModel: "unknown", MemTotal: "unknown", OS: "unknown", Kernel: "unknown"}
	if v := procField("/proc/cpuinfo", "model name", ':'); v != "" {
		m.CPUModel = v
	}
	if v := procField("/proc/meminfo", "MemTotal", ':'); v != "" {
		if kb, err := strconv.ParseFloat(strings.TrimSuffix(v, " kB"), 64); err == nil {
			m.MemTotal = fmt.Sprintf("%.1f GiB", kb/(1<<20))
		}
	}
	if v := procField("/etc/os-release", "PRETTY_NAME", '='); v != "" {
		m.OS = strings.Trim(v, `"`)
	}
	m.LoadStart = loadAverage()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	version := func(argv ...string) string {
		res, err := run(30*time.Second, root, nil, argv...)
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(strings.SplitN(string(res.out), "\n", 2)[0])
	}
	m.Nginx = strings.TrimPrefix(version(testenv.RequireTool(t, "nginx"), "-v"), "nginx version: ")
	m.Certbot = version(testenv.RequireTool(t, "certbot"), "--version")
	m.RabbitMQ = "RabbitMQ " + version(testenv.RequireTool(t, "rabbitmqctl"), "version")
	m.Postgres = "unknown"
	if db, err := sql.Open("pgx", "postgres://postgres@"+testenv.PostgresAddr+"/test?sslmode=disable"); err == nil {
		var v string
		if db.QueryRow("SHOW server_version").Scan(&v) == nil {
			m.Postgres = "PostgreSQL " + v
		}
		db.Close()
	}
	m.Revision = version("git", "-C", root, "rev-parse", "--short=12", "HEAD")
	if res, err := run(30*time.Second, root, nil, "git", "-C", root, "status", "--porcelain", "--untracked-files=no"); err == nil {
		var changed []string
		for _, line := range strings.Split(strings.TrimRight(string(res.out), "\n"), "\n") {
			// "XY path": the status letters may have lost a leading blank.
			if f := strings.Fields(line); len(f) >= 2 {
				changed = append(changed, f[len(f)-1])
			}
		}
		switch {
		case len(changed) > 3:
			m.Revision += fmt.Sprintf(" with %d uncommitted files", len(changed))
		case len(changed) > 0:
			m.Revision += " with uncommitted changes to " + strings.Join(changed, ", ")
		}
	}
	return m
}

// procField returns the value of the first "key<sep> value" line of path.
func procField(path, key string, sep byte) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), string(sep))
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// loadAverage returns the 1-minute load average, or "unknown".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "unknown"
}
