package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrPayloadNotFound is returned for a reference no payload is stored under.
var ErrPayloadNotFound = errors.New("payload not found")

// PayloadRef is the content address of data: "sha256:<hex>".
func PayloadRef(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PutPayload stores data under its content address and returns it;
// storing the same bytes again is a no-op.
func (p *Postgres) PutPayload(ctx context.Context, data []byte) (string, error) {
	ref := PayloadRef(data)
	err := untilAvailable(ctx, func() error {
		_, err := p.pool.Exec(ctx, "INSERT INTO payloads (ref, data) VALUES ($1, $2) ON CONFLICT (ref) DO NOTHING", ref, data)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("store payload: %w", err)
	}
	return ref, nil
}

// Payload returns the bytes stored under ref.
func (p *Postgres) Payload(ctx context.Context, ref string) ([]byte, error) {
	var data []byte
	err := untilAvailable(ctx, func() error {
		return p.pool.QueryRow(ctx, "SELECT data FROM payloads WHERE ref = $1", ref).Scan(&data)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrPayloadNotFound, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("load payload %s: %w", ref, err)
	}
	return data, nil
}

// PutPayload stores data under its content address and returns it.
func (s *SQLite) PutPayload(ctx context.Context, data []byte) (string, error) {
	ref := PayloadRef(data)
	if _, err := s.db.ExecContext(ctx, "INSERT INTO payloads (ref, data) VALUES (?, ?) ON CONFLICT (ref) DO NOTHING", ref, data); err != nil {
		return "", fmt.Errorf("store payload: %w", err)
	}
	return ref, nil
}

// Payload returns the bytes stored under ref.
func (s *SQLite) Payload(ctx context.Context, ref string) ([]byte, error) {
	var data []byte
	err := s.db.QueryRowContext(ctx, "SELECT data FROM payloads WHERE ref = ?", ref).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrPayloadNotFound, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("load payload %s: %w", ref, err)
	}
	return data, nil
}
