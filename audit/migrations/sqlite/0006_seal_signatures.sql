-- Signed seals: see the PostgreSQL migration of the same name.

ALTER TABLE audit_seals ADD COLUMN key_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_seals ADD COLUMN signature TEXT NOT NULL DEFAULT '';
