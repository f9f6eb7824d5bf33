package audit

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// unavailable reports whether err means that the database could not be
// reached or dropped the connection — a restart, a crash, a failover, a
// cut network — rather than that it refused the statement.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08 is a connection exception; 57P01-57P03 are an
		// administrator or crash shutdown and "cannot connect now"
		// (starting up, shutting down, in recovery).
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	// A failed connect, even one that timed out, is the database away.
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	// Otherwise a context error is the caller's deadline, not the database.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return pgconn.SafeToRetry(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.As(err, &netErr)
}

// reconnectPause is how long to wait before try n+1 while the database is
// unavailable: 100 ms doubling to 1 s, with jitter so that waiting writers
// do not come back all at once.
func reconnectPause(n int) time.Duration {
	d := min(100*time.Millisecond<<min(n-1, 4), time.Second)
	return d/2 + rand.N(d/2+1)
}

// untilAvailable calls f until it succeeds, fails for a reason other than
// an unavailable database, or ctx ends. A database restart then costs its
// callers a wait instead of an error; f must be safe to repeat.
func untilAvailable(ctx context.Context, f func() error) error {
	for n := 1; ; n++ {
		err := f()
		if err == nil || !unavailable(err) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(reconnectPause(n)):
		}
	}
}
