package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/wardenhq/warden"
)

// Store is the action log. *Postgres and *SQLite implement it.
type Store interface {
	// Append writes events in one transaction, idempotently: an event whose
	// ID already exists is skipped. Each new event is linked into its
	// chain (tenant, workflow): the store sets PrevHash to the chain's
	// head and Hash to EventHash, under a per-chain lock, so concurrent
	// appends to one chain stay linear and a retried event leaves the
	// chain unchanged. Args and result are stored in canonical JSON
	// (CanonicalJSON). The store assigns Seq (insertion
	// order; a Seq set by the caller is ignored). A missing ID, Type,
	// Tenant or WorkflowID is an error wrapping ErrInvalidEvent that names
	// the field, and nothing of the batch is written. OccurredAt is stored
	// in UTC to the microsecond; a zero OccurredAt is set to now.
	Append(ctx context.Context, events ...warden.AuditEvent) error
	// Query returns the events matching f in insertion order (Seq
	// ascending). A zero Limit means DefaultQueryLimit; a larger one than
	// MaxQueryLimit is capped.
	Query(ctx context.Context, f warden.AuditFilter) ([]warden.AuditEvent, error)
	// Has reports whether an event with this ID exists.
	Has(ctx context.Context, eventID string) (bool, error)
	// Seal appends a seal for tenant (every tenant when empty) covering the
	// events appended since its previous seal, and returns the seals
	// written; a tenant with no new events gets none.
	Seal(ctx context.Context, tenant string) ([]Seal, error)
	// Seals returns the seals of tenant (every tenant when empty), by
	// tenant and index.
	Seals(ctx context.Context, tenant string) ([]Seal, error)
	// Retain drops the runs (whole chains) of opts.Tenant whose every event
	// occurred before opts.Before and, in the same transaction, appends a
	// retention seal recording exactly what was dropped, which it returns
	// (after first sealing the tenant's unsealed events). No other path
	// may delete events. A dry run returns the seal without writing
	// anything. No run to drop is an error wrapping ErrNothingToRetain.
	Retain(ctx context.Context, opts RetainOptions) (Seal, error)
	// Close releases the store's connections.
	// PutPayload stores bytes under their content address (PayloadRef) and
	// returns it; Payload reads them back. Payloads are not audit events:
	// the workflow passes big content (conversations) by reference.
	PutPayload(ctx context.Context, data []byte) (string, error)
	Payload(ctx context.Context, ref string) ([]byte, error)
	Close() error
}

// Query limits.
const (
	// DefaultQueryLimit is the number of rows Query returns when the
	// filter's Limit is zero.
	DefaultQueryLimit = 1000
	// MaxQueryLimit is the most rows one Query returns.
	MaxQueryLimit = 10000
)

// ErrInvalidEvent wraps every rejected event: retrying the same Append cannot
// succeed.
var ErrInvalidEvent = warden.ErrInvalidAuditEvent

// Open opens the action log: Postgres when databaseURL is set, otherwise the
// SQLite file at sqlitePath.
func Open(ctx context.Context, databaseURL, sqlitePath string) (Store, error) {
	switch {
	case databaseURL != "":
		return OpenPostgres(ctx, databaseURL)
	case sqlitePath != "":
		return OpenSQLite(ctx, sqlitePath)
	default:
		return nil, errors.New("open audit store: set a Postgres database URL or a SQLite file path")
	}
}

// timePrecision is the resolution both backends keep (Postgres timestamptz
// stores microseconds), so an event reads back equal on either.
const timePrecision = time.Microsecond

// prepare validates events and returns copies ready to store: OccurredAt in
// UTC at timePrecision, now when it was zero.
func prepare(events []warden.AuditEvent) ([]warden.AuditEvent, error) {
	out := make([]warden.AuditEvent, len(events))
	now := time.Now().UTC().Truncate(timePrecision)
	for i, e := range events {
		if err := validate(e); err != nil {
			return nil, fmt.Errorf("%w: event %d (%q): %w", ErrInvalidEvent, i, e.ID, err)
		}
		if e.OccurredAt.IsZero() {
			e.OccurredAt = now
		} else {
			e.OccurredAt = e.OccurredAt.UTC().Truncate(timePrecision)
		}
		var err error
		if e.Args, err = canonicalOptional(e.Args); err != nil {
			return nil, fmt.Errorf("%w: event %d (%q): args: %w", ErrInvalidEvent, i, e.ID, err)
		}
		if e.Result, err = canonicalOptional(e.Result); err != nil {
			return nil, fmt.Errorf("%w: event %d (%q): result: %w", ErrInvalidEvent, i, e.ID, err)
		}
		if len(e.Redactions) == 0 {
			e.Redactions = nil
		}
		e.Seq, e.PrevHash, e.Hash = 0, "", ""
		out[i] = e
	}
	return out, nil
}

// validate names the first field of e that cannot be stored. Both backends
// accept exactly the same events: text must be UTF-8 without NUL bytes and
// JSON must be valid without \u0000, as Postgres text and jsonb demand.
func validate(e warden.AuditEvent) error {
	switch {
	case strings.TrimSpace(e.ID) == "":
		return errors.New("event_id is required")
	case strings.TrimSpace(string(e.Type)) == "":
		return errors.New("event_type is required")
	case strings.TrimSpace(e.Tenant) == "":
		return errors.New("tenant is required")
	case strings.TrimSpace(e.WorkflowID) == "":
		return errors.New("workflow_id is required")
	case !e.OccurredAt.IsZero() && (e.OccurredAt.UTC().Year() < 1 || e.OccurredAt.UTC().Year() > 9999):
		return fmt.Errorf("occurred_at %s is outside years 1 to 9999", e.OccurredAt)
	}
	for _, f := range []struct{ name, value string }{
		{"event_id", e.ID}, {"event_type", string(e.Type)}, {"tenant", e.Tenant},
		{"workflow_id", e.WorkflowID}, {"run_id", e.RunID}, {"call_id", e.CallID},
		{"actor", e.Actor}, {"tool", e.Tool}, {"decision", e.Decision}, {"risk", string(e.Risk)},
		{"policy_revision", e.PolicyRevision}, {"request_id", e.RequestID}, {"model", e.Model},
		{"message", e.Message},
	} {
		if !storableText(f.value) {
			return fmt.Errorf("%s must be UTF-8 text without NUL bytes", f.name)
		}
	}
	for i, r := range e.Reasons {
		if !storableText(r) {
			return fmt.Errorf("reasons[%d] must be UTF-8 text without NUL bytes", i)
		}
	}
	if err := validateJSON("args", e.Args); err != nil {
		return err
	}
	return validateJSON("result", e.Result)
}

// canonicalOptional canonicalizes an optional JSON column.
func canonicalOptional(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	return CanonicalJSON(raw)
}

// chainKey names one hash chain.
type chainKey struct{ tenant, workflowID string }

// chainKeys returns the distinct chains of events, sorted (the order locks
// are taken in, so concurrent appends cannot deadlock).
func chainKeys(events []warden.AuditEvent) []chainKey {
	seen := map[chainKey]bool{}
	var keys []chainKey
	for _, e := range events {
		k := chainKey{e.Tenant, e.WorkflowID}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b chainKey) int {
		return cmp.Or(strings.Compare(a.tenant, b.tenant), strings.Compare(a.workflowID, b.workflowID))
	})
	return keys
}

// tenantsOf returns the distinct tenants of keys, sorted.
func tenantsOf(keys []chainKey) []string {
	var out []string
	for _, k := range keys {
		if len(out) == 0 || out[len(out)-1] != k.tenant {
			out = append(out, k.tenant)
		}
	}
	return out
}

// link returns the events to insert: those whose ID is neither stored
// (existing) nor earlier in the batch, each with PrevHash set to its
// chain's head (heads, updated as it goes), Seq taken in order from seqs
// (which holds at least one per event), RecordedAt set to now and Hash
// computed in EventHashVersion.
func link(events []warden.AuditEvent, heads map[chainKey]string, existing map[string]bool, seqs []int64, now time.Time) ([]warden.AuditEvent, error) {
	if len(seqs) < len(events) {
		return nil, fmt.Errorf("append: %d sequence numbers for %d events", len(seqs), len(events))
	}
	now = now.UTC().Truncate(time.Microsecond)
	out := make([]warden.AuditEvent, 0, len(events))
	seen := make(map[string]bool, len(events))
	for _, e := range events {
		if existing[e.ID] || seen[e.ID] {
			continue
		}
		seen[e.ID] = true
		k := chainKey{e.Tenant, e.WorkflowID}
		e.PrevHash = heads[k]
		e.Seq, seqs = seqs[0], seqs[1:]
		e.RecordedAt = now
		e.HashVersion = EventHashVersion
		h, err := EventHash(e)
		if err != nil {
			return nil, err
		}
		e.Hash = h
		heads[k] = h
		out = append(out, e)
	}
	return out, nil
}

func storableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// validateJSON checks an optional JSON column.
func validateJSON(name string, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	if !utf8.Valid(raw) || !json.Valid(raw) {
		return fmt.Errorf("%s is not valid UTF-8 JSON", name)
	}
	if bytes.Contains(raw, []byte(`\u0000`)) && jsonHasNUL(raw) {
		return fmt.Errorf("%s contains a NUL character (\\u0000); encode binary data before auditing it", name)
	}
	return nil
}

// jsonHasNUL reports whether a key or string value of the valid JSON raw
// contains U+0000.
func jsonHasNUL(raw json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if s, ok := tok.(string); ok && strings.ContainsRune(s, 0) {
			return true
		}
	}
}

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
	if f.Tenant != "" {
		add("tenant = ", f.Tenant)
	}
	if f.WorkflowID != "" {
		add("workflow_id = ", f.WorkflowID)
	}
	if f.Tool != "" {
		add("tool = ", f.Tool)
	}
	if f.Decision != "" {
		add("decision = ", f.Decision)
	}
	if f.Type != "" {
		add("event_type = ", string(f.Type))
	}
	if f.Actor != "" {
		add("actor = ", f.Actor)
	}
	if f.Approver != "" {
		add("event_type = 'approval_decided' AND actor = ", f.Approver)
	}
	if f.Risk != "" {
		add("risk = ", string(f.Risk))
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
