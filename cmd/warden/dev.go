package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	tlog "go.temporal.io/sdk/log"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/worker"
)

// demoGoal is what the demo run asks the scripted model to do.
const demoGoal = "Customer 1234 says their parcel never arrived. Look at the workspace, tidy up, and refund them 250 USD."

func newDevCmd() *cobra.Command {
	var (
		cfg       worker.Config
		port      int
		uiPort    int
		noDemo    bool
		tenant    string
		requester string
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the local stack: Temporal dev server + Web UI, a worker, and a demo run waiting for approval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			// The defaults, once, here: the paths below need the data
			// directory, and worker.Run takes the config as it is.
			cfg = cfg.WithDefaults()
			if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
				return err
			}
			logPath := filepath.Join(cfg.DataDir, "dev.log")
			logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
			if err != nil {
				return err
			}
			defer logFile.Close()
			cfg.Logger = slog.New(slog.NewTextHandler(logFile, nil))
			if err := devSealing(&cfg); err != nil {
				return err
			}
			out := cmd.OutOrStdout()

			fmt.Fprintf(out, "Starting the Temporal dev server (CLI %s) on 127.0.0.1:%d with the Web UI on :%d ...\n", devserver.CLIVersion, port, uiPort)
			srv, err := devserver.Start(ctx, devserver.Options{
				Port: port, UIPort: uiPort, EnableUI: true,
				DBFile: filepath.Join(cfg.DataDir, "temporal.db"),
				Stdout: logFile, Stderr: logFile,
				Logger: tlog.NewStructuredLogger(cfg.Logger),
			})
			if err != nil {
				return fmt.Errorf("%w\n(is another server on port %d? use --port/--ui-port; server log: %s)", err, port, logPath)
			}
			defer func() { _ = srv.Stop() }()
			cfg.TemporalAddress = srv.Address

			ready := make(chan *worker.Deps, 1)
			workerDone := make(chan error, 1)
			wctx, stopWorker := context.WithCancel(ctx)
			defer stopWorker()
			go func() { workerDone <- worker.Run(wctx, cfg, func(d *worker.Deps) { ready <- d }) }()
			var deps *worker.Deps
			select {
			case deps = <-ready:
			case err := <-workerDone:
				return fmt.Errorf("worker: %w (log: %s)", err, logPath)
			case <-ctx.Done():
				return nil
			}
			printStack(out, cfg, srv, deps, logPath)

			if !noDemo {
				if err := runDemo(ctx, out, cfg, srv, deps, tenant, requester); err != nil {
					fmt.Fprintf(out, "\nThe demo run did not get going: %v\nThe stack is still up; start runs with ./bin/warden run.\n", err)
				}
			}
			fmt.Fprintln(out, "\nCtrl-C stops the worker and the dev server.")
			select {
			case <-ctx.Done():
			case err := <-workerDone:
				if err != nil {
					return fmt.Errorf("worker stopped: %w (log: %s)", err, logPath)
				}
			}
			fmt.Fprintln(out, "\nStopping.")
			return nil
		},
	}
	fs := cmd.Flags()
	workerFlags(fs, &cfg)
	fs.IntVar(&port, "port", 7233, "Temporal frontend port")
	fs.IntVar(&uiPort, "ui-port", 8233, "Temporal Web UI port")
	fs.BoolVar(&noDemo, "no-demo", false, "do not start the demo run")
	fs.StringVar(&tenant, "tenant", "acme", "tenant of the demo run")
	fs.StringVar(&requester, "requester", "dana", "requester of the demo run (may not approve it)")
	return cmd
}

func printStack(w io.Writer, cfg worker.Config, srv *devserver.Server, deps *worker.Deps, logPath string) {
	store := "SQLite " + filepath.Join(cfg.DataDir, "audit.db")
	if cfg.DatabaseURL != "" {
		store = "PostgreSQL"
	}
	model := cfg.ModelBaseURL
	if deps.Scripted != nil {
		model = "SCRIPTED model at " + deps.ModelBaseURL + " (set WARDEN_MODEL_BASE_URL for a real one)"
	}
	policy := cmpOr(cfg.PolicyDir, "embedded default bundle")
	fmt.Fprintf(w, `
Warden dev stack is up.

  Temporal server  %s (namespace %s)
  Temporal Web UI  %s
  Worker           task queue %q · audit: %s · policy: %s · sandbox: %s
  Model            %s
  Audit seals      signed with %s, anchored in %s
                   check: ./bin/warden audit verify --data-dir %s --pubkey %s --anchor %s
  Logs             %s

Approver inbox (runs waiting for approval):
  %s
`, srv.Address, cfg.Namespace, srv.UIAddress, cfg.TaskQueue, store, policy, deps.Activities.SandboxMode, model,
		cfg.AuditSealKey, cfg.AuditAnchor, cfg.DataDir, cfg.AuditSealKey+".pub", cfg.AuditAnchor, logPath,
		warden.InboxURL(srv.UIAddress, cfg.Namespace, warden.InboxFilter{}))
}

// devSealing gives the dev stack signed, anchored seals by default: a seal
// key made on first start in the data directory (kept across restarts, so
// earlier seals still verify) and an anchor file beside it.
func devSealing(cfg *worker.Config) error {
	if cfg.AuditSealKey == "" {
		cfg.AuditSealKey = filepath.Join(cfg.DataDir, "audit-seal.key")
		if _, err := os.Stat(cfg.AuditSealKey); errors.Is(err, os.ErrNotExist) {
			if err := writeSealKey(cfg.AuditSealKey, "dev-"+time.Now().UTC().Format("20060102")); err != nil {
				return err
			}
		}
	}
	cfg.AuditAnchor = cmpOr(cfg.AuditAnchor, filepath.Join(cfg.DataDir, "audit-anchor.jsonl"))
	return nil
}

func runDemo(ctx context.Context, w io.Writer, cfg worker.Config, srv *devserver.Server, deps *worker.Deps, tenant, requester string) error {
	c := client.New(srv.Client(), cfg.TaskQueue)
	h, err := c.Start(ctx, warden.RunRequest{
		Tenant: tenant, Requester: requester, Goal: demoGoal, Model: "scripted/demo",
	}, client.StartOptions{})
	if err != nil {
		return err
	}
	var pending []warden.ApprovalRequest
	deadline := time.Now().Add(90 * time.Second)
	for len(pending) == 0 {
		if time.Now().After(deadline) {
			return errors.New("no approval request appeared within 90s; see the log")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(300 * time.Millisecond):
		}
		pending, _ = c.PendingApprovals(ctx, h.WorkflowID)
	}
	decisions, _ := deps.Audit.Query(ctx, warden.AuditFilter{WorkflowID: h.WorkflowID, Type: warden.EventToolRequested})
	fmt.Fprintf(w, "\nDemo run %s (tenant %s, requester %s): the model asked for %d tool calls\n", h.WorkflowID, tenant, requester, len(decisions))
	verdicts, _ := deps.Audit.Query(ctx, warden.AuditFilter{WorkflowID: h.WorkflowID, Type: warden.EventPolicyDecided})
	for i, ev := range decisions {
		verdict := ""
		if i < len(verdicts) {
			verdict = verdicts[i].Decision + ": " + strings.Join(verdicts[i].Reasons, "; ")
		}
		fmt.Fprintf(w, "  %-12s %-42s → %s\n", ev.Tool, clip(string(ev.Args), 42), clip(verdict, 80))
	}
	p := pending[0]
	approver := "alice"
	if len(p.Approvers.Users) > 0 && p.Approvers.Users[0] != "*" {
		approver = p.Approvers.Users[0]
	}
	payload, _ := json.Marshal(warden.ApprovalDecision{RequestID: p.RequestID, Decision: warden.ApprovalApprove, Approver: approver, Reason: "customer verified"})
	fmt.Fprintf(w, `
Waiting for approval: %s (risk %s), request %s
  may approve: %s · expires %s

Approve it in the Web UI:
  1. open %s/namespaces/%s/workflows/%s
  2. More Actions (top right) → Send an Update → choose %q
  3. paste this JSON and submit:
     %s
Or from a shell:
  ./bin/warden approve %s %s --as %s --reason "customer verified"
Then read the whole trail:
  ./bin/warden audit --workflow %s
`, p.Tool, p.Risk, p.RequestID, strings.Join(p.Approvers.Users, ", "), p.ExpiresAt.Local().Format(time.RFC1123),
		srv.UIAddress, cfg.Namespace, url.PathEscape(h.WorkflowID), warden.UpdateApprove, payload,
		h.WorkflowID, p.RequestID, approver, h.WorkflowID)

	go func() {
		res, err := c.Result(ctx, h.WorkflowID)
		if err != nil || ctx.Err() != nil {
			return
		}
		fmt.Fprintf(w, "\nDemo run %s finished: %s\n%s\nAudit trail: ./bin/warden audit --workflow %s\n", h.WorkflowID, res.Status, res.Answer, h.WorkflowID)
	}()
	return nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
