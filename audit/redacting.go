package audit

import (
	"context"
	"fmt"

	"github.com/wardenhq/warden"
)

// Redactor removes secrets and personal data from an event before it is
// stored, recording the rules that fired in its Redactions.
// *redact.Redactor implements it.
type Redactor interface {
	Redact(e warden.AuditEvent) (warden.AuditEvent, error)
}

// WithRedactor returns a Store that redacts every event with r before
// passing it to s, so no unredacted value reaches the database. Redaction
// is deterministic, so a retried append still finds (and skips) the row
// it wrote before.
func WithRedactor(s Store, r Redactor) Store {
	return redacting{Store: s, r: r}
}

type redacting struct {
	Store
	r Redactor
}

// Append implements Store.
func (s redacting) Append(ctx context.Context, events ...warden.AuditEvent) error {
	out := make([]warden.AuditEvent, len(events))
	for i, e := range events {
		if err := validate(e); err != nil {
			return fmt.Errorf("append audit events: %w: event %d (%q): %w", ErrInvalidEvent, i, e.ID, err)
		}
		if e.Type == warden.EventApprovalIdentities {
			// Who approved is accountability data, not data to hide: the
			// identities the Temporal history holds are kept as they are.
			out[i] = e
			continue
		}
		red, err := s.r.Redact(e)
		if err != nil {
			return fmt.Errorf("append audit events: %w: event %d (%q): redact: %w", ErrInvalidEvent, i, e.ID, err)
		}
		out[i] = red
	}
	return s.Store.Append(ctx, out...)
}
