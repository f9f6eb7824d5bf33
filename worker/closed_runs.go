package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	wclient "github.com/wardenhq/warden/client"
)

// The closed-run auditor. A run that Temporal ends by itself — terminated
// (by an operator, or by a server limit such as the history size) or timed
// out — runs no more workflow code, so it never writes its run_finished
// row, and the approvals it was waiting for are left open on the record.
// The worker finds such runs in Temporal's visibility store and writes the
// row for them: status terminated or timed_out, the reason from the close
// event, and the approval requests still pending (from the run's memo).
// The row's event ID is derived from the run, so workers that find the
// same run write it once; a run whose audit already has run_finished is
// skipped.

// ClosedRunsReport is what one pass did.
type ClosedRunsReport struct {
	// Recorded lists "workflowID/runID" of the runs given a run_finished row.
	Recorded []string
	// Checked counts the runs looked at.
	Checked int
	Errors  []error
}

// closedByTemporal is the visibility query for runs Temporal ended itself.
func closedByTemporal(since time.Time) string {
	return fmt.Sprintf("WorkflowType = %q AND (ExecutionStatus = \"Terminated\" OR ExecutionStatus = \"TimedOut\") AND CloseTime >= %q",
		warden.WorkflowAgentRun, since.UTC().Format(time.RFC3339))
}

// AuditClosedRuns writes, once, the run_finished row of every AgentRun of
// namespace that Temporal terminated or timed out since the given time
// and whose audit has none.
func AuditClosedRuns(ctx context.Context, tc client.Client, namespace string, store audit.Store, since time.Time) ClosedRunsReport {
	var rep ClosedRunsReport
	var token []byte
	for {
		resp, err := tc.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: namespace, Query: closedByTemporal(since), NextPageToken: token,
		})
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("list runs Temporal ended: %w", err))
			return rep
		}
		for _, info := range resp.GetExecutions() {
			rep.Checked++
			recorded, err := auditClosedRun(ctx, tc, store, info)
			if err != nil {
				rep.Errors = append(rep.Errors, err)
			} else if recorded {
				rep.Recorded = append(rep.Recorded, info.GetExecution().GetWorkflowId()+"/"+info.GetExecution().GetRunId())
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return rep
		}
	}
}

func auditClosedRun(ctx context.Context, tc client.Client, store audit.Store, info *workflowpb.WorkflowExecutionInfo) (bool, error) {
	workflowID, runID := info.GetExecution().GetWorkflowId(), info.GetExecution().GetRunId()
	done, err := store.Query(ctx, warden.AuditFilter{WorkflowID: workflowID, Type: warden.EventRunFinished})
	if err != nil {
		return false, fmt.Errorf("run %s/%s: read its audit: %w", workflowID, runID, err)
	}
	for _, ev := range done {
		if ev.RunID == runID {
			return false, nil
		}
	}
	var tenant string
	if p := info.GetSearchAttributes().GetIndexedFields()[warden.SearchAttrTenant]; p != nil {
		if err := converter.GetDefaultDataConverter().FromPayload(p, &tenant); err != nil {
			return false, fmt.Errorf("run %s/%s: search attribute %s: %w", workflowID, runID, warden.SearchAttrTenant, err)
		}
	}
	if tenant == "" {
		return false, fmt.Errorf("run %s/%s: no %s search attribute, so its audit chain is unknown; it was not recorded", workflowID, runID, warden.SearchAttrTenant)
	}
	pending, err := wclient.PendingFromMemo(info.GetMemo())
	if err != nil {
		return false, fmt.Errorf("run %s/%s: %w", workflowID, runID, err)
	}
	ev := closedRunEvent(workflowID, runID, tenant, info.GetStatus(), closeReason(ctx, tc, workflowID, runID), info.GetCloseTime().AsTime(), pending)
	if err := store.Append(ctx, ev); err != nil {
		return false, fmt.Errorf("run %s/%s: write its run_finished: %w", workflowID, runID, err)
	}
	return true, nil
}

// closeReason is the reason the run's close event gives (a termination's
// reason and identity), or "" when the history cannot be read.
func closeReason(ctx context.Context, tc client.Client, workflowID, runID string) string {
	it := tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_CLOSE_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return ""
		}
		if t := ev.GetWorkflowExecutionTerminatedEventAttributes(); t != nil {
			reason := t.GetReason()
			if t.GetIdentity() != "" {
				reason += " (by " + t.GetIdentity() + ")"
			}
			return strings.TrimSpace(reason)
		}
	}
	return ""
}

// AuditClosedRunsEvery runs AuditClosedRuns at start (over the last
// lookback) and then every interval (over the time since the previous
// pass began, less a minute for visibility's lag) until the returned
// function is called. Recorded runs are logged at info, errors at warn.
func AuditClosedRunsEvery(tc client.Client, namespace string, store audit.Store, interval, lookback time.Duration, log *slog.Logger) (stop func()) {
	since := time.Now().Add(-lookback)
	return every(interval, func(ctx context.Context) {
		began := time.Now()
		rep := AuditClosedRuns(ctx, tc, namespace, store, since)
		for _, run := range rep.Recorded {
			log.Info("run ended by Temporal: run_finished audited", "run", run)
		}
		for _, err := range rep.Errors {
			log.Warn("closed-run audit", "error", err)
		}
		if len(rep.Errors) == 0 {
			since = began.Add(-time.Minute)
		}
	})
}

// closedRunEvent is the run_finished row of a run Temporal ended.
func closedRunEvent(workflowID, runID, tenant string, status enumspb.WorkflowExecutionStatus, reason string, closed time.Time, pending []warden.PendingApproval) warden.AuditEvent {
	decision, msg := "terminated", "Temporal terminated the run"
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT {
		decision, msg = "timed_out", "the run timed out in Temporal"
	}
	if reason != "" {
		msg += ": " + reason
	}
	step := 0
	if len(pending) > 0 {
		ids := make([]string, 0, len(pending))
		for _, p := range pending {
			ids = append(ids, fmt.Sprintf("%s (%s, step %d)", p.RequestID, p.Tool, p.Step))
			step = max(step, p.Step)
		}
		msg += fmt.Sprintf("; %d approval request(s) were still pending and were never decided: %s", len(pending), strings.Join(ids, ", "))
	}
	msg += "; no more of the run's code ran, so this row was written by a worker from Temporal's record"
	return warden.AuditEvent{
		ID:         warden.EventID(workflowID, runID, 0, "", warden.EventRunFinished, "closed-by-temporal"),
		Type:       warden.EventRunFinished,
		Tenant:     tenant,
		WorkflowID: workflowID,
		RunID:      runID,
		Step:       step,
		Actor:      "system",
		Decision:   decision,
		Message:    msg,
		OccurredAt: closed.UTC(),
	}
}
