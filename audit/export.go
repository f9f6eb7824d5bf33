package audit

import (
	"bytes"
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
	// Signer signs the manifest (the last line); nil writes it unsigned.
	Signer *SealSigner
}

// Export writes the events opts selects to w as JSON lines, verifiable
// offline with VerifyFile (`warden audit verify --file`): an ExportHeader
// line, the events in Seq order with their hashes, then every seal of the
// tenant(s), and last an ExportManifest over all of them. It returns the
// number of events written.
func Export(ctx context.Context, store Store, w io.Writer, opts ExportOptions) (int64, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	var mb *manifestBuilder
	put := func(v any) error {
		buf.Reset()
		if err := enc.Encode(v); err != nil {
			return err
		}
		if mb != nil {
			mb.line(buf.Bytes())
		}
		_, err := w.Write(buf.Bytes())
		return err
	}
	header := ExportHeader{Version: 1, Tenant: opts.Tenant, Complete: opts.Since.IsZero() && opts.Until.IsZero(),
		ExportedAt: time.Now().UTC().Truncate(time.Second)}
	if !opts.Since.IsZero() {
		header.Since = opts.Since.UTC().Format(time.RFC3339Nano)
	}
	if !opts.Until.IsZero() {
		header.Until = opts.Until.UTC().Format(time.RFC3339Nano)
	}
	mb = newManifestBuilder(header)
	if err := put(header); err != nil {
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
			if err := put(e); err != nil {
				return n, fmt.Errorf("export: %w", err)
			}
			mb.event(e.Seq, chainKey{e.Tenant, e.WorkflowID})
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
		if err := put(s); err != nil {
			return n, fmt.Errorf("export: %w", err)
		}
		mb.seal(s)
	}
	m, err := mb.finish(opts.Signer)
	if err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	mb = nil
	if err := put(m); err != nil {
		return n, fmt.Errorf("export: %w", err)
	}
	return n, nil
}
