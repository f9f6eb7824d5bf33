// The Plan activity: its input and output, the model call with fallbacks,
// the budget arithmetic (price, affordable output) and the model_called
// audit event.

package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
)

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
	messages, convRef, err := a.planConversation(ctx, in)
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
			auths, evs := a.authorizeAnswer(ctx, in, au, resp.ToolCalls, attempt)
			out.Authorizations = auths
			events = append(events, evs...)
		}
		if err := a.Audit.Append(ctx, events...); err != nil {
			return PlanOutput{}, auditFailed(fmt.Sprintf("plan step %d", in.Step), err)
		}
		return out, nil
	}
	err = fmt.Errorf("plan step %d: no model answered: %s", in.Step, strings.Join(notes, "; "))
	if permanent {
		return PlanOutput{}, temporal.NewNonRetryableApplicationError(err.Error(), warden.ErrTypeModel, err)
	}
	return PlanOutput{}, err
}

// planConversation is Plan's first step: the whole conversation of in
// (the stored part ConversationRef points at, then in.Messages) with the
// outputs stored by reference expanded for the model, and the reference
// of the stored conversation when in.Messages was too long to carry
// inline again ("" otherwise).
func (a *Activities) planConversation(ctx context.Context, in PlanInput) ([]warden.Message, string, error) {
	convRef := ""
	// A short tail travels inline again next step; storing it every step
	// would cost a write per step for a few hundred bytes of history.
	storeTail := a.Payloads != nil && inlineSize(in.Messages) > inlineConversationLimit
	if in.ConversationRef != "" {
		prior, err := a.conversation(ctx, in.ConversationRef)
		if err != nil {
			return nil, "", err
		}
		in.Messages = append(slices.Clone(prior), in.Messages...)
	}
	if storeTail {
		ref, err := a.storeConversation(ctx, in.ConversationRef, in.Messages)
		if err != nil {
			return nil, "", err
		}
		convRef = ref
	}
	messages, err := a.expandOutputs(ctx, in.Messages)
	if err != nil {
		return nil, "", err
	}
	return messages, convRef, nil
}

// authorizeAnswer decides the first au.MaxCalls of an answer's tool calls
// as Authorize would, for Plan, and returns the decisions in order with
// the audit events that record them.
func (a *Activities) authorizeAnswer(ctx context.Context, in PlanInput, au *PlanAuthorize, calls []warden.ToolCall, attempt string) ([]AuthorizeOutput, []warden.AuditEvent) {
	var auths []AuthorizeOutput
	var events []warden.AuditEvent
	now := au.RequestedAt
	if now.IsZero() {
		now = time.Now()
	}
	for _, call := range calls[:min(len(calls), au.MaxCalls)] {
		auth, evs := a.authorize(ctx, AuthorizeInput{
			Run: in.Run, Step: in.Step, Call: call, RequestedAt: now, ApprovalTimeout: au.ApprovalTimeout,
			Actor: "model", Taint: au.Taint, Revision: attempt, ArgsForm: au.ArgsForm,
		})
		auths = append(auths, auth)
		events = append(events, evs...)
	}
	return auths, events
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

// estimateInputTokens over-estimates a request's prompt tokens (3 bytes a
// token). Tool summaries are not sent to the model, so they do not count.
func estimateInputTokens(req warden.ModelRequest) int {
	tools := slices.Clone(req.Tools)
	for i := range tools {
		tools[i].Summary = ""
	}
	b, _ := json.Marshal(struct {
		M []warden.Message  `json:"m"`
		T []warden.ToolSpec `json:"t"`
	}{req.Messages, tools})
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
