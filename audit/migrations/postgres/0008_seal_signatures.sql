-- Signed seals (docs/audit.md, "Signed seals and anchors"): the sealer's
-- Ed25519 signature over the seal's hash and key ID. The key never enters
-- the database; seals written before this migration keep empty columns
-- and verify reports them as unsigned, not as broken.

ALTER TABLE audit_seals
    ADD COLUMN key_id    text NOT NULL DEFAULT '',
    ADD COLUMN signature text NOT NULL DEFAULT '';
