package warden

import "errors"

// Sentinel errors.
var (
	// ErrInvalidRequest wraps every RunRequest validation failure.
	ErrInvalidRequest = errors.New("invalid run request")
	// ErrApprovalInvalid wraps every refused approval.
	ErrApprovalInvalid = errors.New("approval refused")
	// ErrModelPermanent marks a model failure that retrying cannot fix (bad
	// request, bad key, unknown model).
	ErrModelPermanent = errors.New("permanent model error")
	// ErrInvalidAuditEvent wraps an audit event no store can accept (a
	// missing field, text that is not UTF-8): writing it again cannot succeed.
	ErrInvalidAuditEvent = errors.New("invalid audit event")
)

// Temporal application-error types. Activities return errors of these
// types; the workflow branches on them. Renaming one is a breaking change.
const (
	// ErrTypePolicyDenied: the policy (or the approval evidence) does not permit the call.
	ErrTypePolicyDenied = "WardenPolicyDenied"
	// ErrTypeInvalidArgs: the arguments fail the tool's JSON Schema.
	ErrTypeInvalidArgs = "WardenInvalidArgs"
	// ErrTypeUnknownTool: no tool is registered under the name.
	ErrTypeUnknownTool = "WardenUnknownTool"
	// ErrTypeOutcomeUnknown: a non-idempotent tool may or may not have run; never retried.
	ErrTypeOutcomeUnknown = "WardenOutcomeUnknown"
	// ErrTypeSandbox: the sandbox could not run the tool (fail closed).
	ErrTypeSandbox = "WardenSandbox"
	// ErrTypeModel: the model call failed permanently.
	ErrTypeModel = "WardenModel"
	// ErrTypeAudit: the audit log could not be written.
	ErrTypeAudit = "WardenAudit"
	// ErrTypeApprovalRefused: the workflow refused an approval decision
	// (ErrApprovalInvalid); client.Client.Decide maps only this type to ErrApprovalInvalid.
	ErrTypeApprovalRefused = "WardenApprovalRefused"
	// ErrTypeInvalidAudit: an audit event is invalid (ErrInvalidAuditEvent); never retried.
	ErrTypeInvalidAudit = "WardenInvalidAudit"
)
