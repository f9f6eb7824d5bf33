package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/wardenhq/warden"
)

// ExportOptions selects what Export writes. Zero fields do not filter.
type ExportOptions struct {
	Tenant string
	// Since (inclusive) and Until (exclusive) bound OccurredAt.
	Since, Until time.Time
}

// Export writes the events opts selects to w as JSON lines, verifiable
// offline with VerifyFile (`warden audit verify --file`): an ExportHeader
// line, the events in Seq order with their hashes, then every seal of the
// tenant(s). It returns the number of events written.
func Export(ctx context.Context, store Store, w io.Writer, opts ExportOptions) (int64, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	header := ExportHeader{Version: 1, Tenant: opts.Tenant, Complete: opts.Since.IsZero() && opts.Until.IsZero(),
		ExportedAt: time.Now().UTC().Truncate(time.Second)}
	if !opts.Since.IsZero() {
		header.Since = opts.Since.UTC().Format(time.RFC3339Nano)
	}
	if !opts.Until.IsZero() {
		header.Until = opts.Until.UTC().Format(time.RFC3339Nano)
	}
	if err := enc.Encode(header); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	f := warden.AuditFilter{Tenant: opts.Tenant, Since: opts.Since, Until: opts.Until, Limit: MaxQueryLimit}
	var n int64
	for {
		page, err := store.Query(ctx, f)
		if err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		for _, e := range page {
			if err := enc.Encode(e); err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
			n++
		}
		if len(page) < MaxQueryLimit {
			break
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
	seals, err := store.Seals(ctx, opts.Tenant)
	if err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	for _, s := range seals {
		if err := enc.Encode(s); err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
	}
	return n, nil
}
