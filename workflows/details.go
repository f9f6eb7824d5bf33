package workflows

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
)

var (
	saStatus      = temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrStatus)
	saTenant      = temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrTenant)
	saRequester   = temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrRequester)
	saRisk        = temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrRisk)
	saPendingTool = temporal.NewSearchAttributeKeyKeyword(warden.SearchAttrPendingTool)
)

// publish keeps the search attributes and the current details (the
// Markdown the Web UI shows on the workflow page) in step with the state.
func (r *run) publish(ctx workflow.Context) {
	pending := r.pendingRequests()
	updates := []temporal.SearchAttributeUpdate{
		saStatus.ValueSet(warden.SearchStatus(r.state.Status)),
		saTenant.ValueSet(r.req.Tenant),
		saRequester.ValueSet(r.req.Requester),
	}
	if len(pending) > 0 {
		tools := make([]string, 0, len(pending))
		risk := warden.RiskLow
		for _, p := range pending {
			tools = append(tools, p.Tool)
			risk = higher(risk, p.Risk)
		}
		updates = append(updates, saPendingTool.ValueSet(strings.Join(tools, ",")), saRisk.ValueSet(string(risk)))
	} else {
		updates = append(updates, saPendingTool.ValueUnset(), saRisk.ValueUnset())
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
	workflow.SetCurrentDetails(ctx, r.details(pending))
	r.publishMemo(ctx, pending)
}

// publishMemo keeps the memo key warden.MemoPending equal to the pending
// requests in their memo form (warden.PendingApproval: no arguments, no
// policy reasons), so approvers can read them from the server when no
// worker answers the query. It upserts only when the value changed and
// removes the key when nothing is pending. Histories recorded before the
// memo existed replay without it: the version is asked for the first time
// the memo would change, which is when a first request is pending.
func (r *run) publishMemo(ctx workflow.Context, pending []warden.ApprovalRequest) {
	var value []warden.PendingApproval
	for _, p := range pending {
		value = append(value, p.Pending())
	}
	enc := ""
	if len(value) > 0 {
		b, err := json.Marshal(value)
		if err != nil {
			workflow.GetLogger(ctx).Warn("encode pending memo", "error", err)
			return
		}
		enc = string(b)
	}
	if enc == r.memo {
		return
	}
	if r.memoVersion == nil {
		v := workflow.GetVersion(ctx, "pending-memo", workflow.DefaultVersion, 1)
		r.memoVersion = &v
	}
	if *r.memoVersion == workflow.DefaultVersion {
		return
	}
	var v any // nil removes the key
	if len(value) > 0 {
		v = value
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{warden.MemoPending: v}); err != nil {
		workflow.GetLogger(ctx).Warn("upsert pending memo", "error", err)
		return
	}
	r.memo = enc
}

func (r *run) details(pending []warden.ApprovalRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**Status:** %s · step %d of %d · %d tokens of %d\n\n",
		warden.SearchStatus(r.state.Status), r.state.Step, r.req.Budget.MaxSteps, r.state.Usage.Total(), r.req.Budget.MaxTokens)
	if len(pending) == 0 {
		b.WriteString("No tool call is waiting for approval.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "## %d tool call(s) waiting for approval\n", len(pending))
	for _, p := range pending {
		args, _ := json.MarshalIndent(json.RawMessage(p.Args), "", "  ")
		fmt.Fprintf(&b, "\n### %s — risk %s\n\n", p.Tool, p.Risk)
		fmt.Fprintf(&b, "- **Request:** `%s`\n", p.RequestID)
		fmt.Fprintf(&b, "- **Why:** %s\n", strings.Join(p.Reasons, "; "))
		fmt.Fprintf(&b, "- **Who may approve:** %s (%d needed; not the requester %s)\n", strings.Join(p.Approvers.Users, ", "), p.Quorum, p.Requester)
		fmt.Fprintf(&b, "- **Expires:** %s\n\n", p.ExpiresAt.Format(time.RFC3339))
		fmt.Fprintf(&b, "Arguments:\n\n```json\n%s\n```\n\n", args)
		ex := pasteJSON(warden.ApprovalDecision{RequestID: p.RequestID, Decision: warden.ApprovalApprove, Approver: "<your name>", Reason: "<why>"})
		fmt.Fprintf(&b, "To decide, send the Update **%s** (More Actions → Send an Update) with this JSON; "+
			"use `\"reject\"` to refuse, or add `\"args\": {...}` to approve edited arguments (the policy decides on them again):\n\n```json\n%s\n```\n", warden.UpdateApprove, ex)
		if p.Approvers.RequireSignature {
			fmt.Fprintf(&b, "\n**This call needs signed approvals.** Sign from a shell: `warden approve <workflow-id> %s --as <your name> --key <your key file>`\n", p.RequestID)
		}
	}
	return b.String()
}

// pasteJSON encodes v on one line without HTML escaping, as an approver
// pastes it into the Web UI.
func pasteJSON(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}

func higher(a, b warden.Risk) warden.Risk {
	rank := map[warden.Risk]int{warden.RiskLow: 0, warden.RiskMedium: 1, warden.RiskHigh: 2, warden.RiskCritical: 3}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// activitySummary is the summary the Web UI shows for the activity that
// runs cs's call: the one Authorize made from the tool's summary template
// for exactly this call (an edit is authorized again, so the edited args
// get their own), or the tool name where the recorded decision has none
// (histories from before summaries were decided, tools without a template).
func activitySummary(cs *callState) string {
	if cs.auth.Summary != "" {
		return cs.auth.Summary
	}
	return warden.SummarizeCall("", cs.call, nil)
}
