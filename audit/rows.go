package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// How both stores map events to audit_events rows and back: the column
// lists, the values written, the scan destinations and the WHERE clause of
// Query, each parameterized by the backend's placeholders and time
// encoding.

// likeEscaper escapes LIKE wildcards so Text matches literally.
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// queryLimit resolves a filter's Limit.
func queryLimit(limit int) (int, error) {
	switch {
	case limit < 0:
		return 0, fmt.Errorf("limit must not be negative, got %d", limit)
	case limit == 0:
		return DefaultQueryLimit, nil
	default:
		return min(limit, MaxQueryLimit), nil
	}
}

// columns lists audit_events' columns in the order both backends insert
// (without seq) and select (with seq first).
const columns = "event_id, event_type, tenant, workflow_id, run_id, step, call_id, actor, tool, " +
	"args, result, decision, risk, reasons, policy_revision, request_id, model, " +
	"input_tokens, output_tokens, message, occurred_at, redactions, prev_hash, hash"

// columnCount is the number of columns in columns.
const columnCount = 24

// chainColumns are what the chained append writes: columns and what the
// store assigns (hashed from hash version 2).
const chainColumns = columns + ", seq, recorded_at, hash_version"

// chainColumnCount is the number of columns in chainColumns.
const chainColumnCount = columnCount + 3

// selectColumns is what Query reads.
const selectColumns = "seq, " + columns + ", recorded_at, hash_version"

// chainValues returns e's values in chainColumns order; times are encoded
// by the backend's encodeTime.
func chainValues(e warden.AuditEvent, encodeTime func(time.Time) any) ([]any, error) {
	values, err := insertValues(e, encodeTime(e.OccurredAt))
	if err != nil {
		return nil, err
	}
	return append(values, e.Seq, encodeTime(e.RecordedAt), e.HashVersion), nil
}

// insertValues returns e's column values in columns order; JSON columns are
// nil (SQL NULL) when empty and occurredAt is the backend's time encoding.
func insertValues(e warden.AuditEvent, occurredAt any) ([]any, error) {
	reasons, err := encodeReasons(e.Reasons)
	if err != nil {
		return nil, err
	}
	var redactions any
	if len(e.Redactions) > 0 {
		b, err := json.Marshal(e.Redactions)
		if err != nil {
			return nil, fmt.Errorf("encode redactions: %w", err)
		}
		redactions = string(b)
	}
	return []any{
		e.ID, string(e.Type), e.Tenant, e.WorkflowID, e.RunID, e.Step, e.CallID, e.Actor, e.Tool,
		jsonValue(e.Args), jsonValue(e.Result), e.Decision, string(e.Risk), reasons,
		e.PolicyRevision, e.RequestID, e.Model, e.InputTokens, e.OutputTokens, e.Message, occurredAt,
		redactions, e.PrevHash, e.Hash,
	}, nil
}

// jsonValue maps an empty RawMessage to SQL NULL and anything else to its text.
func jsonValue(m json.RawMessage) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}

func encodeReasons(reasons []string) (any, error) {
	if len(reasons) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(reasons)
	if err != nil {
		return nil, fmt.Errorf("encode reasons: %w", err)
	}
	return string(b), nil
}

// scanned holds the columns of one row that need decoding after Scan.
type scanned struct {
	event        warden.AuditEvent
	typ, risk    string
	args, result []byte
	reasons      []byte
	redactions   []byte
}

// dest returns Scan destinations in selectColumns order; occurredAt and
// recordedAt are the backend's time destinations.
func (s *scanned) dest(occurredAt, recordedAt any) []any {
	e := &s.event
	return []any{
		&e.Seq, &e.ID, &s.typ, &e.Tenant, &e.WorkflowID, &e.RunID, &e.Step, &e.CallID, &e.Actor, &e.Tool,
		&s.args, &s.result, &e.Decision, &s.risk, &s.reasons,
		&e.PolicyRevision, &e.RequestID, &e.Model, &e.InputTokens, &e.OutputTokens, &e.Message, occurredAt,
		&s.redactions, &e.PrevHash, &e.Hash, recordedAt, &e.HashVersion,
	}
}

// finish decodes the JSON columns into the event.
func (s *scanned) finish() (warden.AuditEvent, error) {
	e := s.event
	e.Type = warden.EventType(s.typ)
	e.Risk = warden.Risk(s.risk)
	// Re-encoding gives back the canonical bytes that were hashed (jsonb
	// rewrites spacing and key order); a value that cannot be re-encoded is
	// kept as read and fails verification.
	if len(s.args) > 0 {
		e.Args = json.RawMessage(s.args)
		if c, err := CanonicalJSON(s.args); err == nil {
			e.Args = c
		}
	}
	if len(s.result) > 0 {
		e.Result = json.RawMessage(s.result)
		if c, err := CanonicalJSON(s.result); err == nil {
			e.Result = c
		}
	}
	if len(s.redactions) > 0 {
		if err := json.Unmarshal(s.redactions, &e.Redactions); err != nil {
			return warden.AuditEvent{}, fmt.Errorf("decode redactions of event %s: %w", e.ID, err)
		}
		if len(e.Redactions) == 0 {
			e.Redactions = nil
		}
	}
	if len(s.reasons) > 0 {
		if err := json.Unmarshal(s.reasons, &e.Reasons); err != nil {
			return warden.AuditEvent{}, fmt.Errorf("decode reasons of event %s: %w", e.ID, err)
		}
		if len(e.Reasons) == 0 {
			e.Reasons = nil
		}
	}
	return e, nil
}

// whereClause renders f's conditions (and the LIMIT) with the backend's
// placeholder style; since is the backend's encoding of f.Since.
func whereClause(f warden.AuditFilter, limit int, placeholder func(n int) string, since func(time.Time) any, likeOp string, textColumn func(string) string) (string, []any) {
	var (
		conds []string
		args  []any
	)
	add := func(column string, value any) {
		args = append(args, value)
		conds = append(conds, column+placeholder(len(args)))
	}
	for _, eq := range []struct{ cond, value string }{
		{"tenant = ", f.Tenant}, {"workflow_id = ", f.WorkflowID}, {"tool = ", f.Tool},
		{"decision = ", f.Decision}, {"event_type = ", string(f.Type)}, {"actor = ", f.Actor},
		{"event_type = 'approval_decided' AND actor = ", f.Approver}, {"risk = ", string(f.Risk)},
	} {
		if eq.value != "" {
			add(eq.cond, eq.value)
		}
	}
	if !f.Since.IsZero() {
		add("occurred_at >= ", since(f.Since.UTC().Truncate(timePrecision)))
	}
	if !f.Until.IsZero() {
		add("occurred_at < ", since(f.Until.UTC().Truncate(timePrecision)))
	}
	if f.AfterSeq > 0 {
		add("seq > ", f.AfterSeq)
	}
	if f.Text != "" {
		pattern := "%" + likeEscaper.Replace(f.Text) + "%"
		var parts []string
		for _, col := range []string{textColumn("args"), textColumn("result"), "message"} {
			args = append(args, pattern)
			parts = append(parts, col+" "+likeOp+" "+placeholder(len(args))+` ESCAPE '\'`)
		}
		conds = append(conds, "("+strings.Join(parts, " OR ")+")")
	}
	var b strings.Builder
	if len(conds) > 0 {
		b.WriteString(" WHERE ")
		b.WriteString(strings.Join(conds, " AND "))
	}
	args = append(args, limit)
	b.WriteString(" ORDER BY seq LIMIT " + placeholder(len(args)))
	return b.String(), args
}

// rowIterator is what scanEvents reads: pgx.Rows or *sql.Rows.
type rowIterator interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanEvents reads Query's rows (selectColumns). T is the backend's time
// destination, which decodeTimes turns into the event's OccurredAt and
// RecordedAt.
func scanEvents[T any](rows rowIterator, decodeTimes func(e *warden.AuditEvent, occurredAt, recordedAt T) error) ([]warden.AuditEvent, error) {
	var (
		out                    []warden.AuditEvent
		s                      scanned
		occurredAt, recordedAt T
	)
	for rows.Next() {
		s = scanned{}
		if err := rows.Scan(s.dest(&occurredAt, &recordedAt)...); err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		e, err := s.finish()
		if err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		if err := decodeTimes(&e, occurredAt, recordedAt); err != nil {
			return nil, fmt.Errorf("query audit events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query audit events: %w", err)
	}
	return out, nil
}
