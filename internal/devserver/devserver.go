// Package devserver finds and starts the local Temporal dev server (Temporal
// CLI v1.5.1, built once per machine) with Warden's search attributes and
// the dispatch tuning BENCHMARKS.md runs with. `warden dev` and the integration
// tests share it.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/wardenhq/warden"
)

// CLIVersion is the Temporal CLI version Warden builds and tests against.
const CLIVersion = "v1.5.1"

// InstallHint tells a user how to get the CLI.
const InstallHint = "build it once with `make temporal-cli` (go install github.com/temporalio/cli/cmd/temporal@" + CLIVersion +
	", about 13 minutes) or point WARDEN_TEMPORAL_CLI at an existing binary"

// FindCLI locates the temporal binary: $WARDEN_TEMPORAL_CLI, then $GOBIN,
// $GOPATH/bin and ~/go/bin, then $PATH.
func FindCLI() (string, error) {
	if p := os.Getenv("WARDEN_TEMPORAL_CLI"); p != "" {
		if isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("WARDEN_TEMPORAL_CLI=%s is not an executable file", p)
	}
	var candidates []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		candidates = append(candidates, filepath.Join(gobin, "temporal"))
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		for _, p := range filepath.SplitList(gopath) {
			candidates = append(candidates, filepath.Join(p, "bin", "temporal"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, "go", "bin", "temporal"))
	}
	for _, c := range candidates {
		if isExecutable(c) {
			return c, nil
		}
	}
	if p, err := exec.LookPath("temporal"); err == nil {
		return p, nil
	}
	return "", errors.New("the Temporal CLI was not found; " + InstallHint)
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// Options configure Start.
type Options struct {
	// Port is the frontend port; 0 picks a free one.
	Port int
	// UIPort is the Web UI port when EnableUI; 0 picks a free one.
	UIPort   int
	EnableUI bool
	// DBFile persists the server's state in a SQLite file; empty keeps it in memory.
	DBFile   string
	LogLevel string
	Logger   log.Logger
	Stdout   io.Writer
	Stderr   io.Writer
}

// Server is a running dev server.
type Server struct {
	*testsuite.DevServer
	// Address is the frontend host:port.
	Address string
	// UIAddress is the Web UI base URL (empty without the UI).
	UIAddress string
}

// Start starts the dev server and waits until it answers.
func Start(ctx context.Context, opts Options) (*Server, error) {
	path, err := FindCLI()
	if err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := []string{
		// The single-shard dev server reads its transfer queue at 20/s
		// by default; 100 makes each dispatch ~5x faster without burning CPU.
		"--dynamic-config-value", "history.transferProcessorMaxPollRPS=100",
		"--dynamic-config-value", "system.enableActivityEagerExecution=true",
		"--dynamic-config-value", fmt.Sprintf("limit.blobSize.error=%d", MaxPayloadBytes),
		"--dynamic-config-value", fmt.Sprintf("history.maximumSignalsPerExecution=%d", MaxSignalsPerRun),
	}
	for _, name := range warden.SearchAttributes {
		args = append(args, "--search-attribute", name+"=Keyword")
	}
	ds := testsuite.DevServerOptions{
		ExistingPath: path,
		// Loopback: gzip would only cost CPU (worker.Config.TemporalCompression).
		ClientOptions: &client.Options{HostPort: addr, Namespace: "default", Logger: opts.Logger,
			ConnectionOptions: client.ConnectionOptions{GrpcCompression: &client.GrpcCompressionNone{}}},
		DBFilename: opts.DBFile,
		EnableUI:   opts.EnableUI,
		LogLevel:   cmpStr(opts.LogLevel, "error"),
		ExtraArgs:  args,
		Stdout:     opts.Stdout,
		Stderr:     opts.Stderr,
	}
	uiAddr := ""
	if opts.EnableUI {
		ui := opts.UIPort
		if ui == 0 {
			if ui, err = freePort(); err != nil {
				return nil, err
			}
		}
		ds.UIPort = strconv.Itoa(ui)
		uiAddr = "http://127.0.0.1:" + ds.UIPort
	}
	srv, err := testsuite.StartDevServer(ctx, ds)
	if err != nil {
		return nil, fmt.Errorf("start Temporal dev server (%s) on %s: %w", path, addr, err)
	}
	return &Server{DevServer: srv, Address: addr, UIAddress: uiAddr}, nil
}

// The server limits that keep any one sender from filling a run's history
// (Temporal terminates a run whose history passes 50 MiB): no payload over
// MaxPayloadBytes (Temporal's default is 2 MiB), and no more than
// MaxSignalsPerRun Signals per Temporal run (default 10,000), so Signals
// can add at most 32 MiB to a run. Updates the validator refuses never
// reach the history. docker-compose.yml's Temporal reads the same values
// from deploy/temporal/dynamicconfig.yaml (a test keeps the two equal).
const (
	MaxPayloadBytes  = 1 << 20
	MaxSignalsPerRun = 32
)

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
