package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The peak RSS of a child process cannot be read from the test process's
// own wait4: Go starts children with vfork semantics (CLONE_VM), and on
// execve Linux folds the high-water RSS of the memory the child shared,
// the whole test process's, into the child's ru_maxrss. The test binary
// is therefore re-executed as a small launcher (launcherEnv set): it
// starts the measured command itself and reports the command's ru_maxrss,
// which then only includes the launcher's own small footprint at start
// (reported as launcherRSS).
const (
	launcherEnv    = "SITESYNC_BENCH_LAUNCHER"
	launcherResult = "SITESYNC_BENCH_LAUNCHER_RESULT"
)

// TestMain runs the launcher when asked to, and the tests otherwise.
func TestMain(m *testing.M) {
	if os.Getenv(launcherEnv) == "1" {
		os.Exit(launch(os.Args[1:], os.Getenv(launcherResult)))
	}
	os.Exit(m.Run())
}

// launch runs argv (inheriting stdin, stdout and stderr, without the
// launcher's variables in its environment), writes "<maxrss KiB>
// <launcher VmHWM KiB>" to the file result and returns argv's exit code.
func launch(argv []string, result string) int {
	if len(argv) == 0 || result == "" {
		fmt.Fprintln(os.Stderr, "bench launcher: no command or result file")
		return 2
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, launcherEnv+"=") && !strings.HasPrefix(kv, launcherResult+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	own := vmHWM()
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "bench launcher:", err)
		return 2
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if ru == nil {
		return 2
	}
	if werr := os.WriteFile(result, fmt.Appendf(nil, "%d %d\n", ru.Maxrss, own), 0o644); werr != nil {
		fmt.Fprintln(os.Stderr, "bench launcher:", werr)
		return 2
	}
	return cmd.ProcessState.ExitCode()
}

// vmHWM returns this process's peak RSS in KiB from /proc/self/status.
func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

// measured is run for a command whose peak RSS is wanted: it goes through
// the launcher, and cmdResult.maxRSS is the command's own (with at least
// the launcher's footprint, returned as floor, in KiB).
func measured(t testing.TB, timeout time.Duration, dir string, argv ...string) (res cmdResult, floor int64) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	result := t.TempDir() + "/rusage"
	res, err = run(timeout, dir, []string{launcherEnv + "=1", launcherResult + "=" + result}, append([]string{self}, argv...)...)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(result)
	if err != nil {
		t.Fatalf("bench launcher left no result: %v", err)
	}
	if _, err := fmt.Sscanf(string(b), "%d %d", &res.maxRSS, &floor); err != nil {
		t.Fatalf("bench launcher result %q: %v", b, err)
	}
	return res, floor
}
