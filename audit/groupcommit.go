package audit

import (
	"context"

	"github.com/wardenhq/warden"
)

// Group commit, written once for both stores: concurrent Appends are
// gathered into a group (Postgres: a committer drains its queue; SQLite:
// whoever takes the write lock next takes every append pending) and the
// group is written by commitGroup.

// appendRequest is one Append waiting to be group-committed.
type appendRequest struct {
	ctx    context.Context
	events []warden.AuditEvent
	// done receives the append's result (buffered: one value).
	done chan error
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
