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

// The append path both stores share: prepare validates and normalizes
// the events, link chains them (given each backend's heads, stored IDs
// and sequence numbers), and commitGroup writes a group of concurrent
// Appends in one write (Postgres: a committer drains its queue; SQLite:
// whoever takes the write lock next takes every append pending).

// appendRequest is one Append waiting to be group-committed.
type appendRequest struct {
	ctx    context.Context
	events []warden.AuditEvent
	// done receives the append's result (buffered: one value).
	done chan error
}

// newAppendRequest validates and prepares events (prepare) as one
// Append of ctx; ok is false, with the error if any, when there is
// nothing to write.
func newAppendRequest(ctx context.Context, events []warden.AuditEvent) (req appendRequest, ok bool, err error) {
	if len(events) == 0 {
		return appendRequest{}, false, nil
	}
	if events, err = prepare(events); err != nil {
		return appendRequest{}, false, fmt.Errorf("append audit events: %w", err)
	}
	return appendRequest{ctx: ctx, events: events, done: make(chan error, 1)}, true, nil
}

// commitGroup writes the events of group's requests in one write (one
// transaction, one commit) when the group holds several, and answers
// every request with its result. When that write fails, or the group
// is a single request, each request is written on its own, so one
// caller's failure is never another's. write gets the request's context,
// or context.Background() for the merged write, which is nobody's.
func commitGroup(group []appendRequest, write func(ctx context.Context, events []warden.AuditEvent) error) {
	if len(group) > 1 {
		n := 0
		for _, r := range group {
			n += len(r.events)
		}
		merged := make([]warden.AuditEvent, 0, n)
		for _, r := range group {
			merged = append(merged, r.events...)
		}
		if err := write(context.Background(), merged); err == nil {
			for _, r := range group {
				r.done <- nil
			}
			return
		}
	}
	for _, r := range group {
		r.done <- write(r.ctx, r.events)
	}
}

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
