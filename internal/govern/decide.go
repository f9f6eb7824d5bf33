package govern

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wardenhq/warden"
)

// Verdict is the outcome of Authorize: the policy's three verdicts, or
// InvalidArgs for a call refused before the policy is asked. The strings
// are the audit log's decision column.
type Verdict string

const (
	Allow           Verdict = warden.VerdictAllow
	Deny            Verdict = warden.VerdictDeny
	RequireApproval Verdict = warden.VerdictRequireApproval
	InvalidArgs     Verdict = "invalid_args"
)

// VerdictOf names a policy decision.
func VerdictOf(d warden.Decision) Verdict { return Verdict(d.Verdict()) }

// Authorization is what Authorize decided about one call.
type Authorization struct {
	Verdict  Verdict
	Decision warden.Decision
	// Known is false for a tool name no tool is registered under.
	Known      bool
	Idempotent bool
	// ArgsHash is the hash of the arguments in the turn's form (empty for
	// InvalidArgs).
	ArgsHash string
	// RequestID is set when the call needs approval.
	RequestID string
	// Message is what the model is told when the call does not run.
	Message string
}

// Authorize validates call's arguments and asks policy about it, as the
// model asked for it in turn. A policy error is a deny whose reasons say
// so (fail closed).
func Authorize(ctx context.Context, policy Policy, tools Tools, call warden.ToolCall, turn Turn) Authorization {
	spec, known := tools.Spec(call.Name)
	z := Authorization{Known: known, Idempotent: spec.Idempotent}
	argsHash, hashErr := warden.ArgsHashForm(call.Args, turn.ArgsForm)
	if known {
		verr := hashErr
		if verr == nil {
			verr = tools.Validate(call.Name, call.Args)
		}
		if verr != nil {
			z.Verdict = InvalidArgs
			z.Message = fmt.Sprintf("invalid arguments for %s: %v. Fix the arguments and call the tool again.", call.Name, verr)
			return z
		}
	}
	z.ArgsHash = argsHash
	dec, err := policy.Decide(ctx, Input(call, spec, known, turn))
	if err != nil {
		dec.Allow = false
		dec.Reasons = append(dec.Reasons, "policy evaluation failed: "+err.Error())
	}
	if !known && dec.Allow {
		// No tool can run under this name whatever the policy says, so
		// nobody is asked to approve it and it is never "allowed".
		dec.Allow, dec.RequireApproval = false, false
		dec.Reasons = append(dec.Reasons, fmt.Sprintf("no tool is registered under the name %q", call.Name))
	}
	z.Decision = dec
	z.Verdict = VerdictOf(dec)
	switch z.Verdict {
	case Deny:
		z.Message = fmt.Sprintf("denied by policy: %s", strings.Join(dec.Reasons, "; "))
		if !known {
			var names []string
			for _, s := range tools.Specs(nil) {
				names = append(names, s.Name)
			}
			z.Message = fmt.Sprintf("unknown tool %q; available tools: %s. %s", call.Name, strings.Join(names, ", "), z.Message)
		}
	case RequireApproval:
		z.RequestID = RequestID(turn, call, argsHash, dec.PolicyRevision)
	}
	return z
}

// ExpiresAt is when an approval request made at requestedAt expires: the
// policy's own timeout (Obligations.ApprovalTimeoutSeconds) capped by the
// run's (zero: none).
func ExpiresAt(dec warden.Decision, requestedAt time.Time, runTimeout time.Duration) time.Time {
	timeout := runTimeout
	if secs := dec.Obligations.ApprovalTimeoutSeconds; secs > 0 && (timeout <= 0 || time.Duration(secs)*time.Second < timeout) {
		timeout = time.Duration(secs) * time.Second
	}
	return requestedAt.Add(timeout)
}

// Refusal kinds of Enforce, as errors.Is targets.
var (
	// ErrUnknownTool: no tool is registered under the call's name.
	ErrUnknownTool = errors.New("unknown tool")
	// ErrInvalidArgs: the arguments do not fit the tool's schema.
	ErrInvalidArgs = errors.New("invalid arguments")
	// ErrRefused: the policy, or the approval evidence, does not let the
	// call run (a *Refusal).
	ErrRefused = errors.New("refused")
)

// Refusal is Enforce's error when the policy or the evidence refuses the
// call; its text is the cause's alone (the audit row and the model quote
// it).
type Refusal struct{ Cause error }

func (r *Refusal) Error() string        { return r.Cause.Error() }
func (r *Refusal) Unwrap() error        { return r.Cause }
func (r *Refusal) Is(target error) bool { return target == ErrRefused }

// Enforce decides, just before call runs, whether it may: the arguments
// are validated again and the policy asked again with the same Turn
// Authorize had, plus the approval evidence, which must match the decision
// (CheckEvidence). The returned decision is the policy's (its obligations
// bind the run) and is set also when the call is refused, for the record.
func Enforce(ctx context.Context, policy Policy, tools Tools, call warden.ToolCall, turn Turn, evidence *warden.ApprovalEvidence) (warden.Decision, error) {
	spec, known := tools.Spec(call.Name)
	if !known {
		return warden.Decision{}, fmt.Errorf("%w %s", ErrUnknownTool, call.Name)
	}
	argsHash, err := warden.ArgsHashForm(call.Args, turn.ArgsForm)
	if err == nil {
		err = tools.Validate(call.Name, call.Args)
	}
	if err != nil {
		return warden.Decision{}, fmt.Errorf("%w for %s: %v", ErrInvalidArgs, call.Name, err)
	}
	input := Input(call, spec, true, turn)
	input.Approval = evidence
	dec, err := policy.Decide(ctx, input)
	if err == nil {
		err = CheckEvidence(dec, turn, call, argsHash, evidence)
	}
	if err == nil && !dec.Allow {
		err = fmt.Errorf("denied by policy: %s", strings.Join(dec.Reasons, "; "))
	}
	if err != nil {
		return dec, &Refusal{Cause: err}
	}
	return dec, nil
}

// CheckEvidence verifies approval evidence against a decision: nothing is
// needed unless the decision requires approval; then the evidence must be
// bound to this exact call, arguments and policy revision, and carry
// enough distinct approvers the decision permits.
func CheckEvidence(dec warden.Decision, turn Turn, call warden.ToolCall, argsHash string, ev *warden.ApprovalEvidence) error {
	if !dec.RequireApproval {
		return nil
	}
	if ev == nil {
		return errors.New("the policy requires approval and none was given")
	}
	if want := RequestID(turn, call, argsHash, dec.PolicyRevision); ev.RequestID != want {
		return fmt.Errorf("approval %s does not match this call (expected %s: the arguments or the policy revision changed)", ev.RequestID, want)
	}
	if ev.ArgsHash != argsHash {
		return fmt.Errorf("approval was given for arguments %s, not %s", ev.ArgsHash, argsHash)
	}
	seen := map[string]bool{}
	for _, name := range ev.Approvers {
		if !Permits(dec.Approvers, name, turn.Run.Requester) {
			return fmt.Errorf("%s may not approve this call", name)
		}
		n, _ := ParseName(name) // Permits parsed it
		seen[n.Key] = true      // "Dana" and "dana" are one approver
	}
	if quorum := max(dec.Quorum, 1); len(seen) < quorum {
		return fmt.Errorf("approval needs %d distinct approvers, got %d", quorum, len(seen))
	}
	return nil
}
