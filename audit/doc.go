// Package audit is Warden's action log: an append-only table of
// warden.AuditEvent rows, one per thing a run did (model called, tool
// requested, policy decided, approval decided, tool executed...).
//
// Two backends implement Store with the same behaviour, pinned by one
// conformance suite: *Postgres (pgx, for production) and *SQLite
// (modernc.org/sqlite, the embedded default). Each applies its embedded
// migrations on open and installs triggers that make the database itself
// reject UPDATE and DELETE (and TRUNCATE on Postgres), so rows cannot be
// altered through this package or any other client.
//
// Appends are idempotent: events carry deterministic IDs (warden.EventID) and
// an event whose ID is already stored is skipped, so a retried activity
// writes each row once.
package audit
