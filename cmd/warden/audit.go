package main

import (
	"fmt"
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
		cfg   worker.Config
		f     warden.AuditFilter
		typ   string
		since string
	)
	cmd := &cobra.Command{
		Use:   "audit [--workflow ID] [--tenant T] [--tool NAME] [--decision D] [--since 1h|RFC3339]",
		Short: "Read the audit log, oldest first",
		Args:  cobra.NoArgs,
	}
	out := outputFlag(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		f.Type = warden.EventType(typ)
		if since != "" {
			t, err := parseSince(since, time.Now())
			if err != nil {
				return err
			}
			f.Since = t
		}
		cfg = cfg.WithDefaults()
		store, err := audit.Open(cmd.Context(), cfg.DatabaseURL, filepath.Join(cfg.DataDir, "audit.db"))
		if err != nil {
			return err
		}
		defer store.Close()
		events, err := store.Query(cmd.Context(), f)
		if err != nil {
			return err
		}
		return out.print(cmd.OutOrStdout(), events, toAny(events),
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
	fs := cmd.Flags()
	storeFlags(fs, &cfg)
	fs.StringVar(&f.WorkflowID, "workflow", "", "workflow ID")
	fs.StringVar(&f.Tenant, "tenant", "", "tenant")
	fs.StringVar(&f.Tool, "tool", "", "tool name")
	fs.StringVar(&f.Decision, "decision", "", "decision (allow, deny, require_approval, approve, reject, ...)")
	fs.StringVar(&typ, "type", "", "event type (run_started, policy_decided, tool_executed, ...)")
	fs.StringVar(&since, "since", "", "only events at or after this time: a duration ago (1h) or RFC3339")
	fs.IntVar(&f.Limit, "limit", 1000, "maximum rows")
	return cmd
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
