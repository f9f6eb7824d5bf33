package worker

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
)

// historyReader reads approvals' transport identities from a workflow's
// history. It implements activities.History.
type historyReader struct{ tc client.Client }

func (h historyReader) TransportIdentities(ctx context.Context, workflowID, runID string) (map[string]string, []activities.SignalIdentity, error) {
	updates := map[string]string{}
	var signals []activities.SignalIdentity
	it := h.tc.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return nil, nil, fmt.Errorf("read history of %s: %w", workflowID, err)
		}
		if a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
			meta := a.GetAcceptedRequest().GetMeta()
			updates[meta.GetUpdateId()] = meta.GetIdentity()
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && a.GetSignalName() == warden.SignalApprove {
			var d warden.ApprovalDecision
			if ps := a.GetInput().GetPayloads(); len(ps) == 1 && converter.GetDefaultDataConverter().FromPayload(ps[0], &d) == nil {
				signals = append(signals, activities.SignalIdentity{RequestID: d.RequestID, Approver: d.Approver, Identity: a.GetIdentity()})
			}
		}
	}
	return updates, signals, nil
}
