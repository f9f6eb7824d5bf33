package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
)

// Activities holds the dependencies of every Warden activity. Register one
// value with the worker; workflows call its methods through a nil pointer.
type Activities struct {
	Model  Model
	Policy Policy
	Tools  Tools
	Audit  Audit
	// WorkspaceRoot is the folder under which each run gets its workspace
	// (<root>/<tenant>/<workflow id>).
	WorkspaceRoot string
	// Namespace is the Temporal namespace of the worker's runs, written in
	// each workspace's record so a sweeper of another namespace sharing the
	// folder leaves it alone.
	Namespace string
	// SandboxMode is reported to policies (PolicyInput.SandboxMode).
	SandboxMode string
	// DefaultModel is used when a run names none.
	DefaultModel string
	// HeartbeatEvery is how often Execute heartbeats while a tool runs. Default 2s.
	HeartbeatEvery time.Duration
	// Escalations receives approval requests that stay pending too long; nil
	// means none is configured.
	Escalations Escalations
	// History resolves approvals' transport identities; nil leaves them "unknown".
	History History
	// Prices prices model calls; nil means every call costs nothing.
	Prices Prices
	// ModelPolicy checks each model before use; nil allows every model.
	ModelPolicy ModelPolicy
	// Payloads keeps conversations by reference; nil sends them inline.
	Payloads Payloads

	convMu    sync.Mutex
	convCache map[string][]warden.Message
}

// RunRef identifies the run an activity works for.
type RunRef struct {
	Tenant     string `json:"tenant"`
	Requester  string `json:"requester"`
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
	// ChainID is the first run ID of the run's chain of continue-as-new
	// segments (workflow.Info.FirstRunID): the workspace belongs to the
	// chain, so it survives a new segment and a reused workflow ID gets a
	// new one. Empty in inputs recorded before it existed: RunID is used.
	ChainID string `json:"chain_id,omitempty"`
}

// PlanInput is the input of Plan.
type PlanInput struct {
	Run   RunRef `json:"run"`
	Step  int    `json:"step"`
	Model string `json:"model,omitempty"`
	// Fallbacks are tried in order when Model fails or is refused.
	Fallbacks []string `json:"fallbacks,omitempty"`
	// Messages is the conversation; with ConversationRef, only the part
	// that follows the referenced one.
	Messages []warden.Message `json:"messages"`
	// ConversationRef points at the conversation stored by an earlier Plan.
	ConversationRef string   `json:"conversation_ref,omitempty"`
	AllowedTools    []string `json:"allowed_tools,omitempty"`
	MaxOutputTokens int      `json:"max_output_tokens,omitempty"`
	// RemainingMicroUSD is what the run may still spend; negative means no money limit.
	RemainingMicroUSD int64 `json:"remaining_micro_usd"`
	// Authorize, when set, has Plan authorize the tool calls of the answer
	// too (what the Authorize activity does for each), recording them in
	// the same audit write as the model call: one write and one history
	// event less per step.
	Authorize *PlanAuthorize `json:"authorize,omitempty"`
}

// PlanAuthorize is what Plan needs to authorize the answer's tool calls.
type PlanAuthorize struct {
	ApprovalTimeout time.Duration `json:"approval_timeout"`
	// Taint lists the sources of untrusted content the run has seen.
	Taint []string `json:"taint,omitempty"`
	// MaxCalls is how many of the answer's calls to authorize (the
	// workflow refuses the rest unasked).
	MaxCalls int `json:"max_calls"`
	// RequestedAt is the workflow time of the turn, when approval clocks
	// start; zero in inputs recorded before it existed (the worker's clock).
	RequestedAt time.Time `json:"requested_at,omitzero"`
	// ArgsForm is the run's argument form (AuthorizeInput.ArgsForm).
	ArgsForm int `json:"args_form,omitempty"`
}

// PlanOutput is the output of Plan.
type PlanOutput struct {
	// Response carries the usage including its cost (Usage.CostMicroUSD).
	Response warden.ModelResponse `json:"response"`
	// BudgetExhausted is set, with no model called, when even the cheapest
	// usable answer would cost more than what remains.
	BudgetExhausted bool   `json:"budget_exhausted,omitempty"`
	Note            string `json:"note,omitempty"`
	// ConversationRef stores the conversation this call sent (without the
	// answer), for the next call to build on; empty without Payloads.
	ConversationRef string `json:"conversation_ref,omitempty"`
	// Authorizations are the decisions on the answer's first MaxCalls tool
	// calls, in order, when PlanInput.Authorize was set.
	Authorizations []AuthorizeOutput `json:"authorizations,omitempty"`
}

// minAffordableOutput is the fewest output tokens worth paying for.
const minAffordableOutput = 16

// Plan calls the model with the conversation so far and the tools the run
// may use: the run's model, or the next fallback when the policy refuses
// a model for the tenant or the model keeps failing. Before each call it
// reserves the worst case (prompt estimate plus the output cap, lowered to
// what the budget affords) and settles with the provider's usage. It
// records one model_called audit event and, when in.Authorize is set,
// decides the answer's tool calls as Authorize would, recording those
// events in the same audit write.
func (a *Activities) Plan(ctx context.Context, in PlanInput) (PlanOutput, error) {
	// Heartbeats let the server notice a lost attempt (a dead worker, or a
	// completion the Temporal server lost in a restart) within the
	// heartbeat timeout instead of the whole start-to-close timeout.
	defer a.heartbeat(ctx)()
	tools := a.Tools.Specs(in.AllowedTools)
	convRef := ""
	// A short tail travels inline again next step; storing it every step
	// would cost a write per step for a few hundred bytes of history.
	storeTail := a.Payloads != nil && inlineSize(in.Messages) > inlineConversationLimit
	if in.ConversationRef != "" {
		prior, err := a.conversation(ctx, in.ConversationRef)
		if err != nil {
			return PlanOutput{}, fmt.Errorf("plan step %d: %w", in.Step, err)
		}
		in.Messages = append(slices.Clone(prior), in.Messages...)
	}
	if storeTail {
		ref, err := a.storeConversation(ctx, in.ConversationRef, in.Messages)
		if err != nil {
			return PlanOutput{}, fmt.Errorf("plan step %d: %w", in.Step, err)
		}
		convRef = ref
	}
	messages, err := a.expandOutputs(ctx, in.Messages)
	if err != nil {
		return PlanOutput{}, fmt.Errorf("plan step %d: %w", in.Step, err)
	}
	in.Messages = messages
	candidates := append([]string{cmp.Or(in.Model, a.DefaultModel)}, in.Fallbacks...)
	var notes []string
	permanent := true
	for _, model := range candidates {
		if a.ModelPolicy != nil {
			ok, reason, err := a.ModelPolicy.AllowModel(ctx, in.Run.Tenant, model)
			if err != nil || !ok {
				notes = append(notes, fmt.Sprintf("%s refused by policy: %s", model, cmp.Or(reason, fmt.Sprint(err))))
				continue
			}
		}
		req := warden.ModelRequest{Model: model, Messages: in.Messages, Tools: tools, MaxOutputTokens: in.MaxOutputTokens}
		pin, pout, priced := 0.0, 0.0, false
		if a.Prices != nil {
			pin, pout, priced = a.Prices.Price(model)
		}
		if in.RemainingMicroUSD >= 0 {
			if !priced {
				notes = append(notes, fmt.Sprintf("%s has no price configured, and this run has a money limit", model))
				continue
			}
			affordable := affordableOutput(in.RemainingMicroUSD, estimateInputTokens(req), pin, pout)
			if affordable < minAffordableOutput {
				return PlanOutput{BudgetExhausted: true, Note: fmt.Sprintf(
					"money budget exhausted: %s needs about %d input tokens and at least %d output tokens, more than the $%.6f left",
					model, estimateInputTokens(req), minAffordableOutput, float64(in.RemainingMicroUSD)/1e6)}, nil
			}
			if req.MaxOutputTokens <= 0 || req.MaxOutputTokens > affordable {
				req.MaxOutputTokens = affordable
			}
		}
		resp, err := a.Model.Complete(ctx, req)
		if err != nil {
			if ctx.Err() != nil {
				return PlanOutput{}, fmt.Errorf("plan step %d: %w", in.Step, ctx.Err())
			}
			if !errors.Is(err, warden.ErrModelPermanent) {
				permanent = false
			}
			notes = append(notes, fmt.Sprintf("%s failed: %v", model, err))
			continue
		}
		resp.Usage.CostMicroUSD = CostMicroUSD(resp.Usage, pin, pout)
		out := PlanOutput{Response: resp, Note: strings.Join(notes, "; "), ConversationRef: convRef}
		// A retried Plan calls the model again and may get another answer:
		// every attempt's call and decisions are recorded under their own
		// event IDs (the first attempt keeps the plain ones).
		attempt := ""
		if n := activity.GetInfo(ctx).Attempt; n > 1 {
			attempt = fmt.Sprintf("attempt-%d", n)
		}
		events := []warden.AuditEvent{a.modelCallEvent(in, model, resp, notes, attempt)}
		if au := in.Authorize; au != nil {
			now := au.RequestedAt
			if now.IsZero() {
				now = time.Now()
			}
			for _, call := range resp.ToolCalls[:min(len(resp.ToolCalls), au.MaxCalls)] {
				auth, evs := a.authorize(ctx, AuthorizeInput{
					Run: in.Run, Step: in.Step, Call: call, RequestedAt: now, ApprovalTimeout: au.ApprovalTimeout,
					Actor: "model", Taint: au.Taint, Revision: attempt, ArgsForm: au.ArgsForm,
				})
				out.Authorizations = append(out.Authorizations, auth)
				events = append(events, evs...)
			}
		}
		if err := a.Audit.Append(ctx, events...); err != nil {
			return PlanOutput{}, fmt.Errorf("plan step %d: audit: %w", in.Step, err)
		}
		return out, nil
	}
	err = fmt.Errorf("plan step %d: no model answered: %s", in.Step, strings.Join(notes, "; "))
	if permanent {
		return PlanOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeModel, err)
	}
	return PlanOutput{}, err
}

// CostMicroUSD is what usage costs at prices per 1,000 input and output
// tokens, in millionths of a dollar.
func CostMicroUSD(usage warden.Usage, inPer1K, outPer1K float64) int64 {
	return warden.MicroUSD((float64(usage.InputTokens)*inPer1K + float64(usage.OutputTokens)*outPer1K) / 1000)
}

// modelCallEvent is the model_called audit event of one answer.
func (a *Activities) modelCallEvent(in PlanInput, asked string, resp warden.ModelResponse, notes []string, discriminator string) warden.AuditEvent {
	result, _ := json.Marshal(struct {
		Content   string            `json:"content,omitempty"`
		ToolCalls []warden.ToolCall `json:"tool_calls,omitempty"`
		Usage     warden.Usage      `json:"usage"`
	}{resp.Content, resp.ToolCalls, resp.Usage})
	names := make([]string, 0, len(resp.ToolCalls))
	for _, c := range resp.ToolCalls {
		names = append(names, c.Name)
	}
	msg := "answered"
	if len(names) > 0 {
		msg = "asked for " + strings.Join(names, ", ")
	}
	msg += fmt.Sprintf(" ($%.6f)", resp.Usage.CostUSD())
	if len(notes) > 0 {
		msg += "; used " + asked + " after: " + strings.Join(notes, "; ")
	}
	ev := a.event(in.Run, in.Step, "", warden.EventModelCalled, discriminator)
	ev.Actor = "model"
	ev.Model = cmp.Or(resp.Model, asked)
	ev.InputTokens = resp.Usage.InputTokens
	ev.OutputTokens = resp.Usage.OutputTokens
	ev.Result = result
	ev.Message = msg
	return ev
}

// expandOutputs replaces the previews of outputs stored by reference with
// the outputs, for the model (the stored conversation keeps the previews).
func (a *Activities) expandOutputs(ctx context.Context, msgs []warden.Message) ([]warden.Message, error) {
	var out []warden.Message
	for i, m := range msgs {
		if m.ContentRef == "" {
			continue
		}
		if a.Payloads == nil {
			return nil, errors.New("an output reference needs a payload store, and none is configured")
		}
		full, err := a.Payloads.Payload(ctx, m.ContentRef)
		if err != nil {
			return nil, fmt.Errorf("load tool output: %w", err)
		}
		if out == nil {
			out = slices.Clone(msgs)
		}
		out[i].Content = strings.Replace(m.Content, Preview(string(full)), string(full), 1)
		out[i].ContentRef = ""
	}
	if out == nil {
		return msgs, nil
	}
	return out, nil
}

// inlineConversationLimit is how many bytes of new messages the workflow
// may carry inline to Plan before Plan stores them by reference (claim
// check). The limit bounds what each Plan input adds to the history.
const inlineConversationLimit = 2 << 10

// inlineSize is about what msgs weigh in a Plan input.
func inlineSize(msgs []warden.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Content) + len(m.ContentRef) + 64
		for _, c := range m.ToolCalls {
			n += len(c.ID) + len(c.Name) + len(c.Args) + 32
		}
	}
	return n
}

// conversationChunk is one stored piece of a conversation: the messages
// that follow its parent.
type conversationChunk struct {
	Parent   string           `json:"parent,omitempty"`
	Messages []warden.Message `json:"messages"`
}

// maxCachedConversations bounds the worker's conversation cache.
const maxCachedConversations = 512

// storeConversation stores full (the conversation that follows parent's,
// plus parent's) as a chunk pointing at parent, and caches it.
func (a *Activities) storeConversation(ctx context.Context, parent string, full []warden.Message) (string, error) {
	prior := 0
	if parent != "" {
		p, err := a.conversation(ctx, parent)
		if err != nil {
			return "", err
		}
		prior = len(p)
	}
	b, err := json.Marshal(conversationChunk{Parent: parent, Messages: full[prior:]})
	if err != nil {
		return "", fmt.Errorf("store conversation: %w", err)
	}
	ref, err := a.Payloads.PutPayload(ctx, b)
	if err != nil {
		return "", fmt.Errorf("store conversation: %w", err)
	}
	a.cacheConversation(ref, full)
	return ref, nil
}

// conversation loads a stored conversation, following its chunks back to
// the first (or to one the cache holds).
func (a *Activities) conversation(ctx context.Context, ref string) ([]warden.Message, error) {
	if a.Payloads == nil {
		return nil, errors.New("a conversation reference needs a payload store, and none is configured")
	}
	var chunks []conversationChunk
	var base []warden.Message
	for r := ref; r != ""; {
		if c, ok := a.cachedConversation(r); ok {
			base = c
			break
		}
		b, err := a.Payloads.Payload(ctx, r)
		if err != nil {
			return nil, fmt.Errorf("load conversation: %w", err)
		}
		var c conversationChunk
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("load conversation %s: %w", r, err)
		}
		chunks = append(chunks, c)
		r = c.Parent
	}
	full := slices.Clone(base)
	for i := len(chunks) - 1; i >= 0; i-- {
		full = append(full, chunks[i].Messages...)
	}
	a.cacheConversation(ref, full)
	return full, nil
}

func (a *Activities) cachedConversation(ref string) ([]warden.Message, bool) {
	a.convMu.Lock()
	defer a.convMu.Unlock()
	c, ok := a.convCache[ref]
	return c, ok
}

func (a *Activities) cacheConversation(ref string, msgs []warden.Message) {
	a.convMu.Lock()
	defer a.convMu.Unlock()
	if a.convCache == nil || len(a.convCache) >= maxCachedConversations {
		a.convCache = map[string][]warden.Message{} // crude bound: start over
	}
	a.convCache[ref] = msgs
}

// estimateInputTokens over-estimates a request's prompt tokens (3 bytes a token).
func estimateInputTokens(req warden.ModelRequest) int {
	b, _ := json.Marshal(struct {
		M []warden.Message  `json:"m"`
		T []warden.ToolSpec `json:"t"`
	}{req.Messages, req.Tools})
	return len(b)/3 + 1
}

// affordableOutput is how many output tokens the remaining budget pays for
// after the prompt.
func affordableOutput(remainingMicroUSD int64, inputTokens int, pin, pout float64) int {
	left := float64(remainingMicroUSD) - float64(inputTokens)*pin/1000*1e6
	if left <= 0 {
		return 0
	}
	if pout <= 0 {
		return math.MaxInt32
	}
	return int(left / (pout / 1000 * 1e6))
}

// Authorization outcomes (AuthorizeOutput.Verdict): the policy verdicts plus
// "invalid_args" for calls refused before the policy is asked.
const VerdictInvalidArgs = "invalid_args"

// AuthorizeInput is the input of Authorize.
type AuthorizeInput struct {
	Run  RunRef          `json:"run"`
	Step int             `json:"step"`
	Call warden.ToolCall `json:"call"`
	// RequestedAt is the workflow time of the request; an approval request
	// expires ApprovalTimeout later unless the policy sets its own expiry.
	RequestedAt     time.Time     `json:"requested_at"`
	ApprovalTimeout time.Duration `json:"approval_timeout"`
	// Actor asked for the call: "model", or the approver who edited its args.
	Actor string `json:"actor,omitempty"`
	// Revision distinguishes re-authorizations of the same call (an edit)
	// in the audit's event IDs; empty for the model's own request.
	Revision string `json:"revision,omitempty"`
	// Taint lists the sources of untrusted content the run has seen.
	Taint []string `json:"taint,omitempty"`
	// ArgsForm is how the run hashes arguments (warden.ArgsFormCanonical,
	// or 0 in runs started before it); with the canonical form, request
	// IDs are bound to the run's chain too (warden.RunApprovalRequestID).
	ArgsForm int `json:"args_form,omitempty"`
}

// AuthorizeOutput is the output of Authorize.
type AuthorizeOutput struct {
	// Verdict is warden.VerdictAllow, VerdictDeny, VerdictRequireApproval or VerdictInvalidArgs.
	Verdict  string          `json:"verdict"`
	Decision warden.Decision `json:"decision"`
	ArgsHash string          `json:"args_hash,omitempty"`
	// RequestID is set when the call needs approval.
	RequestID  string `json:"request_id,omitempty"`
	Idempotent bool   `json:"idempotent"`
	// Message is what the model is told when the call does not run.
	Message string `json:"message,omitempty"`
	// ExpiresAt is when the approval request expires (require_approval only).
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Authorize validates a call's arguments and asks the policy about it,
// recording tool_requested, policy_decided and (when needed)
// approval_requested. Run it as a local activity: it makes no network call
// to the Temporal server.
func (a *Activities) Authorize(ctx context.Context, in AuthorizeInput) (AuthorizeOutput, error) {
	out, events := a.authorize(ctx, in)
	if err := a.Audit.Append(ctx, events...); err != nil {
		return AuthorizeOutput{}, fmt.Errorf("authorize %s: audit: %w", in.Call.Name, err)
	}
	return out, nil
}

// authorize decides one call and returns the audit events that record it
// (tool_requested, then policy_decided and approval_requested when the
// arguments are valid); the caller appends them before acting on out.
func (a *Activities) authorize(ctx context.Context, in AuthorizeInput) (AuthorizeOutput, []warden.AuditEvent) {
	call := in.Call
	spec, known := a.Tools.Spec(call.Name)
	requested := a.event(in.Run, in.Step, call.ID, warden.EventToolRequested, in.Revision)
	requested.Actor = cmp.Or(in.Actor, "model")
	requested.Tool = call.Name
	requested.Args = jsonOrString(call.Args)

	out := AuthorizeOutput{Idempotent: spec.Idempotent}
	argsHash, hashErr := warden.ArgsHashForm(call.Args, in.ArgsForm)
	if known {
		verr := hashErr
		if verr == nil {
			verr = a.Tools.Validate(call.Name, call.Args)
		}
		if verr != nil {
			out.Verdict = VerdictInvalidArgs
			out.Message = fmt.Sprintf("invalid arguments for %s: %v. Fix the arguments and call the tool again.", call.Name, verr)
			requested.Decision = VerdictInvalidArgs
			requested.Message = out.Message
			return out, []warden.AuditEvent{requested}
		}
	}
	out.ArgsHash = argsHash

	input := a.policyInput(in.Run, in.Step, call, spec, known)
	input.Taint = in.Taint
	dec, err := a.Policy.Decide(ctx, input)
	if err != nil {
		dec.Allow = false
		dec.Reasons = append(dec.Reasons, "policy evaluation failed: "+err.Error())
	}
	out.Decision = dec
	out.Verdict = dec.Verdict()

	decided := a.event(in.Run, in.Step, call.ID, warden.EventPolicyDecided, in.Revision)
	decided.Actor = "policy"
	decided.Tool = call.Name
	decided.Decision = out.Verdict
	decided.Risk = dec.Risk
	decided.Reasons = dec.Reasons
	decided.PolicyRevision = dec.PolicyRevision
	events := []warden.AuditEvent{requested, decided}

	switch out.Verdict {
	case warden.VerdictDeny:
		out.Message = fmt.Sprintf("denied by policy: %s", strings.Join(dec.Reasons, "; "))
		if !known {
			names := []string{}
			for _, s := range a.Tools.Specs(nil) {
				names = append(names, s.Name)
			}
			out.Message = fmt.Sprintf("unknown tool %q; available tools: %s. %s", call.Name, strings.Join(names, ", "), out.Message)
		}
	case warden.VerdictRequireApproval:
		out.RequestID = requestID(in.Run, in.ArgsForm, in.Step, call, argsHash, dec.PolicyRevision)
		// The policy sets the expiry; the run's approval timeout caps it.
		timeout := in.ApprovalTimeout
		if secs := dec.Obligations.ApprovalTimeoutSeconds; secs > 0 && (timeout <= 0 || time.Duration(secs)*time.Second < timeout) {
			timeout = time.Duration(secs) * time.Second
		}
		out.ExpiresAt = in.RequestedAt.Add(timeout)
		req := a.event(in.Run, in.Step, call.ID, warden.EventApprovalRequested, in.Revision)
		req.Actor = "policy"
		req.Tool = call.Name
		req.Args = call.Args
		req.Decision = out.Verdict
		req.Risk = dec.Risk
		req.Reasons = dec.Reasons
		req.PolicyRevision = dec.PolicyRevision
		req.RequestID = out.RequestID
		req.Message = fmt.Sprintf("awaiting %d approval(s) from %s until %s",
			max(dec.Quorum, 1), strings.Join(dec.Approvers.Users, ", "), out.ExpiresAt.UTC().Format(time.RFC3339))
		events = append(events, req)
	}
	return out, events
}

// ExecuteInput is the input of Execute.
type ExecuteInput struct {
	Run  RunRef          `json:"run"`
	Step int             `json:"step"`
	Call warden.ToolCall `json:"call"`
	// Approval is the evidence for a call the policy says needs approval.
	Approval *warden.ApprovalEvidence `json:"approval,omitempty"`
	// Taint is the run's taint set when the call was authorized.
	Taint []string `json:"taint,omitempty"`
	// ArgsForm is the run's argument form (AuthorizeInput.ArgsForm).
	ArgsForm int `json:"args_form,omitempty"`
}

// ExecuteOutput is the output of Execute.
type ExecuteOutput struct {
	// Output.Content is the whole output, or a preview of it when it is
	// stored by reference (ContentRef).
	Output     warden.ToolOutput `json:"output"`
	ContentRef string            `json:"content_ref,omitempty"`
}

// Outputs longer than inlineOutputLimit bytes travel by reference: the
// workflow history holds a preview of previewBytes and the reference, and
// Plan gives the model the whole output.
const (
	inlineOutputLimit = 4 << 10
	previewBytes      = 1 << 10
)

// Preview is the part of a long output the workflow history keeps.
func Preview(full string) string {
	cut := previewBytes
	for cut > 0 && !utf8.RuneStart(full[cut]) {
		cut--
	}
	return full[:cut] + fmt.Sprintf("\n[... %d more bytes, stored by reference]", len(full)-cut)
}

// Execute is the enforcement point. It re-validates the arguments, asks the
// policy again with the approval evidence, checks that evidence against the
// decision, refuses to re-run a non-idempotent tool whose earlier attempt
// may have run, runs the tool in the sandbox and records the outcome.
func (a *Activities) Execute(ctx context.Context, in ExecuteInput) (ExecuteOutput, error) {
	call := in.Call
	spec, known := a.Tools.Spec(call.Name)
	if !known {
		return ExecuteOutput{}, temporal.NewNonRetryableApplicationError("unknown tool "+call.Name, warden.ErrTypeUnknownTool, nil)
	}
	argsHash, err := warden.ArgsHashForm(call.Args, in.ArgsForm)
	if err == nil {
		err = a.Tools.Validate(call.Name, call.Args)
	}
	if err != nil {
		return ExecuteOutput{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("invalid arguments for %s: %v", call.Name, err), warden.ErrTypeInvalidArgs, nil)
	}

	input := a.policyInput(in.Run, in.Step, call, spec, true)
	input.Approval = in.Approval
	input.Taint = in.Taint
	dec, err := a.Policy.Decide(ctx, input)
	if err == nil {
		err = checkEvidence(in, argsHash, dec)
	}
	if err == nil && !dec.Allow {
		err = fmt.Errorf("denied by policy: %s", strings.Join(dec.Reasons, "; "))
	}
	if err != nil {
		return ExecuteOutput{}, a.refuse(ctx, in, dec, err)
	}

	if !spec.Idempotent {
		if err := a.guardSingleAttempt(ctx, in); err != nil {
			return ExecuteOutput{}, err
		}
	}

	workspace, err := a.workspace(in.Run)
	if err != nil {
		return ExecuteOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeSandbox, err)
	}
	approvalID := ""
	if in.Approval != nil {
		approvalID = in.Approval.RequestID
	}
	stop := a.heartbeat(ctx)
	out, runErr := a.Tools.Run(ctx, ToolRun{
		Tool:              call.Name,
		Args:              call.Args,
		Workspace:         workspace,
		IdempotencyKey:    IdempotencyKey(in.Run.WorkflowID, in.Step, call.ID),
		Call:              CallRef{Run: in.Run, Step: in.Step, CallID: call.ID}.String(),
		Obligations:       dec.Obligations,
		CallID:            call.ID,
		Decision:          dec.Verdict(),
		Risk:              dec.Risk,
		ApprovalRequestID: approvalID,
	})
	stop()
	// Tool output is text for the model and the audit: NUL bytes and invalid
	// UTF-8 (binary output) become U+FFFD instead of breaking either.
	out.Content = strings.ToValidUTF8(strings.ReplaceAll(out.Content, "\x00", "\uFFFD"), "\uFFFD")

	ev := a.event(in.Run, in.Step, call.ID, warden.EventToolExecuted, "")
	ev.Actor = "sandbox"
	ev.Tool = call.Name
	ev.Args = call.Args
	ev.Decision = dec.Verdict()
	ev.Risk = dec.Risk
	ev.PolicyRevision = dec.PolicyRevision
	ev.RequestID = approvalID
	if runErr != nil {
		ev.Type = warden.EventToolFailed
		ev.ID = warden.EventID(in.Run.WorkflowID, in.Run.RunID, in.Step, call.ID, warden.EventToolFailed, "")
		ev.Message = "sandbox: " + runErr.Error()
		if err := a.Audit.Append(ctx, ev); err != nil {
			return ExecuteOutput{}, fmt.Errorf("execute %s: audit: %w (after sandbox error: %v)", call.Name, err, runErr)
		}
		if permanent(runErr) {
			// For example a workspace over its disk quota: the run stays
			// over it, so a retry would only be refused again.
			return ExecuteOutput{}, temporal.NewNonRetryableApplicationError("sandbox could not run "+call.Name+": "+runErr.Error(), warden.ErrTypeSandbox, runErr)
		}
		return ExecuteOutput{}, temporal.NewApplicationErrorWithCause("sandbox could not run "+call.Name+": "+runErr.Error(), warden.ErrTypeSandbox, runErr)
	}
	ev.Result, _ = json.Marshal(out)
	ev.Message = fmt.Sprintf("exit %d in %d ms", out.ExitCode, out.DurationMS)
	if err := a.Audit.Append(ctx, ev); err != nil {
		// The tool ran; the retry will find tool_started (non-idempotent) or
		// run an idempotent tool again, and the audit write is retried.
		return ExecuteOutput{}, fmt.Errorf("execute %s: audit: %w", call.Name, err)
	}
	if a.Payloads != nil && len(out.Content) > inlineOutputLimit {
		ref, err := a.Payloads.PutPayload(ctx, []byte(out.Content))
		if err != nil {
			return ExecuteOutput{}, fmt.Errorf("execute %s: store output: %w", call.Name, err)
		}
		out.Content = Preview(out.Content)
		return ExecuteOutput{Output: out, ContentRef: ref}, nil
	}
	return ExecuteOutput{Output: out}, nil
}

// checkEvidence verifies approval evidence against a decision that requires
// approval: bound to this exact call and policy revision, enough distinct
// permitted approvers.
func checkEvidence(in ExecuteInput, argsHash string, dec warden.Decision) error {
	if !dec.RequireApproval {
		return nil
	}
	ev := in.Approval
	if ev == nil {
		return errors.New("the policy requires approval and none was given")
	}
	want := requestID(in.Run, in.ArgsForm, in.Step, in.Call, argsHash, dec.PolicyRevision)
	if ev.RequestID != want {
		return fmt.Errorf("approval %s does not match this call (expected %s: the arguments or the policy revision changed)", ev.RequestID, want)
	}
	if ev.ArgsHash != argsHash {
		return fmt.Errorf("approval was given for arguments %s, not %s", ev.ArgsHash, argsHash)
	}
	seen := map[string]bool{}
	for _, name := range ev.Approvers {
		if !dec.Approvers.Permits(name, in.Run.Requester) {
			return fmt.Errorf("%s may not approve this call", name)
		}
		seen[name] = true
	}
	if quorum := max(dec.Quorum, 1); len(seen) < quorum {
		return fmt.Errorf("approval needs %d distinct approvers, got %d", quorum, len(seen))
	}
	return nil
}

// requestID is the approval request ID of call in the run's argument form.
func requestID(run RunRef, form, step int, call warden.ToolCall, argsHash, policyRevision string) string {
	if form == warden.ArgsFormLegacy {
		return warden.ApprovalRequestID(run.WorkflowID, step, call.ID, call.Name, argsHash, policyRevision)
	}
	return warden.RunApprovalRequestID(cmp.Or(run.ChainID, run.RunID), run.WorkflowID, step, call.ID, call.Name, argsHash, policyRevision)
}

// refuse records that Execute refused a call and returns the non-retryable error.
func (a *Activities) refuse(ctx context.Context, in ExecuteInput, dec warden.Decision, cause error) error {
	ev := a.event(in.Run, in.Step, in.Call.ID, warden.EventToolFailed, "refused")
	ev.Actor = "policy"
	ev.Tool = in.Call.Name
	ev.Args = in.Call.Args
	ev.Decision = warden.VerdictDeny
	ev.Risk = dec.Risk
	ev.Reasons = dec.Reasons
	ev.PolicyRevision = dec.PolicyRevision
	ev.Message = "refused at execution: " + cause.Error()
	if err := a.Audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("execute %s: audit: %w (while refusing: %v)", in.Call.Name, err, cause)
	}
	return temporal.NewNonRetryableApplicationError("refused at execution: "+cause.Error(), warden.ErrTypePolicyDenied, nil)
}

// guardSingleAttempt records tool_started before a non-idempotent tool
// runs, and refuses to run it when an earlier attempt already started it:
// the outcome is unknown and a retry could repeat a side effect.
func (a *Activities) guardSingleAttempt(ctx context.Context, in ExecuteInput) error {
	started := a.event(in.Run, in.Step, in.Call.ID, warden.EventToolStarted, "")
	started.Actor = "sandbox"
	started.Tool = in.Call.Name
	started.Message = "non-idempotent tool starting; it will not be retried"
	ran, err := a.Audit.Has(ctx, started.ID)
	if err != nil {
		return fmt.Errorf("execute %s: audit: %w", in.Call.Name, err)
	}
	if ran || activity.GetInfo(ctx).Attempt > 1 {
		unknown := a.event(in.Run, in.Step, in.Call.ID, warden.EventToolOutcomeUnknown, "")
		unknown.Actor = "system"
		unknown.Tool = in.Call.Name
		unknown.Message = "an earlier attempt may have run this non-idempotent tool; not retried"
		if err := a.Audit.Append(ctx, unknown); err != nil {
			return fmt.Errorf("execute %s: audit: %w", in.Call.Name, err)
		}
		return temporal.NewNonRetryableApplicationError(unknown.Message, warden.ErrTypeOutcomeUnknown, nil)
	}
	if err := a.Audit.Append(ctx, started); err != nil {
		return fmt.Errorf("execute %s: audit: %w", in.Call.Name, err)
	}
	return nil
}

// EscalateInput is the input of Escalate.
type EscalateInput struct {
	Run     RunRef                 `json:"run"`
	Request warden.ApprovalRequest `json:"request"`
}

// Escalate tells the configured escalation channel that an approval request
// is still pending, and records approval_escalated. Without a channel it
// records that nobody could be told.
func (a *Activities) Escalate(ctx context.Context, in EscalateInput) error {
	p := in.Request
	ev := a.event(in.Run, p.Step, p.CallID, warden.EventApprovalEscalated, p.RequestID)
	ev.Actor = "system"
	ev.Tool = p.Tool
	ev.RequestID = p.RequestID
	ev.Risk = p.Risk
	ev.Message = fmt.Sprintf("approval still pending; expires %s; approvers: %s", p.ExpiresAt.UTC().Format(time.RFC3339), strings.Join(p.Approvers.Users, ", "))
	if a.Escalations == nil {
		ev.Message += " (no escalation channel configured)"
	} else if err := a.Escalations.Escalate(ctx, in.Run.Tenant, in.Run.WorkflowID, p); err != nil {
		return fmt.Errorf("escalate %s: %w", p.RequestID, err)
	}
	if err := a.Audit.Append(ctx, ev); err != nil {
		return fmt.Errorf("escalate %s: audit: %w", p.RequestID, err)
	}
	return nil
}

// IdentitiesInput is the input of RecordIdentities.
type IdentitiesInput struct {
	Run        RunRef                    `json:"run"`
	Step       int                       `json:"step"`
	Identities []warden.ApprovalIdentity `json:"identities"`
}

// RecordIdentities looks up, in the workflow's history, the transport
// identity of every approval the run received, and records them in one
// approval_identities event. Run it as a local activity when the run ends:
// by then every approval's history event has been written.
func (a *Activities) RecordIdentities(ctx context.Context, in IdentitiesInput) error {
	ids := make([]warden.ApprovalIdentity, len(in.Identities))
	copy(ids, in.Identities)
	for i := range ids {
		ids[i].TransportIdentity = "unknown"
	}
	msg := "transport identities of the run's approvals"
	if a.History == nil {
		msg += " (no history reader configured)"
	} else if updates, signals, err := a.History.TransportIdentities(ctx, in.Run.WorkflowID, in.Run.RunID); err != nil {
		msg += " (history unreadable: " + err.Error() + ")"
	} else {
		used := make([]bool, len(signals))
		for i, id := range ids {
			switch id.Via {
			case "update":
				if v, ok := updates[id.UpdateID]; ok {
					ids[i].TransportIdentity = v
				}
			case "signal":
				for j, s := range signals {
					if !used[j] && s.RequestID == id.RequestID && s.Approver == id.Approver {
						ids[i].TransportIdentity, used[j] = s.Identity, true
						break
					}
				}
			}
		}
	}
	ev := a.event(in.Run, in.Step, "", warden.EventApprovalIdentities, "")
	ev.Actor = "system"
	ev.Result, _ = json.Marshal(ids)
	ev.Message = msg
	if err := a.Audit.Append(ctx, ev); err != nil {
		return auditError("record identities", err)
	}
	return nil
}

// RecordInput is the input of Record.
type RecordInput struct {
	Events []warden.AuditEvent `json:"events"`
}

// Record appends audit events the workflow produces (run started, approval
// decided, outcome unknown, run finished). Run it as a local activity.
func (a *Activities) Record(ctx context.Context, in RecordInput) error {
	if err := a.Audit.Append(ctx, in.Events...); err != nil {
		return auditError("record", err)
	}
	return nil
}

// auditError wraps a failed audit write for the workflow: an invalid event
// is not retried (writing it again cannot succeed); anything else is, until
// the store takes it.
func auditError(what string, err error) error {
	if errors.Is(err, warden.ErrInvalidAuditEvent) {
		return temporal.NewNonRetryableApplicationError(what+": "+err.Error(), warden.ErrTypeInvalidAudit, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// CallRef names one tool call of a run, for logs and audit rows written
// outside the activity (the egress proxy's connection log).
type CallRef struct {
	Run    RunRef `json:"run"`
	Step   int    `json:"step"`
	CallID string `json:"call_id"`
}

// String encodes the reference (JSON).
func (c CallRef) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// ParseCallRef decodes CallRef.String.
func ParseCallRef(s string) (CallRef, bool) {
	var c CallRef
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.Run.WorkflowID == "" || c.Run.Tenant == "" {
		return CallRef{}, false
	}
	return c, true
}

// IdempotencyKey is the key a non-idempotent tool receives, stable across
// retries and replays of the same call.
func IdempotencyKey(workflowID string, step int, callID string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%d\x00%s", workflowID, step, callID)))
	return "idem_" + hex.EncodeToString(sum[:16])
}

func (a *Activities) event(run RunRef, step int, callID string, typ warden.EventType, discriminator string) warden.AuditEvent {
	return warden.AuditEvent{
		ID:         warden.EventID(run.WorkflowID, run.RunID, step, callID, typ, discriminator),
		Type:       typ,
		Tenant:     run.Tenant,
		WorkflowID: run.WorkflowID,
		RunID:      run.RunID,
		Step:       step,
		CallID:     callID,
		OccurredAt: time.Now().UTC(),
	}
}

func (a *Activities) policyInput(run RunRef, step int, call warden.ToolCall, spec warden.ToolSpec, known bool) warden.PolicyInput {
	args := call.Args
	if !json.Valid(args) {
		args = json.RawMessage("null")
	}
	return warden.PolicyInput{
		Tenant:     run.Tenant,
		Requester:  run.Requester,
		WorkflowID: run.WorkflowID,
		Step:       step,
		Tool: warden.PolicyTool{
			Name: call.Name, Known: known, Risk: spec.Risk,
			Idempotent: spec.Idempotent, Effects: spec.Effects,
		},
		Args:        args,
		SandboxMode: a.SandboxMode,
	}
}

var unsafePathChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// WorkspaceDir is the workspace folder of a run below root:
// root/<tenant>-<h1>/<workflow>-<h2>, where the readable parts are the
// names with unsafe characters replaced (for people looking at the disk)
// and h1, h2 are SHA-256 prefixes (96 bits) of the length-prefixed
// tenant, and of tenant, workflow ID and chain: distinct runs never share
// a folder (short of a hash collision), however their names fold.
func WorkspaceDir(root string, run RunRef) string {
	chain := cmp.Or(run.ChainID, run.RunID)
	readable := func(s string, n int) string {
		s = unsafePathChars.ReplaceAllString(s, "_")
		if len(s) > n {
			s = s[:n]
		}
		return strings.Trim(s, ".")
	}
	sum := func(parts ...string) string {
		h := sha256.New()
		for _, p := range parts {
			fmt.Fprintf(h, "%d:%s;", len(p), p)
		}
		return hex.EncodeToString(h.Sum(nil))[:24]
	}
	return filepath.Join(root,
		readable(run.Tenant, 32)+"-"+sum("tenant", run.Tenant),
		readable(run.WorkflowID, 48)+"-"+sum("run", run.Tenant, run.WorkflowID, chain))
}

// workspace returns (creating it) the run's workspace folder.
func (a *Activities) workspace(run RunRef) (string, error) {
	if a.WorkspaceRoot == "" {
		return "", errors.New("no workspace root configured")
	}
	return prepareWorkspace(a.WorkspaceRoot, a.Namespace, run)
}

// PrepareWorkspace returns the workspace folder of run below root,
// creating it and, beside it, its WorkspaceRecord (with no namespace: any
// sweeper of the folder counts it as its own).
func PrepareWorkspace(root string, run RunRef) (string, error) {
	return prepareWorkspace(root, "", run)
}

func prepareWorkspace(root, namespace string, run RunRef) (string, error) {
	dir := WorkspaceDir(root, run)
	// The record beside it lets the worker remove it once the run chain
	// is closed.
	if err := writeWorkspaceRecord(dir, namespace, run); err != nil {
		return "", fmt.Errorf("record workspace: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create workspace: %w", err)
	}
	return dir, nil
}

// heartbeat records heartbeats until the returned function is called.
func (a *Activities) heartbeat(ctx context.Context) func() {
	every := cmp.Or(a.HeartbeatEvery, 2*time.Second)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// jsonOrString keeps valid JSON as is and stores anything else as a JSON string.
func jsonOrString(raw json.RawMessage) json.RawMessage {
	if json.Valid(raw) {
		return raw
	}
	b, _ := json.Marshal(string(raw))
	return b
}

// permanent reports whether err says that no retry can succeed (the
// sandbox's over-quota error does, through a Permanent method).
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
