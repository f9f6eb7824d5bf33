package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/worker"
)

func newAuditCmd() *cobra.Command {
	var (
		cfg          worker.Config
		f            warden.AuditFilter
		typ, risk    string
		since, until string
		format       string
	)
	cmd := &cobra.Command{
		Use:   "audit [--workflow ID] [--tenant T] [--tool NAME] [--decision D] [--risk R] [--actor A] [--approver A] [--since T] [--until T] [--text S] [--after-seq N]",
		Short: "Read the audit log, oldest first (subcommands: verify, export, seal, retain, keygen, migrate)",
		Long: "Read the audit log, oldest first. Filters combine with AND. Pages hold --limit rows; when a page is full,\n" +
			"the next one starts after its last SEQ (--after-seq). See docs/audit.md.",
		Args: cobra.NoArgs,
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := validateAuditFormat(format); err != nil {
			return err
		}
		f.Type, f.Risk = warden.EventType(typ), warden.Risk(risk)
		now := time.Now()
		var err error
		if f.Since, err = parseTimeFlag("--since", since, now); err != nil {
			return err
		}
		if f.Until, err = parseTimeFlag("--until", until, now); err != nil {
			return err
		}
		store, err := openAuditStore(cmd, cfg)
		if err != nil {
			return err
		}
		defer store.Close()
		events, err := store.Query(cmd.Context(), f)
		if err != nil {
			return err
		}
		if err := printEvents(cmd.OutOrStdout(), format, events); err != nil {
			return err
		}
		if limit := max(f.Limit, 0); len(events) > 0 && len(events) == min(cmp0(limit, audit.DefaultQueryLimit), audit.MaxQueryLimit) {
			fmt.Fprintf(cmd.ErrOrStderr(), "more rows may follow: add --after-seq %d\n", events[len(events)-1].Seq)
		}
		return nil
	}
	fs := cmd.Flags()
	storeFlags(fs, &cfg)
	fs.StringVarP(&format, "output", "o", "table", "output format: table, json, jsonl or csv")
	fs.StringVar(&f.WorkflowID, "workflow", "", "workflow ID")
	fs.StringVar(&f.Tenant, "tenant", "", "tenant")
	fs.StringVar(&f.Tool, "tool", "", "tool name")
	fs.StringVar(&f.Decision, "decision", "", "decision (allow, deny, require_approval, approve, reject, ...)")
	fs.StringVar(&typ, "type", "", "event type (run_started, policy_decided, tool_executed, ...)")
	fs.StringVar(&risk, "risk", "", "risk (low, medium, high, critical)")
	fs.StringVar(&f.Actor, "actor", "", "actor (a requester, an approver, model, policy, sandbox, system)")
	fs.StringVar(&f.Approver, "approver", "", "approval decisions by this approver")
	fs.StringVar(&f.Text, "text", "", "case-insensitive text in args, result or message")
	fs.StringVar(&since, "since", "", "only events at or after this time: a duration ago (1h) or RFC3339")
	fs.StringVar(&until, "until", "", "only events before this time: a duration ago (1h) or RFC3339")
	fs.Int64Var(&f.AfterSeq, "after-seq", 0, "only events after this SEQ (the next page)")
	fs.IntVar(&f.Limit, "limit", 1000, fmt.Sprintf("maximum rows (at most %d)", audit.MaxQueryLimit))
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd(), newAuditSealCmd(), newAuditRetainCmd(), newAuditKeygenCmd(), newAuditMigrateCmd())
	return cmd
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func validateAuditFormat(format string) error {
	switch format {
	case "table", "json", "jsonl", "csv":
		return nil
	}
	return fmt.Errorf("unknown output format %q: use table, json, jsonl or csv", format)
}

// openAuditStore opens the store the command's flags name.
func openAuditStore(cmd *cobra.Command, cfg worker.Config) (audit.Store, error) {
	cfg = cfg.WithDefaults()
	return audit.Open(cmd.Context(), cfg.DatabaseURL, filepath.Join(cfg.DataDir, "audit.db"))
}

// csvHeader is the column order of -o csv.
var csvHeader = []string{"seq", "occurred_at", "tenant", "workflow_id", "run_id", "step", "call_id", "event_type",
	"actor", "tool", "decision", "risk", "reasons", "policy_revision", "request_id", "model", "input_tokens",
	"output_tokens", "message", "args", "result", "redactions", "event_id", "prev_hash", "hash"}

func printEvents(w io.Writer, format string, events []warden.AuditEvent) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		for _, e := range events {
			redactions := ""
			if len(e.Redactions) > 0 {
				b, _ := json.Marshal(e.Redactions)
				redactions = string(b)
			}
			if err := cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.OccurredAt.UTC().Format(time.RFC3339Nano),
				e.Tenant, e.WorkflowID, e.RunID, strconv.Itoa(e.Step), e.CallID, string(e.Type), e.Actor, e.Tool,
				e.Decision, string(e.Risk), strings.Join(e.Reasons, "; "), e.PolicyRevision, e.RequestID, e.Model,
				strconv.Itoa(e.InputTokens), strconv.Itoa(e.OutputTokens), e.Message, string(e.Args), string(e.Result),
				redactions, e.ID, e.PrevHash, e.Hash}); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	out := &output{format: format}
	return out.print(w, events, toAny(events),
		[]string{"SEQ", "TIME", "STEP", "EVENT", "ACTOR", "TOOL", "DECISION", "RISK", "DETAIL"},
		func(i int) []string {
			e := events[i]
			detail := e.Message
			if len(e.Reasons) > 0 && e.Type == warden.EventPolicyDecided {
				detail = strings.Join(e.Reasons, "; ")
			}
			if e.Type == warden.EventModelCalled {
				detail = fmt.Sprintf("%s (%s, %d+%d tokens)", e.Message, e.Model, e.InputTokens, e.OutputTokens)
			}
			return []string{strconv.FormatInt(e.Seq, 10), e.OccurredAt.Local().Format("15:04:05.000"), strconv.Itoa(e.Step),
				string(e.Type), e.Actor, e.Tool, e.Decision, string(e.Risk), clip(detail, 90)}
		})
}

// parseTimeFlag parses an optional time flag: empty is the zero time.
func parseTimeFlag(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := parseSince(s, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want a duration like 90m or a time like 2026-01-02T15:04:05Z", name, s)
	}
	return t, nil
}

// parseSince accepts a duration ago ("90m") or an RFC3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a duration like 90m or a time like 2026-01-02T15:04:05Z", s)
}
