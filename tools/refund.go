package tools

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// RefundArgs are the arguments of issue_refund.
type RefundArgs struct {
	OrderID     string `json:"order_id" jsonschema:"pattern=^[A-Za-z0-9-]{1\\,64}$" jsonschema_description:"The order to refund, e.g. 1234."`
	AmountCents int64  `json:"amount_cents" jsonschema:"minimum=1,maximum=100000000" jsonschema_description:"Amount in cents (minor units), e.g. 25000 for 250.00."`
	Currency    string `json:"currency" jsonschema:"pattern=^[A-Z]{3}$" jsonschema_description:"ISO 4217 currency code, e.g. USD."`
	Reason      string `json:"reason" jsonschema:"minLength=1,maxLength=1000" jsonschema_description:"Why the customer is refunded."`
}

// LedgerEntry is one line of the refund ledger (JSON lines).
type LedgerEntry struct {
	IdempotencyKey string    `json:"idempotency_key"`
	OrderID        string    `json:"order_id"`
	AmountCents    int64     `json:"amount_cents"`
	Currency       string    `json:"currency"`
	Reason         string    `json:"reason"`
	At             time.Time `json:"at"`
}

// ReadLedger returns the entries of the refund ledger at path, oldest first.
func ReadLedger(path string) ([]LedgerEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ledger: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		return nil, fmt.Errorf("read ledger: lock %s: %w", path, err)
	}
	entries, err := parseLedger(f)
	if err != nil {
		return nil, fmt.Errorf("read ledger %s: %w", path, err)
	}
	return entries, nil
}

func parseLedger(r io.Reader) ([]LedgerEntry, error) {
	var entries []LedgerEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var e LedgerEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		entries = append(entries, e)
	}
	return entries, sc.Err()
}

func formatAmount(cents int64, currency string) string {
	return fmt.Sprintf("%d.%02d %s", cents/100, cents%100, currency)
}

// issueRefund appends one ledger entry per idempotency key, under an
// exclusive lock on the ledger, then waits the configured delay (a slow
// payment provider).
func issueRefund(ctx context.Context, env Env, args RefundArgs) (string, error) {
	path := env.Config[configLedger]
	if path == "" {
		return "", errors.New("issue_refund is not configured: no ledger path (tools.Options.LedgerPath)")
	}
	if env.IdempotencyKey == "" {
		return "", errors.New("issue_refund needs an idempotency key; refusing to move money without one")
	}
	var delay time.Duration
	if s := env.Config[configRefundDelay]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return "", fmt.Errorf("refund delay: %w", err)
		}
		delay = d
	}

	msg, err := appendRefund(path, LedgerEntry{
		IdempotencyKey: env.IdempotencyKey,
		OrderID:        args.OrderID,
		AmountCents:    args.AmountCents,
		Currency:       args.Currency,
		Reason:         args.Reason,
		At:             time.Now().UTC(),
	})
	if err != nil {
		return "", err
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return msg, nil
}

func appendRefund(path string, e LedgerEntry) (string, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return "", fmt.Errorf("open ledger: %w", err)
	}
	defer f.Close() // releases the lock
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock ledger: %w", err)
	}
	entries, err := parseLedger(f)
	if err != nil {
		return "", fmt.Errorf("ledger %s: %w", path, err)
	}
	for i, old := range entries {
		if old.IdempotencyKey == e.IdempotencyKey {
			return fmt.Sprintf("refund already issued under key %s (ledger entry %d: %s for order %s); not issued again",
				e.IdempotencyKey, i+1, formatAmount(old.AmountCents, old.Currency), old.OrderID), nil
		}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("encode ledger entry: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		return "", fmt.Errorf("append to ledger: %w", err)
	}
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("sync ledger: %w", err)
	}
	return fmt.Sprintf("refund of %s issued for order %s (ledger entry %d)",
		formatAmount(e.AmountCents, e.Currency), e.OrderID, len(entries)+1), nil
}
