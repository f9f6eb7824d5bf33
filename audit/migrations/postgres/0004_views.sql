-- Views for auditors who prefer SQL (docs/audit.md). security_invoker makes
-- row-level security apply to the person querying, not the view's owner.

-- One row per tool call the model asked for: what it proposed, what the
-- policy decided (risk, revision), who approved or rejected it, what ran
-- and what came out.
CREATE VIEW audit_tool_calls WITH (security_invoker = true) AS
SELECT r.seq, r.tenant, r.workflow_id, r.run_id, r.step, r.call_id, r.tool,
       r.occurred_at AS requested_at,
       r.args        AS proposed_args,
       d.decision    AS policy_decision,
       d.risk,
       d.reasons     AS policy_reasons,
       d.policy_revision,
       a.approvals,
       x.event_type  AS outcome,
       x.args        AS executed_args,
       x.result,
       x.occurred_at AS finished_at
FROM audit_events r
LEFT JOIN LATERAL (
    SELECT decision, risk, reasons, policy_revision FROM audit_events d
    WHERE d.tenant = r.tenant AND d.workflow_id = r.workflow_id AND d.step = r.step
      AND d.call_id = r.call_id AND d.event_type = 'policy_decided'
    ORDER BY d.seq DESC LIMIT 1) d ON true
LEFT JOIN LATERAL (
    SELECT string_agg(a.actor || ': ' || a.decision, ', ' ORDER BY a.seq) AS approvals FROM audit_events a
    WHERE a.tenant = r.tenant AND a.workflow_id = r.workflow_id AND a.step = r.step
      AND a.call_id = r.call_id AND a.event_type = 'approval_decided') a ON true
LEFT JOIN LATERAL (
    SELECT event_type, args, result, occurred_at FROM audit_events x
    WHERE x.tenant = r.tenant AND x.workflow_id = r.workflow_id AND x.step = r.step
      AND x.call_id = r.call_id AND x.event_type IN ('tool_executed', 'tool_failed', 'tool_outcome_unknown')
    ORDER BY x.seq DESC LIMIT 1) x ON true
WHERE r.event_type = 'tool_requested';

-- Every approval decision with the exact arguments it approved.
CREATE VIEW audit_approvals WITH (security_invoker = true) AS
SELECT seq, tenant, workflow_id, run_id, step, call_id, tool, request_id,
       actor AS approver, decision, risk, args AS approved_args, message, occurred_at
FROM audit_events
WHERE event_type = 'approval_decided';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_audit_auditor') THEN
        GRANT SELECT ON audit_tool_calls, audit_approvals TO warden_audit_auditor;
    END IF;
END;
$$;
