package bench

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// CPU is the CPU time one mode used per step, by process: a ratio of
// these holds on a shared, noisy machine where latency does not.
type CPU struct {
	// Worker is this process: worker, activities, sandbox parents, the
	// scripted model and the client. Reaped sandboxes are counted too.
	Worker time.Duration `json:"worker_ns"`
	// Temporal is the dev server this command started (zero with --address).
	Temporal time.Duration `json:"temporal_ns"`
	// Postgres is the audit store's server backends (zero with SQLite or a
	// remote database).
	Postgres time.Duration `json:"postgres_ns"`
}

// Total is the CPU per step of every process measured.
func (c CPU) Total() time.Duration { return c.Worker + c.Temporal + c.Postgres }

// benchAppName marks the governed mode's Postgres connections so their
// backends can be found in pg_stat_activity.
const benchAppName = "warden-bench"

// withAppName sets application_name on a postgres:// URL.
func withAppName(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn
	}
	q := u.Query()
	q.Set("application_name", benchAppName)
	u.RawQuery = q.Encode()
	return u.String()
}

// cpuMeter reads the CPU counters of the processes a mode uses.
type cpuMeter struct {
	dsn string // empty: no Postgres backends to count
}

type cpuSample struct {
	self, temporal time.Duration
	backends       map[int]time.Duration
}

func (m cpuMeter) sample(ctx context.Context) cpuSample {
	s := cpuSample{self: processCPU(), backends: map[int]time.Duration{}}
	for _, pid := range childrenNamed(os.Getpid(), "temporal") {
		s.temporal += pidCPU(pid)
	}
	if m.dsn != "" {
		for _, pid := range backendPIDs(ctx, m.dsn) {
			s.backends[pid] = pidCPU(pid)
		}
	}
	return s
}

// since is the CPU used from start to end, per step.
func (end cpuSample) since(start cpuSample, steps int) CPU {
	var pg time.Duration
	for pid, t := range end.backends {
		pg += t - start.backends[pid] // a backend born in between started at zero
	}
	n := time.Duration(max(steps, 1))
	return CPU{Worker: (end.self - start.self) / n, Temporal: (end.temporal - start.temporal) / n, Postgres: pg / n}
}

// processCPU is the user and system CPU time this process has used,
// children included once they are reaped (the sandboxes).
func processCPU() time.Duration {
	var self, children syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times (100 on Linux).
const clockTick = 100

// pidCPU reads utime+stime of a process from /proc; zero when it is gone
// or not on this host.
func pidCPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[13], 10, 64)
	st, _ := strconv.ParseInt(f[14], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTick
}

// statFields splits /proc/<pid>/stat; field 1 (comm) may hold spaces, so
// the split starts after its closing parenthesis. Indexes follow proc(5)
// minus one: f[3] is the parent PID, f[13] utime.
func statFields(pid int) []string {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(raw)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return nil
	}
	return append([]string{s[:open-1], s[open+1 : end]}, strings.Fields(s[end+1:])...)
}

// childrenNamed lists the direct children of parent whose command is name.
func childrenNamed(parent int, name string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 3 && f[1] == name && f[3] == strconv.Itoa(parent) {
			out = append(out, pid)
		}
	}
	return out
}

// backendPIDs lists the server PIDs of the governed mode's connections;
// none when the database is unreachable.
func backendPIDs(ctx context.Context, dsn string) []int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()", benchAppName)
	if err != nil {
		return nil
	}
	pids, _ := pgx.CollectRows(rows, pgx.RowTo[int32])
	out := make([]int, len(pids))
	for i, p := range pids {
		out[i] = int(p)
	}
	return out
}

// isLocal reports whether a postgres:// URL names this host, where the
// server's processes can be read from /proc.
func isLocal(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}
