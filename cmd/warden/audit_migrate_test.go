package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/worker"
)

func asUser(t *testing.T, dsn, user string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	require.NoError(t, err)
	u.User = url.User(user)
	return u.String()
}

// TestCLIAuditMigrate runs `warden audit migrate` twice as the owner on a
// fresh schema, then uses the writer and auditor logins it made.
func TestCLIAuditMigrate(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	ctx := t.Context()
	writer, auditor := "warden_cli_w_"+testenv.RandomHex(6), "warden_cli_a_"+testenv.RandomHex(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP ROLE IF EXISTS "+writer+"; DROP ROLE IF EXISTS "+auditor)
		require.NoError(t, err)
	})
	pwFile := filepath.Join(t.TempDir(), "writer-password")
	require.NoError(t, os.WriteFile(pwFile, []byte("s3cret-writer\n"), 0o600))
	t.Setenv("WARDEN_AUDIT_AUDITOR_PASSWORD", "s3cret-auditor")
	args := []string{"audit", "migrate", "--database-url", dsn,
		"--writer-login", writer, "--writer-password-file", pwFile,
		"--auditor-login", auditor, "--auditor-tenants", "acme"}

	out, err := cli(t, args...)
	require.NoError(t, err)
	require.Regexp(t, `audit schema "warden_test_[0-9a-f]+" \(as postgres\): applied \d+ migrations, now at version \d+:`, out)
	require.Contains(t, out, "  applied 0001_audit_events.sql\n")
	require.Contains(t, out, "  applied 0003_roles_rls.sql\n")
	require.Contains(t, out, "  created login "+writer+" with the given password")
	require.Contains(t, out, "  made login "+writer+" a member of warden_audit_writer\n")
	require.Contains(t, out, "  made login "+auditor+" a member of warden_audit_auditor\n")
	require.Contains(t, out, "  let auditor "+auditor+" read tenant acme\n")
	require.NotContains(t, out, "s3cret")

	out, err = cli(t, args...)
	require.NoError(t, err, "migrate is idempotent")
	require.Regexp(t, `migrations up to date at version \d+\n`, out)
	require.Contains(t, out, "roles, grants, policies and logins: already in place, nothing changed\n")

	// The writer login inserts; it cannot change or remove a row.
	wc, err := pgx.Connect(ctx, asUser(t, dsn, writer))
	require.NoError(t, err)
	defer wc.Close(ctx)
	for _, tenant := range []string{"acme", "globex"} {
		_, err = wc.Exec(ctx, "INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, occurred_at) VALUES ($1, 'run_started', $2, 'wf', now())",
			"e-"+tenant, tenant)
		require.NoError(t, err, "the writer may INSERT")
	}
	for _, stmt := range []string{"UPDATE audit_events SET message = 'x'", "DELETE FROM audit_events", "TRUNCATE audit_events"} {
		_, err := wc.Exec(ctx, stmt)
		require.ErrorContains(t, err, "permission denied", stmt)
	}

	// The auditor login reads its tenant through the CLI, and inserts nothing.
	out, err = cli(t, "audit", "--database-url", asUser(t, dsn, auditor), "-o", "jsonl")
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "\n"), out)
	require.Contains(t, out, `"event_id":"e-acme"`)
	ac, err := pgx.Connect(ctx, asUser(t, dsn, auditor))
	require.NoError(t, err)
	defer ac.Close(ctx)
	_, err = ac.Exec(ctx, "INSERT INTO audit_events (event_id, event_type, tenant, workflow_id, occurred_at) VALUES ('x', 'run_started', 'acme', 'wf', now())")
	require.ErrorContains(t, err, "permission denied")

	// The writer's URL cannot migrate.
	t.Setenv("WARDEN_AUDIT_AUDITOR_PASSWORD", "")
	_, err = cli(t, "audit", "migrate", "--database-url", asUser(t, dsn, writer))
	require.ErrorContains(t, err, "run `warden audit migrate` with the owner's database URL")
}

func TestCLIAuditMigrateInputs(t *testing.T) {
	dir := t.TempDir()
	out, err := cli(t, "audit", "migrate", "--data-dir", dir, "--database-url", "")
	require.NoError(t, err)
	require.Contains(t, out, "SQLite audit store "+filepath.Join(dir, "audit.db")+" is up to date")

	_, err = cli(t, "audit", "migrate", "--data-dir", dir, "--database-url", "", "--writer-login", "w")
	require.ErrorContains(t, err, "login roles are PostgreSQL's")

	t.Setenv("WARDEN_AUDIT_WRITER_PASSWORD", "pw")
	_, err = cli(t, "audit", "migrate", "--data-dir", dir)
	require.ErrorContains(t, err, "no --writer-login")
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	_, err = cli(t, "audit", "migrate", "--database-url", "postgres://127.0.0.1:1/x", "--writer-login", "w", "--writer-password-file", empty)
	require.ErrorContains(t, err, "keep one")
	t.Setenv("WARDEN_AUDIT_WRITER_PASSWORD", "")
	_, err = cli(t, "audit", "migrate", "--database-url", "postgres://127.0.0.1:1/x", "--writer-login", "w", "--writer-password-file", empty)
	require.ErrorContains(t, err, "is empty")
}

// TestCLIAuditMigrateThenWorkerAsWriter is the compose stack's order: the
// owner migrates and creates the worker's login, then a worker with only
// that writer login runs, approves and finishes a run, and its trail
// verifies.
func TestCLIAuditMigrateThenWorkerAsWriter(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	writer := "warden_cli_w_" + testenv.RandomHex(6)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP ROLE IF EXISTS "+writer)
		require.NoError(t, err)
	})
	_, err := cli(t, "audit", "migrate", "--database-url", dsn, "--writer-login", writer)
	require.NoError(t, err)

	writerURL := asUser(t, dsn, writer)
	conn := startWorker(t, worker.Config{DataDir: t.TempDir(), DatabaseURL: writerURL})
	id := "writer-" + testenv.RandomHex(4)
	_, err = cli(t, append([]string{"run", "--tenant", "acme", "--requester", "dana", "--goal", "refund A-1",
		"--model", "scripted/refund", "--id", id}, conn...)...)
	require.NoError(t, err)
	req := waitPendingCLI(t, id, conn)
	_, err = cli(t, append([]string{"approve", id, req.RequestID, "--as", "alice"}, conn...)...)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		out, err := cli(t, append([]string{"status", id, "-o", "json"}, conn...)...)
		var st warden.RunState
		return err == nil && json.Unmarshal([]byte(out), &st) == nil && st.Status == warden.StatusCompleted
	}, time.Minute, 300*time.Millisecond)

	out, err := cli(t, "audit", "--database-url", writerURL, "--workflow", id, "--type", "run_finished", "-o", "jsonl")
	require.NoError(t, err)
	require.Equal(t, 1, strings.Count(out, "\n"), "the writer login wrote the whole trail")
	out, err = cli(t, "audit", "verify", "--database-url", dsn)
	require.NoError(t, err)
	require.Contains(t, out, "OK")
}

func TestCLIAuditMigrateJSON(t *testing.T) {
	dsn := testenv.PostgresSchema(t)
	_, err := cli(t, "audit", "migrate", "--database-url", dsn)
	require.NoError(t, err)
	out, err := cli(t, "audit", "migrate", "--database-url", dsn, "-o", "json")
	require.NoError(t, err)
	var rep struct {
		Schema  string   `json:"schema"`
		User    string   `json:"user"`
		Version int64    `json:"version"`
		Applied []string `json:"applied"`
		Actions []string `json:"actions"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, "postgres", rep.User)
	require.Positive(t, rep.Version)
	require.NotNil(t, rep.Applied)
	require.Empty(t, rep.Applied)
	require.Contains(t, out, `"actions": []`)
}
