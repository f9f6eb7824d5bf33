package audit

import (
	"context"
	"errors"
	"time"

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
