package main

import (
	"cmp"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	composecli "github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/worker"
)

// No Docker engine runs here, so the production stack is checked
// statically: docker-compose.yml is loaded with the compose-spec loader
// (what `docker compose` itself uses), interpolated with its defaults, and
// every value the worker reads is fed through the CLI's own flag parsing and
// compared with the services it must reach.

// Images the stack pins. The Temporal server matches the dev server the
// tests run on (CLI v1.5.1 = Server 1.29.1, UI 2.42.1).
const (
	temporalServerTag = "1.29.1"
	temporalUITag     = "2.42.1"
)

func loadCompose(t *testing.T, profiles ...string) *types.Project {
	t.Helper()
	return loadComposeWith(t, nil, profiles...)
}

// loadComposeWith loads docker-compose.yml with env (KEY=value) as the
// only environment.
func loadComposeWith(t *testing.T, env []string, profiles ...string) *types.Project {
	t.Helper()
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	opts, err := composecli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		composecli.WithWorkingDirectory(root),
		composecli.WithEnv(env), // the file's own defaults, never the test machine's environment
		composecli.WithResolvedPaths(true),
		composecli.WithProfiles(profiles),
	)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := opts.LoadProject(ctx)
	require.NoError(t, err, "docker-compose.yml must load with the compose-spec loader")
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	require.True(t, ok, "service %q missing from docker-compose.yml", name)
	return s
}

func envOf(s types.ServiceConfig) map[string]string {
	out := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}

var wardenVar = regexp.MustCompile(`WARDEN_[A-Z0-9_]+`)

// cliVariables is every WARDEN_* variable `warden worker` reads: the ones
// its flags name, plus WARDEN_LOG_LEVEL (newLogger).
func cliVariables() map[string]bool {
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	workerFlags(fs, &worker.Config{})
	vars := map[string]bool{"WARDEN_LOG_LEVEL": true}
	fs.VisitAll(func(f *pflag.Flag) {
		for _, v := range wardenVar.FindAllString(f.Usage, -1) {
			vars[v] = true
		}
	})
	return vars
}

func TestComposeStackMatchesWorkerConfig(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"postgres", "temporal", "temporal-setup", "temporal-ui", "warden-migrate", "worker"} {
		service(t, p, name)
	}
	pg, temporal, setup, ui, wk := service(t, p, "postgres"), service(t, p, "temporal"),
		service(t, p, "temporal-setup"), service(t, p, "temporal-ui"), service(t, p, "worker")

	// Pinned images.
	require.Equal(t, "temporalio/auto-setup:"+temporalServerTag, temporal.Image)
	require.Equal(t, "temporalio/admin-tools:"+temporalServerTag, setup.Image)
	require.Equal(t, "temporalio/ui:"+temporalUITag, ui.Image)
	require.True(t, strings.HasPrefix(pg.Image, "postgres:"), pg.Image)

	// Every WARDEN_* the worker service sets is one the CLI reads.
	wenv := envOf(wk)
	known := cliVariables()
	for k := range wk.Environment {
		if strings.HasPrefix(k, "WARDEN_") {
			require.True(t, known[k], "worker sets %s but `warden worker` does not read it", k)
		}
	}
	for _, must := range []string{"WARDEN_TEMPORAL_ADDRESS", "WARDEN_NAMESPACE", "WARDEN_TASK_QUEUE",
		"WARDEN_DATABASE_URL", "WARDEN_DATA_DIR", "WARDEN_METRICS_ADDRESS", "WARDEN_SANDBOX_MODE"} {
		require.Contains(t, wenv, must, "the worker service must set %s", must)
	}

	// Parse the worker's environment exactly as `warden worker` does.
	for k := range known {
		t.Setenv(k, wenv[k])
	}
	var cfg worker.Config
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	workerFlags(fs, &cfg)
	require.NoError(t, fs.Parse(nil))
	cfg = cfg.WithDefaults()
	require.NoError(t, cfg.Validate())
	require.Equal(t, "isolated", cfg.SandboxMode, "production runs the isolated sandbox")
	require.Equal(t, warden.DefaultTaskQueue, cfg.TaskQueue, "wclient.New(tc, \"\") must reach this worker")

	// Temporal: the worker, the UI and the setup job all dial the temporal
	// service on the port it publishes; the namespace is the one auto-setup creates.
	host, port, err := net.SplitHostPort(cfg.TemporalAddress)
	require.NoError(t, err)
	require.Equal(t, "temporal", host)
	require.True(t, publishes(temporal, port), "temporal must publish %s", port)
	require.Equal(t, cfg.TemporalAddress, envOf(ui)["TEMPORAL_ADDRESS"])
	require.Equal(t, cfg.TemporalAddress, envOf(setup)["TEMPORAL_ADDRESS"])
	tenv := envOf(temporal)
	require.Equal(t, cfg.Namespace, tenv["DEFAULT_NAMESPACE"])
	require.Equal(t, cfg.Namespace, envOf(setup)["TEMPORAL_NAMESPACE"])

	// Search attributes: the setup job registers every one Warden uses, as Keyword.
	script := strings.Join(append(slices.Clone([]string(setup.Entrypoint)), setup.Command...), " ")
	for _, sa := range warden.SearchAttributes {
		require.Contains(t, script, sa, "temporal-setup must register search attribute %s", sa)
	}
	require.Contains(t, script, "--type Keyword")

	// PostgreSQL: the audit URL and Temporal's persistence point at the
	// postgres service; the worker logs in as its own writer login (see
	// TestComposeWorkerNeverUsesTheDatabaseOwner); Temporal uses its own
	// databases.
	penv := envOf(pg)
	u, err := url.Parse(cfg.DatabaseURL)
	require.NoError(t, err)
	require.Equal(t, "postgres", u.Hostname())
	require.Equal(t, "5432", u.Port())
	require.Equal(t, "/"+penv["POSTGRES_DB"], u.Path)
	require.Equal(t, "postgres", tenv["POSTGRES_SEEDS"])
	require.Equal(t, "5432", tenv["DB_PORT"])
	require.Equal(t, penv["POSTGRES_USER"], tenv["POSTGRES_USER"])
	require.Equal(t, penv["POSTGRES_PASSWORD"], tenv["POSTGRES_PWD"])
	require.Contains(t, []string{"postgres12", "postgres12_pgx"}, tenv["DB"])
	require.NotEqual(t, penv["POSTGRES_DB"], tenv["DBNAME"], "Temporal must not share the audit database")
	require.NotEqual(t, penv["POSTGRES_DB"], tenv["VISIBILITY_DBNAME"])

	// Named volumes: Postgres data and the worker's data dir survive restarts.
	requireNamedVolume(t, p, pg, "/var/lib/postgresql/data")
	requireNamedVolume(t, p, wk, cfg.DataDir)

	// Metrics: published, and the health check probes that port.
	_, mport, err := net.SplitHostPort(cfg.MetricsAddress)
	require.NoError(t, err)
	require.True(t, publishes(wk, mport), "worker must publish the metrics port %s", mport)

	// Health checks, and start order on them.
	for _, s := range []types.ServiceConfig{pg, temporal, wk} {
		require.NotNil(t, s.HealthCheck, "%s needs a health check", s.Name)
		require.NotEmpty(t, s.HealthCheck.Test, s.Name)
	}
	require.Contains(t, strings.Join(wk.HealthCheck.Test, " "), mport)
	require.Equal(t, types.ServiceConditionHealthy, wk.DependsOn["postgres"].Condition)
	require.Equal(t, types.ServiceConditionHealthy, wk.DependsOn["temporal"].Condition)
	require.Equal(t, types.ServiceConditionCompletedSuccessfully, wk.DependsOn["temporal-setup"].Condition)
	require.Equal(t, types.ServiceConditionHealthy, temporal.DependsOn["postgres"].Condition)

	// The worker image is built here; the sandbox's container privileges
	// are exactly the documented ones: no capabilities, not privileged.
	require.NotNil(t, wk.Build)
	require.Equal(t, "Dockerfile", filepath.Base(cmp.Or(wk.Build.Dockerfile, "Dockerfile")))
	require.False(t, wk.Privileged, "the sandbox must not need a privileged container")
	require.Equal(t, []string{"ALL"}, []string(wk.CapDrop))
	require.Empty(t, wk.CapAdd, "the sandbox needs no capabilities")
	for _, opt := range []string{"seccomp=" + workerSeccompProfile, "apparmor=unconfined", "systempaths=unconfined", "no-new-privileges:true"} {
		require.Contains(t, wk.SecurityOpt, opt)
	}
	require.Len(t, wk.SecurityOpt, 4, "every container security option of the worker is one docs/configuration.md explains")
	require.True(t, wk.ReadOnly, "the worker's root file system is read-only")

	// Graceful shutdown: Docker waits longer than the worker lets activities finish.
	require.NotNil(t, wk.StopGracePeriod)
	require.Greater(t, time.Duration(*wk.StopGracePeriod), cfg.StopTimeout)
}

func TestDockerfileBuildsNonRootMultiStageWorker(t *testing.T) {
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	var froms int
	var user, entrypoint string
	var builds []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms++
			user = "" // USER applies per stage
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		}
		if i := strings.Index(line, "go build"); i >= 0 {
			builds = append(builds, line[i:])
		}
	}
	require.GreaterOrEqual(t, froms, 2, "multi-stage build")
	require.NotEmpty(t, user, "the final stage must set USER")
	uid := strings.SplitN(user, ":", 2)[0]
	require.NotContains(t, []string{"root", "0"}, uid, "the worker must not run as root")
	require.Contains(t, entrypoint, "warden")
	joined := strings.Join(builds, "\n")
	require.Contains(t, joined, "./cmd/warden")
	require.Contains(t, joined, "./sandbox/cmd/warden-sandbox-init", "ship the dedicated sandbox init next to the worker")
}

func publishes(s types.ServiceConfig, port string) bool {
	for _, p := range s.Ports {
		if p.Published == port || (p.Published == "" && port == strconv.FormatUint(uint64(p.Target), 10)) {
			return true
		}
	}
	return slices.Contains(s.Expose, port)
}

func requireNamedVolume(t *testing.T, p *types.Project, s types.ServiceConfig, target string) {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Target == target {
			require.Equal(t, types.VolumeTypeVolume, v.Type, "%s:%s must be a named volume", s.Name, target)
			_, ok := p.Volumes[v.Source]
			require.True(t, ok, "volume %q must be declared", v.Source)
			return
		}
	}
	t.Fatalf("service %s mounts no volume at %s", s.Name, target)
}

func TestComposeObservabilityProfileScrapesTheWorker(t *testing.T) {
	base := loadCompose(t)
	_, on := base.Services["prometheus"]
	require.False(t, on, "Prometheus and Grafana are opt-in (profile observability)")

	p := loadCompose(t, "observability")
	prom, graf, wk := service(t, p, "prometheus"), service(t, p, "grafana"), service(t, p, "worker")
	var promConfig string
	for _, v := range prom.Volumes {
		if v.Target == "/etc/prometheus/prometheus.yml" {
			promConfig = v.Source
		}
	}
	require.NotEmpty(t, promConfig, "prometheus mounts its scrape config")
	b, err := os.ReadFile(promConfig)
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(envOf(wk)["WARDEN_METRICS_ADDRESS"])
	require.NoError(t, err)
	require.Contains(t, string(b), `"worker:`+port+`"`, "Prometheus scrapes the worker's metrics port")

	var dashboard bool
	for _, v := range graf.Volumes {
		if strings.HasSuffix(v.Source, filepath.Join("deploy", "grafana", "warden.json")) {
			_, err := os.Stat(v.Source)
			require.NoError(t, err)
			dashboard = true
		}
	}
	require.True(t, dashboard, "Grafana provisions the Warden dashboard")
}

func TestConfigurationDocCoversEveryWorkerSetting(t *testing.T) {
	b, err := os.ReadFile("../../docs/configuration.md")
	require.NoError(t, err)
	doc := string(b)
	fs := pflag.NewFlagSet("worker", pflag.ContinueOnError)
	workerFlags(fs, &worker.Config{})
	fs.VisitAll(func(f *pflag.Flag) {
		require.True(t, strings.Contains(doc, "`--"+f.Name+"`"), "docs/configuration.md must document --%s", f.Name)
	})
	for v := range cliVariables() {
		require.True(t, strings.Contains(doc, "`"+v+"`"), "docs/configuration.md must document %s", v)
	}
}

// TestComposeTemporalHasTheDevServersLimits: the production Temporal reads
// the payload and Signal limits from deploy/temporal/dynamicconfig.yaml,
// with the values the dev server runs with, so no sender can fill a run's
// history until Temporal terminates it (docs/approvals.md).
func TestComposeTemporalHasTheDevServersLimits(t *testing.T) {
	p := loadCompose(t)
	tmp := service(t, p, "temporal")
	path := envOf(tmp)["DYNAMIC_CONFIG_FILE_PATH"]
	require.NotEmpty(t, path, "temporal must set DYNAMIC_CONFIG_FILE_PATH")
	var source string
	for _, v := range tmp.Volumes {
		if v.Target == path {
			require.True(t, v.ReadOnly, "the dynamic config is mounted read-only")
			source = v.Source
		}
	}
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(root, "deploy/temporal/dynamicconfig.yaml"), source, "temporal must mount the dynamic config at %s", path)
	raw, err := os.ReadFile(source)
	require.NoError(t, err)
	var cfg map[string][]struct {
		Value any `yaml:"value"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &cfg))
	value := func(key string) any {
		require.Len(t, cfg[key], 1, "%s must have one unconstrained value", key)
		return cfg[key][0].Value
	}
	require.Equal(t, devserver.MaxPayloadBytes, value("limit.blobSize.error"))
	require.Equal(t, devserver.MaxSignalsPerRun, value("history.maximumSignalsPerExecution"))
	require.Equal(t, 255, value("limit.maxIDLength"), "the image's own default, which the file replaces")
}
