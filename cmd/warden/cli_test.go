package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/tools"
	"github.com/wardenhq/warden/worker"
)

func TestMain(m *testing.M) {
	tools.Reexec()
	if os.Getenv("WARDEN_TEST_BINARY_IS_CLI") == "1" {
		// This test binary started as the warden CLI (bench parked --workers
		// runs os.Executable() worker).
		cmd := newRootCmd()
		cmd.SetArgs(os.Args[1:])
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := cmd.ExecuteContext(ctx)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "warden:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startWorker starts a dev server and a worker (worker.Run) with cfg and
// returns the connection flags for CLI commands.
func startWorker(t *testing.T, cfg worker.Config) []string {
	t.Helper()
	srv := testenv.DevServer(t)
	cfg.TemporalAddress = srv.Address
	cfg.TaskQueue = "cli-" + testenv.RandomHex(4)
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	teststack.RunWorker(t, cfg)
	return []string{"--address", srv.Address, "--task-queue", cfg.TaskQueue}
}

// cli runs one warden command line and returns its stdout.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, _, err := cliStderr(t, args...)
	return out, err
}

// cliStderr runs one warden command line and returns its stdout and stderr.
func cliStderr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// waitPendingCLI polls `warden pending ID -o json` (with the connection
// flags conn) until exactly one request is pending, and returns it.
func waitPendingCLI(t *testing.T, id string, conn []string) warden.ApprovalRequest {
	t.Helper()
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		out, err := cli(t, append([]string{"pending", id, "-o", "json"}, conn...)...)
		return err == nil && json.Unmarshal([]byte(out), &pending) == nil && len(pending) == 1
	}, time.Minute, 300*time.Millisecond)
	return pending[0]
}

// TestCLIRunApproveAudit drives the CLI as a user would: start a run, list
// its pending approval, get refused as the requester, approve as alice,
// watch it complete and read the audit trail in every output format.
func TestCLIRunApproveAudit(t *testing.T) {
	dataDir := t.TempDir()
	conn := startWorker(t, worker.Config{DataDir: dataDir})
	id := "cli-" + testenv.RandomHex(4)
	out, err := cli(t, append([]string{"run", "--tenant", "acme", "--requester", "dana", "--goal", "refund A-1",
		"--model", "scripted/refund", "--id", id}, conn...)...)
	require.NoError(t, err)
	require.Equal(t, id+"\n", out, "run prints the workflow ID")

	_, err = cli(t, append([]string{"run", "--tenant", "acme"}, conn...)...)
	require.ErrorContains(t, err, "requester is required")

	req := waitPendingCLI(t, id, conn).RequestID

	require.Eventually(t, func() bool {
		out, err := cli(t, append([]string{"approvals", "--tenant", "acme", "--risk", "high", "-o", "json"}, conn...)...)
		var inbox []client.InboxEntry
		return err == nil && json.Unmarshal([]byte(out), &inbox) == nil && len(inbox) == 1 &&
			inbox[0].WorkflowID == id && inbox[0].PendingTool == "issue_refund" && inbox[0].Requester == "dana"
	}, 30*time.Second, 300*time.Millisecond, "warden approvals lists the waiting run")
	out, err = cli(t, append([]string{"approvals", "--tenant", "other", "-o", "json"}, conn...)...)
	require.NoError(t, err)
	require.JSONEq(t, "[]", out, "another tenant's inbox is empty")

	table, err := cli(t, append([]string{"pending", id}, conn...)...)
	require.NoError(t, err)
	require.Contains(t, table, "REQUEST")
	require.Contains(t, table, req)

	_, err = cli(t, append([]string{"approve", id, req, "--as", "dana"}, conn...)...)
	require.ErrorContains(t, err, "may not approve")
	_, err = cli(t, append([]string{"approve", id, req}, conn...)...)
	require.ErrorContains(t, err, "--as is required")

	out, err = cli(t, append([]string{"approve", id, req, "--as", "alice", "--reason", "verified", "-o", "json"}, conn...)...)
	require.NoError(t, err)
	var receipt warden.ApprovalReceipt
	require.NoError(t, json.Unmarshal([]byte(out), &receipt))
	require.Equal(t, warden.ApprovalStatusApproved, receipt.Status)

	require.Eventually(t, func() bool {
		out, err := cli(t, append([]string{"status", id, "-o", "json"}, conn...)...)
		var st warden.RunState
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == warden.StatusCompleted
	}, time.Minute, 300*time.Millisecond)

	out, err = cli(t, "audit", "--data-dir", dataDir, "--workflow", id, "-o", "jsonl")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var types, refusedBy []string
	for _, l := range lines {
		var ev warden.AuditEvent
		require.NoError(t, json.Unmarshal([]byte(l), &ev))
		if ev.Type == warden.EventApprovalRefused { // written by the worker as the refusal comes
			refusedBy = append(refusedBy, ev.Actor)
			continue
		}
		types = append(types, string(ev.Type))
	}
	require.Equal(t, []string{"run_started", "model_called", "tool_requested", "policy_decided", "approval_requested",
		"approval_decided", "tool_started", "tool_executed", "model_called", "approval_identities", "run_finished"}, types)
	require.Equal(t, []string{"dana"}, refusedBy, "dana's refused approval is on the record")

	out, err = cli(t, "audit", "verify", "--data-dir", dataDir)
	require.NoError(t, err, "a real run's trail verifies")
	require.Contains(t, out, "OK")

	table, err = cli(t, "audit", "--data-dir", dataDir, "--workflow", id, "--type", "approval_decided")
	require.NoError(t, err)
	require.Contains(t, table, "alice")
	require.Contains(t, table, "approve via update: verified")
	require.Equal(t, 2, len(strings.Split(strings.TrimSpace(table), "\n")), "header + one row")

	_, err = cli(t, "audit", "--data-dir", dataDir, "-o", "xml")
	require.ErrorContains(t, err, `unknown output format "xml"`)
	_, err = cli(t, "audit", "--data-dir", dataDir, "--since", "yesterday")
	require.ErrorContains(t, err, "--since")
}

func TestParseSince(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 15, 0, 0, 0, time.UTC)
	got, err := parseSince("90m", now)
	require.NoError(t, err)
	require.Equal(t, now.Add(-90*time.Minute), got)
	got, err = parseSince("2026-01-01T00:00:00Z", now)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), got)
	_, err = parseSince("last week", now)
	require.Error(t, err)
}

// TestCLISignedApprovals: keys from `warden keygen` go into the policy
// data; a critical refund then needs two approvals signed with
// `warden approve --key`, and unsigned or wrongly signed ones are refused.
func TestCLISignedApprovals(t *testing.T) {
	keys := t.TempDir()
	pubs := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		out, err := cli(t, "keygen", "--out", filepath.Join(keys, name+".key"), "--as", name)
		require.NoError(t, err)
		var entry struct {
			Warden struct {
				ApproverKeys map[string]string `json:"approver_keys"`
			} `json:"warden"`
		}
		line := out[strings.Index(out, "{"):]
		require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(line)), &entry), out)
		pubs[name] = entry.Warden.ApproverKeys[name]
	}
	_, err := cli(t, "keygen", "--out", filepath.Join(keys, "alice.key"), "--as", "alice")
	require.Error(t, err, "keygen never overwrites a key")

	b, _ := json.Marshal(pubs)
	policyDir := teststack.PolicyDir(t, map[string]string{"warden/approver_keys/data.json": string(b)})

	conn := startWorker(t, worker.Config{DataDir: t.TempDir(), PolicyDir: policyDir})
	id := "cli-signed-" + testenv.RandomHex(4)
	_, err = cli(t, append([]string{"run", "--tenant", "acme", "--requester", "dana", "--goal", "big refund",
		"--model", "scripted/big_refund", "--id", id}, conn...)...)
	require.NoError(t, err)
	req := waitPendingCLI(t, id, conn).RequestID
	approve := func(as string, extra ...string) (string, error) {
		return cli(t, append(append([]string{"approve", id, req, "--as", as, "-o", "json"}, extra...), conn...)...)
	}
	_, err = approve("alice")
	require.ErrorContains(t, err, "needs a signed approval")
	out, err := approve("alice", "--key", filepath.Join(keys, "alice.key"))
	require.NoError(t, err)
	require.Contains(t, out, `"status": "pending"`)
	_, err = approve("bob", "--key", filepath.Join(keys, "alice.key"))
	require.ErrorContains(t, err, "does not verify")
	out, err = approve("bob", "--key", filepath.Join(keys, "bob.key"))
	require.NoError(t, err)
	require.Contains(t, out, `"status": "approved"`)
	require.Eventually(t, func() bool {
		out, err := cli(t, append([]string{"status", id, "-o", "json"}, conn...)...)
		var st warden.RunState
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == warden.StatusCompleted && st.ToolCalls["executed"] == 1
	}, time.Minute, 300*time.Millisecond)
}
