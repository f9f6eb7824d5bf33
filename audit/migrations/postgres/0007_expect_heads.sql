-- Group commit without reading chain heads: a committer remembers the head
-- it last wrote for each chain and, under the chain's lock, checks that it
-- is still the head instead of reading it (one round trip less per
-- commit). Another writer of the chain (another worker, a retention) makes
-- the check fail with SQLSTATE WA001 and the committer reads the head.
CREATE FUNCTION audit_expect_heads(tenants text[], workflows text[], heads text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    moved text;
BEGIN
    SELECT c.w INTO moved FROM unnest(tenants, workflows, heads) AS c(t, w, h)
    WHERE coalesce((SELECT e.hash FROM audit_events e WHERE e.tenant = c.t AND e.workflow_id = c.w
                    ORDER BY e.seq DESC LIMIT 1), '') <> c.h
    LIMIT 1;
    IF moved IS NOT NULL THEN
        RAISE EXCEPTION 'audit chain % moved: its head is not the one this writer last wrote', moved
            USING ERRCODE = 'WA001';
    END IF;
END;
$$;
