package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/devserver"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/internal/teststack"
	"github.com/wardenhq/warden/tools"
	"github.com/wardenhq/warden/worker"
	"github.com/wardenhq/warden/workflows"
)

func TestMain(m *testing.M) {
	tools.Reexec()
	os.Exit(m.Run())
}

// stack is a worker (worker.Run, as `warden worker` runs it) on a real dev
// server with the audit log in a throwaway Postgres schema.
type stack struct {
	srv    *devserver.Server
	cfg    worker.Config
	client *wclient.Client
}

func startStack(t *testing.T) *stack {
	t.Helper()
	return startStackWith(t, "")
}

// startStackWith is startStack with a user policy directory.
func startStackWith(t *testing.T, policyDir string) *stack {
	t.Helper()
	srv := testenv.DevServer(t)
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		TaskQueue:       "it-" + testenv.RandomHex(4),
		DatabaseURL:     testenv.PostgresSchema(t),
		DataDir:         t.TempDir(),
		PolicyDir:       policyDir,
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	teststack.RunWorker(t, cfg)
	return &stack{srv: srv, cfg: cfg, client: wclient.New(srv.Client(), cfg.TaskQueue)}
}

// waitPending polls until the run has a pending approval.
func (s *stack) waitPending(t *testing.T, id string) warden.ApprovalRequest {
	t.Helper()
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		var err error
		pending, err = s.client.PendingApprovals(context.Background(), id)
		return err == nil && len(pending) > 0
	}, 60*time.Second, 200*time.Millisecond, "no approval request appeared")
	return pending[0]
}

func refundRequest() warden.RunRequest {
	return warden.RunRequest{Tenant: "acme", Requester: "dana", Goal: "refund order A-1", Model: "scripted/refund"}
}

// approvedTrail is the audit trail of a run whose one refund was approved.
var approvedTrail = []warden.EventType{
	warden.EventRunStarted, warden.EventModelCalled, warden.EventToolRequested, warden.EventPolicyDecided,
	warden.EventApprovalRequested, warden.EventApprovalDecided, warden.EventToolStarted, warden.EventToolExecuted,
	warden.EventModelCalled, warden.EventApprovalIdentities, warden.EventRunFinished,
}

func TestApprovalsThroughUpdateAndSignalOnDevServerAndPostgres(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()

	// Run 1: approved through the Update, after a refused self-approval.
	id1 := "it-update-" + testenv.RandomHex(4)
	h1, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id1})
	require.NoError(t, err)
	again, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id1})
	require.NoError(t, err)
	require.Equal(t, h1.RunID, again.RunID, "starting with the same ID returns the same run")

	p1 := s.waitPending(t, id1)
	st, err := s.client.Status(ctx, id1)
	require.NoError(t, err)
	require.Equal(t, warden.StatusAwaitingApproval, st.Status)
	require.Equal(t, 1, st.PendingApprovals)

	_, err = s.client.Decide(ctx, id1, warden.ApprovalDecision{RequestID: p1.RequestID, Decision: "approve", Approver: "dana"})
	require.ErrorIs(t, err, warden.ErrApprovalInvalid)
	require.ErrorContains(t, err, "may not approve")
	receipt, err := s.client.Decide(ctx, id1, warden.ApprovalDecision{RequestID: p1.RequestID, Decision: "approve", Approver: "alice", Reason: "verified"})
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusApproved, receipt.Status)
	res1, err := s.client.Result(ctx, id1)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res1.Status)
	require.Equal(t, 1, res1.ToolCalls["executed"])
	require.Contains(t, res1.Answer, "refund of 19.99 EUR issued for order A-1")

	// Run 2: approved through the Signal.
	id2 := "it-signal-" + testenv.RandomHex(4)
	_, err = s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id2})
	require.NoError(t, err)
	p2 := s.waitPending(t, id2)
	require.NotEqual(t, p1.RequestID, p2.RequestID, "request IDs are bound to the run")
	require.NoError(t, s.srv.Client().SignalWorkflow(ctx, id2, "", warden.SignalApprove,
		warden.ApprovalDecision{RequestID: p2.RequestID, Decision: "approve", Approver: "bob", Reason: "ok"}))
	res2, err := s.client.Result(ctx, id2)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCompleted, res2.Status)
	require.Equal(t, 1, res2.ToolCalls["executed"])

	// The audit rows, from Postgres.
	store, err := audit.OpenPostgres(ctx, s.cfg.DatabaseURL)
	require.NoError(t, err)
	defer store.Close()
	for _, c := range []struct {
		id, approver, requestID, via string
	}{{id1, "alice", p1.RequestID, "update"}, {id2, "bob", p2.RequestID, "signal"}} {
		all, err := store.Query(ctx, warden.AuditFilter{WorkflowID: c.id})
		require.NoError(t, err)
		var evs, refused []warden.AuditEvent // the worker writes refused Updates' rows as they come
		for _, e := range all {
			if e.Type == warden.EventApprovalRefused {
				refused = append(refused, e)
			} else {
				evs = append(evs, e)
			}
		}
		if c.via == "update" {
			require.Len(t, refused, 1, "dana's refused Update is on the record")
			require.Equal(t, "dana", refused[0].Actor)
			require.Contains(t, refused[0].Message, "may not approve")
			require.Contains(t, refused[0].Message, "the refused Update is not in the history")
		} else {
			require.Empty(t, refused)
		}
		got := make([]warden.EventType, len(evs))
		for i, e := range evs {
			got[i] = e.Type
			require.Equal(t, "acme", e.Tenant)
			if i > 0 {
				require.Greater(t, e.Seq, evs[i-1].Seq)
			}
		}
		require.Equal(t, approvedTrail, got, "run %s", c.id)
		require.Equal(t, "dana", evs[0].Actor)
		require.Equal(t, "model", evs[1].Actor)
		require.Positive(t, evs[1].InputTokens)
		require.Equal(t, "scripted/refund", evs[1].Model)
		require.JSONEq(t, `{"order_id":"A-1","amount_cents":1999,"currency":"EUR","reason":"damaged"}`, string(evs[2].Args))
		require.Equal(t, warden.VerdictRequireApproval, evs[3].Decision)
		require.Equal(t, warden.RiskHigh, evs[3].Risk)
		require.Equal(t, c.requestID, evs[4].RequestID)
		require.Equal(t, c.approver, evs[5].Actor)
		require.Equal(t, "approve", evs[5].Decision)
		require.Equal(t, c.requestID, evs[7].RequestID)
		require.Contains(t, string(evs[7].Result), "refund of 19.99 EUR")
		var ids []warden.ApprovalIdentity
		require.NoError(t, json.Unmarshal(evs[9].Result, &ids))
		require.Len(t, ids, 1)
		require.Equal(t, c.approver, ids[0].Approver)
		require.Equal(t, c.via, ids[0].Via)
		require.NotEmpty(t, ids[0].TransportIdentity, "the history's identity of the %s", c.via)
		require.NotEqual(t, "unknown", ids[0].TransportIdentity)
		require.Equal(t, string(warden.StatusCompleted), evs[10].Decision)
	}
	ledger, err := tools.ReadLedger(filepath.Join(s.cfg.DataDir, "refunds.jsonl"))
	require.NoError(t, err)
	require.Len(t, ledger, 2, "each approved refund ran exactly once")

	// The live histories replay against today's workflow code.
	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.AgentRun, workflow.RegisterOptions{Name: warden.WorkflowAgentRun})
	for _, id := range []string{id1, id2} {
		hist := history(t, s.srv.Client(), id)
		require.NoError(t, replayer.ReplayWorkflowHistory(nil, hist), "replay %s", id)
	}
	if os.Getenv("WARDEN_UPDATE_HISTORY") != "" {
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(history(t, s.srv.Client(), id1))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("../workflows/testdata/agent_run_approved.json", b, 0o644))
	}
}

func TestCancelOnDevServer(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	id := "it-cancel-" + testenv.RandomHex(4)
	_, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id})
	require.NoError(t, err)
	s.waitPending(t, id)
	require.NoError(t, s.client.Cancel(ctx, id))
	res, err := s.client.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusCancelled, res.Status)
	desc, err := s.srv.Client().DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	require.Equal(t, enums.WORKFLOW_EXECUTION_STATUS_CANCELED, desc.WorkflowExecutionInfo.Status)
	store, err := audit.OpenPostgres(ctx, s.cfg.DatabaseURL)
	require.NoError(t, err)
	defer store.Close()
	evs, err := store.Query(ctx, warden.AuditFilter{WorkflowID: id, Type: warden.EventRunFinished})
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, string(warden.StatusCancelled), evs[0].Decision)
}

func history(t *testing.T, c client.Client, id string) *historypb.History {
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		h.Events = append(h.Events, ev)
	}
	require.NotEmpty(t, h.Events)
	return h
}

// TestEditAndOutOfOrderApprovalsOnDevServer runs the newer approval paths
// on the real server — an approver editing the args, and two pending calls
// decided out of order (one by Signal) — and replays their histories. With
// WARDEN_UPDATE_HISTORY set it refreshes their files in workflows/testdata/.
func TestEditAndOutOfOrderApprovalsOnDevServer(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()

	edited := "it-edit-" + testenv.RandomHex(4)
	_, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: edited})
	require.NoError(t, err)
	p := s.waitPending(t, edited)
	receipt, err := s.client.Decide(ctx, edited, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice",
		Reason: "partial", Args: []byte(`{"order_id":"A-1","amount_cents":500,"currency":"EUR","reason":"partial refund"}`)})
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusApproved, receipt.Status)
	res, err := s.client.Result(ctx, edited)
	require.NoError(t, err)
	require.Contains(t, res.Answer, "refund of 5.00 EUR issued")

	two := "it-two-" + testenv.RandomHex(4)
	req := refundRequest()
	req.Model = "scripted/two_refunds"
	_, err = s.client.Start(ctx, req, wclient.StartOptions{ID: two})
	require.NoError(t, err)
	var pending []warden.ApprovalRequest
	require.Eventually(t, func() bool {
		pending, err = s.client.PendingApprovals(ctx, two)
		return err == nil && len(pending) == 2
	}, 60*time.Second, 200*time.Millisecond)
	_, err = s.client.Decide(ctx, two, warden.ApprovalDecision{RequestID: pending[1].RequestID, Decision: "approve", Approver: "carol"})
	require.NoError(t, err)
	require.NoError(t, s.srv.Client().SignalWorkflow(ctx, two, "", warden.SignalApprove,
		warden.ApprovalDecision{RequestID: pending[0].RequestID, Decision: "reject", Approver: "bob", Reason: "duplicate"}))
	res, err = s.client.Result(ctx, two)
	require.NoError(t, err)
	require.Equal(t, map[string]int{"executed": 1, "rejected": 1}, res.ToolCalls)

	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.AgentRun, workflow.RegisterOptions{Name: warden.WorkflowAgentRun})
	for file, id := range map[string]string{"agent_run_edited.json": edited, "agent_run_two_calls.json": two} {
		hist := history(t, s.srv.Client(), id)
		require.NoError(t, replayer.ReplayWorkflowHistory(nil, hist), "replay %s", id)
		if os.Getenv("WARDEN_UPDATE_HISTORY") != "" {
			b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile("../workflows/testdata/"+file, b, 0o644))
		}
	}
}

// TestEscalationAndQuorumOnDevServer runs a policy that escalates after
// two seconds and needs two approvers, on the real server, and records its
// history for the replay test (WARDEN_UPDATE_HISTORY).
func TestEscalationAndQuorumOnDevServer(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "quorum.rego"), []byte(`package warden.authz

decision := {
	"allow": true,
	"require_approval": true,
	"reasons": ["test policy: two approvers, escalation after 2s"],
	"risk": "high",
	"approvers": {"users": ["alice", "bob", "carol"]},
	"quorum": 2,
	"obligations": {"timeout_seconds": 30, "max_output_bytes": 65536, "escalate_after_seconds": 2},
}
`), 0o644))
	s := startStackWith(t, dir)
	ctx := context.Background()
	id := "it-quorum-" + testenv.RandomHex(4)
	_, err := s.client.Start(ctx, refundRequest(), wclient.StartOptions{ID: id})
	require.NoError(t, err)
	p := s.waitPending(t, id)
	store, err := audit.OpenPostgres(ctx, s.cfg.DatabaseURL)
	require.NoError(t, err)
	defer store.Close()
	require.Eventually(t, func() bool {
		evs, err := store.Query(ctx, warden.AuditFilter{WorkflowID: id, Type: warden.EventApprovalEscalated})
		return err == nil && len(evs) == 1
	}, 30*time.Second, 250*time.Millisecond, "the request was escalated after 2s")
	first, err := s.client.Decide(ctx, id, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"})
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusPending, first.Status)
	second, err := s.client.Decide(ctx, id, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "carol"})
	require.NoError(t, err)
	require.Equal(t, warden.ApprovalStatusApproved, second.Status)
	res, err := s.client.Result(ctx, id)
	require.NoError(t, err)
	require.Equal(t, 1, res.ToolCalls["executed"])

	replayer := sdkworker.NewWorkflowReplayer()
	replayer.RegisterWorkflowWithOptions(workflows.AgentRun, workflow.RegisterOptions{Name: warden.WorkflowAgentRun})
	hist := history(t, s.srv.Client(), id)
	require.NoError(t, replayer.ReplayWorkflowHistory(nil, hist))
	if os.Getenv("WARDEN_UPDATE_HISTORY") != "" {
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(hist)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("../workflows/testdata/agent_run_escalated_quorum.json", b, 0o644))
	}
}

// TestLongRunStaysSmall: a 500-step run continues as new every 100 steps
// and passes its conversation by reference, so every Temporal run's
// history stays far below the 50 MB / 50K-event limits and no Plan input
// carries the whole conversation.
func TestLongRunStaysSmall(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	id := "it-long-" + testenv.RandomHex(4)
	req := refundRequest()
	req.Model = "scripted/loop"
	req.Budget = warden.Budget{MaxSteps: 500, MaxTokens: 1 << 40}
	_, err := s.client.Start(ctx, req, wclient.StartOptions{ID: id})
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	res, err := s.client.Result(waitCtx, id)
	require.NoError(t, err)
	require.Equal(t, warden.StatusBudgetExhausted, res.Status)
	require.Equal(t, 500, res.Steps)
	require.Equal(t, 500, res.ToolCalls["executed"])

	// Walk the chain of Temporal runs from the first.
	desc, err := s.srv.Client().DescribeWorkflowExecution(ctx, id, "")
	require.NoError(t, err)
	first := desc.WorkflowExecutionInfo.GetFirstRunId()
	runs, maxHistory, maxPlanInput := 0, 0, 0
	for runID := first; runID != ""; runs++ {
		it := s.srv.Client().GetWorkflowHistory(ctx, id, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		size, next := 0, ""
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			size += proto.Size(ev)
			if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Plan" {
				maxPlanInput = max(maxPlanInput, proto.Size(a.GetInput()))
			}
			if a := ev.GetWorkflowExecutionContinuedAsNewEventAttributes(); a != nil {
				next = a.GetNewExecutionRunId()
			}
		}
		maxHistory = max(maxHistory, size)
		runID = next
	}
	t.Logf("500 steps: %d Temporal runs, largest history %d bytes, largest Plan input %d bytes", runs, maxHistory, maxPlanInput)
	require.Equal(t, 5, runs, "continued as new every 100 steps")
	require.Less(t, maxHistory, 4<<20, "each history stays far below 50 MB")
	require.Less(t, maxPlanInput, 16<<10, "Plan inputs carry a reference, not the conversation")
}
