-- Views for auditors who prefer SQL: see the PostgreSQL migration 0004.

CREATE VIEW audit_tool_calls AS
SELECT r.seq, r.tenant, r.workflow_id, r.run_id, r.step, r.call_id, r.tool,
       r.occurred_at AS requested_at,
       r.args        AS proposed_args,
       (SELECT d.decision FROM audit_events d WHERE d.tenant = r.tenant AND d.workflow_id = r.workflow_id
          AND d.step = r.step AND d.call_id = r.call_id AND d.event_type = 'policy_decided' ORDER BY d.seq DESC LIMIT 1) AS policy_decision,
       (SELECT d.risk FROM audit_events d WHERE d.tenant = r.tenant AND d.workflow_id = r.workflow_id
          AND d.step = r.step AND d.call_id = r.call_id AND d.event_type = 'policy_decided' ORDER BY d.seq DESC LIMIT 1) AS risk,
       (SELECT d.reasons FROM audit_events d WHERE d.tenant = r.tenant AND d.workflow_id = r.workflow_id
          AND d.step = r.step AND d.call_id = r.call_id AND d.event_type = 'policy_decided' ORDER BY d.seq DESC LIMIT 1) AS policy_reasons,
       (SELECT d.policy_revision FROM audit_events d WHERE d.tenant = r.tenant AND d.workflow_id = r.workflow_id
          AND d.step = r.step AND d.call_id = r.call_id AND d.event_type = 'policy_decided' ORDER BY d.seq DESC LIMIT 1) AS policy_revision,
       (SELECT group_concat(a.actor || ': ' || a.decision, ', ') FROM (SELECT actor, decision FROM audit_events a
          WHERE a.tenant = r.tenant AND a.workflow_id = r.workflow_id AND a.step = r.step AND a.call_id = r.call_id
          AND a.event_type = 'approval_decided' ORDER BY a.seq) a) AS approvals,
       (SELECT x.event_type FROM audit_events x WHERE x.tenant = r.tenant AND x.workflow_id = r.workflow_id AND x.step = r.step
          AND x.call_id = r.call_id AND x.event_type IN ('tool_executed', 'tool_failed', 'tool_outcome_unknown') ORDER BY x.seq DESC LIMIT 1) AS outcome,
       (SELECT x.args FROM audit_events x WHERE x.tenant = r.tenant AND x.workflow_id = r.workflow_id AND x.step = r.step
          AND x.call_id = r.call_id AND x.event_type IN ('tool_executed', 'tool_failed', 'tool_outcome_unknown') ORDER BY x.seq DESC LIMIT 1) AS executed_args,
       (SELECT x.result FROM audit_events x WHERE x.tenant = r.tenant AND x.workflow_id = r.workflow_id AND x.step = r.step
          AND x.call_id = r.call_id AND x.event_type IN ('tool_executed', 'tool_failed', 'tool_outcome_unknown') ORDER BY x.seq DESC LIMIT 1) AS result,
       (SELECT x.occurred_at FROM audit_events x WHERE x.tenant = r.tenant AND x.workflow_id = r.workflow_id AND x.step = r.step
          AND x.call_id = r.call_id AND x.event_type IN ('tool_executed', 'tool_failed', 'tool_outcome_unknown') ORDER BY x.seq DESC LIMIT 1) AS finished_at
FROM audit_events r
WHERE r.event_type = 'tool_requested';

CREATE VIEW audit_approvals AS
SELECT seq, tenant, workflow_id, run_id, step, call_id, tool, request_id,
       actor AS approver, decision, risk, args AS approved_args, message, occurred_at
FROM audit_events
WHERE event_type = 'approval_decided';
