// Package audit is Warden's action log: an append-only table of
// warden.AuditEvent rows, one per thing a run did (model called, tool
// requested, policy decided, approval decided, tool executed...).
//
// Two backends implement Store with the same behaviour, pinned by one
// conformance suite: *Postgres (pgx, for production) and *SQLite
// (modernc.org/sqlite, the embedded default). Each applies its embedded
// migrations on open and installs triggers that make the database itself
// reject UPDATE and DELETE (and TRUNCATE on Postgres); on Postgres a writer
// role may only insert and read, and an auditor role only reads the tenants
// granted to it (row-level security).
//
// Appends are idempotent: events carry deterministic IDs (warden.EventID) and
// an event whose ID is already stored is skipped, so a retried activity
// writes each row once.
//
// The log is tamper-evident. Every event is linked into a SHA-256 hash
// chain per tenant and workflow (EventHash over CanonicalEvent, including
// the previous event's hash), and per-tenant seals (Store.Seal) commit to
// the chain heads, so deleting a whole run is detected too. Verify checks a
// store, VerifyFile an export written by Export, and both name the first
// broken link. docs/audit.md specifies the encoding so that auditors can
// check it with their own tools.
//
// WithRedactor wraps a Store so that secrets and personal data are removed
// (by a Redactor such as *redact.Redactor) before any backend sees them.
package audit
