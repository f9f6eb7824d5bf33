// Package client is the thin API product backends use to start governed
// Warden runs and act on them (status, pending approvals, decisions, the
// approver inbox, results, cancellation), over a Temporal client the caller
// dials and owns. The types it sends and returns (RunRequest, RunResult,
// ApprovalDecision, ...) are in package github.com/wardenhq/warden.
//
// Callers that also import Temporal's go.temporal.io/sdk/client name this
// package wclient:
//
//	import (
//		"go.temporal.io/sdk/client"
//
//		"github.com/wardenhq/warden"
//		wclient "github.com/wardenhq/warden/client"
//	)
package client
