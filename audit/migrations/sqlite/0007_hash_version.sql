-- Hash version 2: see the PostgreSQL migration of the same name.

ALTER TABLE audit_events ADD COLUMN hash_version INTEGER NOT NULL DEFAULT 1 CHECK (hash_version IN (1, 2));
