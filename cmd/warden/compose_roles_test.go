package main

import (
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
)

// workerSeccompProfile is the worker's seccomp profile, relative to the
// compose file's directory (where `docker compose` resolves it).
const workerSeccompProfile = "./deploy/seccomp/warden-worker.json"

// migrateVariables is every WARDEN_* variable `warden audit migrate` reads:
// the ones its flags name (the password variables included).
func migrateVariables() map[string]bool {
	vars := map[string]bool{}
	newAuditMigrateCmd().Flags().VisitAll(func(f *pflag.Flag) {
		for _, v := range wardenVar.FindAllString(f.Usage, -1) {
			vars[v] = true
		}
	})
	return vars
}

// migrateFlags parses the warden-migrate service's command and environment
// exactly as `warden audit migrate` would.
func migrateFlags(t *testing.T, s types.ServiceConfig) *pflag.FlagSet {
	t.Helper()
	senv := envOf(s)
	known := migrateVariables()
	for k := range s.Environment {
		if strings.HasPrefix(k, "WARDEN_") {
			require.True(t, known[k], "warden-migrate sets %s but `warden audit migrate` does not read it", k)
		}
	}
	for k := range known {
		t.Setenv(k, senv[k])
	}
	require.GreaterOrEqual(t, len(s.Command), 2)
	root := newRootCmd()
	cmd, rest, err := root.Find(s.Command)
	require.NoError(t, err)
	require.Equal(t, "warden audit migrate", cmd.CommandPath(), "warden-migrate runs `audit migrate`")
	fs := newAuditMigrateCmd().Flags()
	require.NoError(t, fs.Parse(rest))
	return fs
}

func flagValue(t *testing.T, fs *pflag.FlagSet, name string) string {
	t.Helper()
	f := fs.Lookup(name)
	require.NotNil(t, f, name)
	return f.Value.String()
}

func TestComposeMigrateRunsAsTheOwnerBeforeTheWorker(t *testing.T) {
	p := loadCompose(t)
	pg, mig, wk := service(t, p, "postgres"), service(t, p, "warden-migrate"), service(t, p, "worker")
	penv := envOf(pg)

	// The same image as the worker, one-shot, after Postgres is healthy.
	require.Equal(t, wk.Image, mig.Image)
	require.NotNil(t, mig.Build, "warden-migrate builds the worker image too, so either may start first")
	require.Equal(t, wk.Build.Context, mig.Build.Context)
	require.Equal(t, wk.Build.Dockerfile, mig.Build.Dockerfile)
	require.Equal(t, "no", mig.Restart)
	require.Equal(t, types.ServiceConditionHealthy, mig.DependsOn["postgres"].Condition)
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, wk.DependsOn["warden-migrate"].Condition,
		"the worker starts only after the migrations and roles are in place")

	// It connects as the owner, and creates the worker's login.
	fs := migrateFlags(t, mig)
	owner, err := url.Parse(flagValue(t, fs, "database-url"))
	require.NoError(t, err)
	require.Equal(t, penv["POSTGRES_USER"], owner.User.Username(), "migrations and roles are the owner's")
	pw, _ := owner.User.Password()
	require.Equal(t, penv["POSTGRES_PASSWORD"], pw)
	require.Equal(t, "postgres", owner.Hostname())
	require.Equal(t, "/"+penv["POSTGRES_DB"], owner.Path)

	workerURL, err := url.Parse(envOf(wk)["WARDEN_DATABASE_URL"])
	require.NoError(t, err)
	require.Equal(t, owner.Host, workerURL.Host)
	require.Equal(t, owner.Path, workerURL.Path, "the worker reads the schema warden-migrate migrated")
	require.Equal(t, workerURL.User.Username(), flagValue(t, fs, "writer-login"), "warden-migrate creates the login the worker uses")
	workerPW, _ := workerURL.User.Password()
	require.NotEmpty(t, workerPW)
	require.Equal(t, workerPW, envOf(mig)["WARDEN_AUDIT_WRITER_PASSWORD"], "with the password the worker sends")
	require.Empty(t, flagValue(t, fs, "writer-password-file"))

	// The auditor example is off by default, and its variables reach the command.
	require.Empty(t, flagValue(t, fs, "auditor-login"))
	for _, v := range []string{"WARDEN_AUDIT_AUDITOR_LOGIN", "WARDEN_AUDIT_AUDITOR_PASSWORD", "WARDEN_AUDIT_AUDITOR_TENANTS"} {
		require.Contains(t, mig.Environment, v, "warden-migrate passes %s for the example auditor login", v)
	}

	// No privileges of its own.
	require.Equal(t, []string{"ALL"}, []string(mig.CapDrop))
	require.Contains(t, mig.SecurityOpt, "no-new-privileges:true")
	require.True(t, mig.ReadOnly)
}

func TestComposeWorkerNeverUsesTheDatabaseOwner(t *testing.T) {
	for _, env := range [][]string{
		nil, // the file's defaults
		{"POSTGRES_PASSWORD=owner-pw", "WARDEN_WORKER_DB_USER=svc_worker", "WARDEN_WORKER_DB_PASSWORD=worker-pw"},
	} {
		p := loadComposeWith(t, env)
		pg, temporal, wk := service(t, p, "postgres"), service(t, p, "temporal"), service(t, p, "worker")
		penv := envOf(pg)
		u, err := url.Parse(envOf(wk)["WARDEN_DATABASE_URL"])
		require.NoError(t, err, env)
		require.NotEqual(t, penv["POSTGRES_USER"], u.User.Username(), "the worker must not connect as the owner (POSTGRES_USER): %v", env)
		require.NotEqual(t, envOf(temporal)["POSTGRES_USER"], u.User.Username(), env)
		pw, _ := u.User.Password()
		require.NotEqual(t, penv["POSTGRES_PASSWORD"], pw, "nor with the owner's password: %v", env)
		require.NotContains(t, u.User.Username(), "${", env)
		for k := range wk.Environment {
			require.NotContains(t, k, "POSTGRES_", "the worker has no owner credential at all")
		}
		if env != nil {
			mig := service(t, p, "warden-migrate")
			require.Equal(t, "svc_worker", u.User.Username())
			require.Equal(t, "worker-pw", pw)
			require.Equal(t, "worker-pw", envOf(mig)["WARDEN_AUDIT_WRITER_PASSWORD"])
			require.Equal(t, "svc_worker", envOf(mig)["WARDEN_AUDIT_WRITER_LOGIN"])
		}
	}
}

func TestComposeNoServiceRunsSeccompUnconfined(t *testing.T) {
	p := loadCompose(t, "*")
	require.Contains(t, p.Services, "grafana", "every profile is loaded")
	for name, s := range p.Services {
		for _, opt := range s.SecurityOpt {
			o := strings.ReplaceAll(opt, ":", "=")
			require.NotEqual(t, "seccomp=unconfined", o, "%s runs without seccomp", name)
			require.False(t, s.Privileged, name)
		}
	}
	wk := service(t, p, "worker")
	var profiles []string
	for _, opt := range wk.SecurityOpt {
		if v, ok := strings.CutPrefix(opt, "seccomp="); ok {
			profiles = append(profiles, v)
		}
	}
	require.Equal(t, []string{workerSeccompProfile}, profiles, "the worker runs Warden's seccomp profile")
}

// dockerfileFinalStage returns the instructions of the Dockerfile's last
// stage (continuation lines joined) and every RUN of the file.
func dockerfileStages(t *testing.T) (final, runs []string) {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	var joined []string
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		joined = append(joined, cur+trimmed)
		cur = ""
	}
	for _, ins := range joined {
		f := strings.Fields(ins)
		switch strings.ToUpper(f[0]) {
		case "FROM":
			final = nil
		case "RUN":
			runs = append(runs, ins)
		}
		final = append(final, ins)
	}
	return final, runs
}

func TestDockerfileShipsEverySandboxHelper(t *testing.T) {
	final, runs := dockerfileStages(t)
	builds := strings.Join(runs, "\n")
	shipped := map[string]string{} // binary -> directory in the image
	for _, ins := range final {
		f := strings.Fields(ins)
		if strings.ToUpper(f[0]) != "COPY" {
			continue
		}
		var srcs []string
		for _, a := range f[1:] {
			if !strings.HasPrefix(a, "--") {
				srcs = append(srcs, a)
			}
		}
		require.GreaterOrEqual(t, len(srcs), 2, ins)
		dest := srcs[len(srcs)-1]
		for _, src := range srcs[:len(srcs)-1] {
			shipped[path.Base(src)] = dest
		}
	}
	for bin, pkg := range map[string]string{
		"warden":              "./cmd/warden",
		"warden-sandbox-init": "./sandbox/cmd/warden-sandbox-init",
		"warden-tools":        "./tools/cmd/warden-tools",
	} {
		require.Contains(t, builds, "-o /out/"+bin+" "+pkg, "the build stage builds %s from %s", bin, pkg)
		require.Contains(t, shipped, bin, "the final stage copies %s", bin)
	}
	// Beside the worker, where worker.Config finds the helpers by itself.
	require.Equal(t, shipped["warden"], shipped["warden-sandbox-init"])
	require.Equal(t, shipped["warden"], shipped["warden-tools"])
	var entrypoint string
	for _, ins := range final {
		if f := strings.Fields(ins); strings.ToUpper(f[0]) == "ENTRYPOINT" {
			entrypoint = strings.Join(f[1:], " ")
		}
	}
	require.Contains(t, entrypoint, `"`+path.Join(shipped["warden"], "warden")+`"`, "the entrypoint is the shipped warden")
}

func TestConfigurationDocCoversAuditMigrate(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	doc := string(b)
	newAuditMigrateCmd().Flags().VisitAll(func(f *pflag.Flag) {
		require.True(t, strings.Contains(doc, "`--"+f.Name+"`") || (f.Shorthand != "" && strings.Contains(doc, "`-"+f.Shorthand+"`")),
			"docs/configuration.md must document audit migrate --%s", f.Name)
	})
	for v := range migrateVariables() {
		require.True(t, strings.Contains(doc, "`"+v+"`"), "docs/configuration.md must document %s", v)
	}
}

// The opt-in AppArmor profile keeps docker-default's denials and adds only
// mount, pivot_root (and umount, as docker-default). apparmor_parser, where
// installed, parses it without loading it.
func TestComposeAppArmorProfileIsDockerDefaultPlusMounts(t *testing.T) {
	const file = "../../deploy/apparmor/warden-worker"
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	var rules []string
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	for _, want := range []string{
		"profile warden-worker flags=(attach_disconnected,mediate_deleted) {",
		"mount,", "pivot_root,", "umount,",
		"deny @{PROC}/* w,", "deny @{PROC}/sysrq-trigger rwklx,", "deny @{PROC}/kcore rwklx,",
		"deny /sys/firmware/** rwklx,", "deny /sys/kernel/security/** rwklx,", "deny /sys/fs/cg[^r]*/** wklx,",
	} {
		require.Contains(t, rules, want)
	}
	for _, r := range rules {
		require.NotRegexp(t, `^(capability [a-z_]+|change_profile|unix|dbus)`, r, "nothing beyond docker-default and the mounts")
	}
	parser, err := exec.LookPath("apparmor_parser")
	if err != nil {
		return // the rules above still hold
	}
	out, err := exec.Command(parser, "-Q", "-K", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	broken := filepath.Join(t.TempDir(), "broken")
	require.NoError(t, os.WriteFile(broken, []byte(strings.Replace(string(b), "pivot_root,", "pivot_root", 1)), 0o644))
	require.Error(t, exec.Command(parser, "-Q", "-K", broken).Run(), "the parser does check the syntax")
}
